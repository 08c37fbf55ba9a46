"""The code figures issue 20 reports before and after: long functions, import cycles,
function-level imports and the modules that send SQL to the destination.

    .venv/bin/python bench/code_metrics.py            # sources/chaster_sessions + pipelines/*.py
    .venv/bin/python bench/code_metrics.py --json     # the same, as one JSON object

It reads the code with `ast` and imports nothing of it, so it measures any checkout: run the
copy in that checkout, or pass its folders (`PACKAGE` and `--extra`). What each figure counts:

- **Function length**: from the `def` line to the function's last line, both included
  (decorators left out; blank lines, comments and the docstring counted). Methods and nested
  functions are counted on their own too, named `Class.method` and `outer.inner`.
- **Import cycles**: the graph of the package's module-level imports of its own modules
  (`from . import x`, `from .x import y`, `import package.x`, `from package.x import y`), in
  `try`/`if` blocks too but not under `if TYPE_CHECKING:`, and not inside functions; importing
  `a.b` counts `a` too. Listed as strongly connected groups and as every elementary cycle in
  them, then again with the function-level imports counted as edges (the cycles they dodge).
- **Function-level imports**: any `import` inside a function body, with file and line. One of
  the package's own modules whose module-level import would close a cycle is marked.
- **SQL sent to the destination**: per module, the call sites of
  (a) a method `.execute_sql`, `.execute_query`, `.execute`, `.executemany` or `.sql` (dlt's
  SQL client, a DB-API or DuckDB connection or cursor), or a plain call of a name `execute` or
  `execute_sql` (a client's method passed in);
  (b) `.sql_client()` or `duckdb.connect()`, which open the destination;
  (c) a call of a pass-through helper: a function of the measured files that makes an (a) call
  whose first argument is one of its own parameters (such as `db.query(pipeline, sql)`).
  A module with any such call site counts.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SQL_METHODS = {"execute_sql", "execute_query", "execute", "executemany", "sql"}
SQL_NAMES = {"execute", "execute_sql"}
MAX_CYCLES = 200  # elementary cycles listed; a knotted graph can have very many


@dataclass
class Function:
    name: str
    file: str
    line: int
    lines: int
    parameters: int


@dataclass
class LocalImport:
    file: str
    line: int
    function: str
    statement: str
    package_module: str | None  # the package's own module it imports, if it is one
    closes_cycle: bool  # importing it at module level would close an import cycle


@dataclass
class SqlCall:
    line: int
    kind: str  # "sends", "opens" or "helper"
    call: str


@dataclass
class Module:
    """One measured file: its name in the import graph (None outside the package)."""

    path: Path
    file: str
    name: str | None
    tree: ast.Module


def _call_name(node: ast.expr) -> str:
    return ast.unparse(node).split("(")[0]


def _functions(tree: ast.AST, file: str) -> list[Function]:
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                args = child.args
                count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
                count += (args.vararg is not None) + (args.kwarg is not None)
                end = child.end_lineno or child.lineno
                found.append(Function(name, file, child.lineno, end - child.lineno + 1, count))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _is_type_checking(node: ast.If) -> bool:
    return ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions, not type-only."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def _function_imports(tree: ast.Module) -> list[tuple[str, ast.Import | ast.ImportFrom]]:
    found: list[tuple[str, ast.Import | ast.ImportFrom]] = []

    def visit(node: ast.AST, prefix: str, inside: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{prefix}{child.name}.", f"{prefix}{child.name}")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", inside)
            else:
                if inside is not None and isinstance(child, ast.Import | ast.ImportFrom):
                    found.append((inside, child))
                visit(child, prefix, inside)

    visit(tree, "", None)
    return found


class Package:
    """The package's modules by dotted name relative to it (`config`, `helpers.client`; the
    package itself is `__init__`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        self.modules: dict[str, Path] = {}
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__" and len(parts) > 1:
                parts = parts[:-1]
            self.modules[".".join(parts)] = path

    def module_of(self, dotted: list[str]) -> str | None:
        name = ".".join(dotted) or "__init__"
        return name if name in self.modules else None

    def targets(self, module: str | None, node: ast.Import | ast.ImportFrom) -> set[str]:
        """The package's own modules an import statement in `module` loads."""
        if isinstance(node, ast.Import):
            found = set()
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == self.name:
                    found.add(self.module_of(parts[1:]))
            return {t for t in found if t}
        if node.level:
            if module is None:
                return set()
            base = [] if module == "__init__" else module.split(".")
            if not self._is_package(module):
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            return self._from(base, node.module or "", node)
        parts = (node.module or "").split(".")
        if parts[0] != self.name:
            return set()
        return self._from([], ".".join(parts[1:]), node)

    def _from(self, base: list[str], module: str, node: ast.ImportFrom) -> set[str]:
        target = base + (module.split(".") if module else [])
        # importing a.b runs a's __init__ first; the package's own is running already
        found = {self.module_of(target[:n]) for n in range(1, len(target) + 1)}
        for alias in node.names:
            submodule = self.module_of([*target, alias.name])
            found.add(submodule or self.module_of(target))
        return {t for t in found if t}

    def _is_package(self, module: str) -> bool:
        return module == "__init__" or self.modules[module].name == "__init__.py"


def _cycles(graph: dict[str, set[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """The strongly connected groups of more than one module (or one importing itself), and
    the elementary cycles, each starting at its alphabetically first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles: list[list[str]] = []
    for group in sorted(groups):
        for start in group:
            _cycles_from(graph, set(group), [start], cycles)
    return sorted(groups), cycles


def _cycles_from(
    graph: dict[str, set[str]], members: set[str], path: list[str], cycles: list[list[str]]
) -> None:
    """Add the cycles that go on from `path` and close at its first module, visiting only
    modules after it: each cycle is found once, from its first module."""
    start = path[0]
    for nxt in sorted(graph[path[-1]] & members):
        if len(cycles) >= MAX_CYCLES:
            return
        if nxt == start:
            cycles.append([*path, start])
        elif nxt > start and nxt not in path:
            _cycles_from(graph, members, [*path, nxt], cycles)


def _reaches(graph: dict[str, set[str]], source: str, target: str) -> bool:
    seen, todo = {source}, [source]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        for nxt in graph.get(node, set()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return False


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return set(names)


def _direct_sql(call: ast.Call) -> str | None:
    """'sends' or 'opens' for a call that talks to a database itself, else None."""
    func = call.func
    if isinstance(func, ast.Attribute):
        if func.attr in SQL_METHODS:
            return "sends"
        if func.attr == "sql_client" or ast.unparse(func) == "duckdb.connect":
            return "opens"
    if isinstance(func, ast.Name) and func.id in SQL_NAMES:
        return "sends"
    return None


def _sql_helpers(modules: list[Module]) -> set[tuple[str, str]]:
    """(file, function name) of the functions that pass one of their parameters to an (a)
    call as the SQL: callers of these send SQL through them."""
    helpers: set[tuple[str, str]] = set()
    for module in modules:
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            own = _parameters(node)
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and _direct_sql(call) == "sends"
                    and call.args
                    and isinstance(call.args[0], ast.Name)
                    and call.args[0].id in own
                ):
                    helpers.add((module.file, node.name))
    return helpers


def _imported_names(
    module: Module, package: Package, by_name: dict[str, Module]
) -> dict[str, tuple[str, str]]:
    """Local name -> (file, original name) for names a module imports from measured modules."""
    names: dict[str, tuple[str, str]] = {}
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        for target in package.targets(module.name, node):
            source = by_name.get(target)
            if source is None:
                continue
            for alias in node.names:
                names[alias.asname or alias.name] = (source.file, alias.name)
    return names


def _sql_calls(
    modules: list[Module], package: Package, helpers: set[tuple[str, str]]
) -> dict[str, list[SqlCall]]:
    by_name = {m.name: m for m in modules if m.name}
    found: dict[str, list[SqlCall]] = {}
    for module in modules:
        imported = _imported_names(module, package, by_name)
        calls: list[SqlCall] = []
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            kind = _direct_sql(node)
            if kind is None:
                func = node.func
                if isinstance(func, ast.Name):
                    origin = imported.get(func.id, (module.file, func.id))
                    kind = "helper" if origin in helpers else None
                elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    source = by_name.get(func.value.id)
                    if source is not None and (source.file, func.attr) in helpers:
                        kind = "helper"
            if kind is not None:
                calls.append(SqlCall(node.lineno, kind, _call_name(node.func)))
        if calls:
            found[module.file] = sorted(calls, key=lambda c: c.line)
    return found


def measure(package_folder: Path, extra: list[Path], max_lines: int) -> dict[str, Any]:
    package = Package(package_folder)
    base = package_folder.parent.parent if package_folder.parent.name == "sources" else ROOT
    modules = []
    for name, path in package.modules.items():
        modules.append(Module(path, _relative(path, base), name, ast.parse(path.read_text())))
    for path in extra:
        modules.append(Module(path, _relative(path, base), None, ast.parse(path.read_text())))

    functions = [f for m in modules for f in _functions(m.tree, m.file)]
    functions.sort(key=lambda f: (-f.lines, f.file, f.line))
    long = [f for f in functions if f.lines > max_lines]

    graph: dict[str, set[str]] = {name: set() for name in package.modules}
    for module in modules:
        if module.name is None:
            continue
        for node in _module_level_imports(module.tree):
            graph[module.name] |= package.targets(module.name, node) - {module.name}
    groups, cycles = _cycles(graph)

    local_imports = []
    with_local = {name: set(targets) for name, targets in graph.items()}
    for module in modules:
        for function, node in _function_imports(module.tree):
            targets = sorted(package.targets(module.name, node) - {module.name})
            if module.name is not None:
                with_local[module.name].update(targets)
            target = targets[0] if targets else None
            closes = (
                target is not None
                and module.name is not None
                and _reaches(graph, target, module.name)
            )
            statement = ast.unparse(node).split(" #")[0]
            local_imports.append(
                LocalImport(module.file, node.lineno, function, statement, target, closes)
            )

    all_groups, all_cycles = _cycles(with_local)

    helpers = _sql_helpers(modules)
    sql = _sql_calls(modules, package, helpers)
    source = [f for f in functions if f.name == "chaster_source"]
    return {
        "package": _relative(package_folder, base),
        "extra": [_relative(p, base) for p in extra],
        "max_lines": max_lines,
        "functions_counted": len(functions),
        "long_functions": [asdict(f) for f in long],
        "largest_function": asdict(functions[0]) if functions else None,
        "chaster_source_parameters": source[0].parameters if source else None,
        "import_groups": groups,
        "import_cycles": cycles,
        "import_groups_with_function_imports": all_groups,
        "import_cycles_with_function_imports": all_cycles,
        "function_level_imports": [asdict(i) for i in local_imports],
        "sql_helpers": sorted(f"{file}:{name}" for file, name in helpers),
        "sql_modules": {file: [asdict(c) for c in calls] for file, calls in sql.items()},
    }


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _text(figures: dict[str, Any]) -> str:
    out = [f"package: {figures['package']}  extra: {' '.join(figures['extra']) or '-'}"]
    long = figures["long_functions"]
    out.append(
        f"\nfunctions over {figures['max_lines']} lines: {len(long)} "
        f"(of {figures['functions_counted']} functions and methods)"
    )
    out += [f"  {f['lines']:4}  {f['name']}  {f['file']}:{f['line']}" for f in long]
    largest = figures["largest_function"]
    if largest:
        out.append(
            f"\nlargest function: {largest['name']}, {largest['lines']} lines, "
            f"{largest['file']}:{largest['line']}"
        )
    out.append(f"parameters of chaster_source: {figures['chaster_source_parameters']}")

    for key, what in (
        ("", "module-level imports"),
        ("_with_function_imports", "module-level and function-level imports"),
    ):
        groups, cycles = figures[f"import_groups{key}"], figures[f"import_cycles{key}"]
        out.append(f"\nimport cycles, {what}: {len(groups)} group(s), {len(cycles)} cycle(s)")
        out += [f"  group: {', '.join(g)}" for g in groups]
        out += [f"  {' → '.join(c)}" for c in cycles]
        if len(cycles) >= MAX_CYCLES:
            out.append(f"  (only the first {MAX_CYCLES} cycles listed)")

    local = figures["function_level_imports"]
    own = [i for i in local if i["package_module"]]
    dodging = [i for i in own if i["closes_cycle"]]
    out.append(
        f"\nfunction-level imports: {len(local)} ({len(own)} of the package's own modules, "
        f"{len(dodging)} of them would close a cycle at module level)"
    )
    for i in local:
        mark = "  [closes a cycle]" if i["closes_cycle"] else ""
        out.append(f"  {i['file']}:{i['line']}  in {i['function']}: {i['statement']}{mark}")

    sql = figures["sql_modules"]
    out.append(f"\nmodules that send SQL to the destination: {len(sql)}")
    out.append(
        "  (sends: .execute_sql/.execute_query/.execute/.executemany/.sql or execute(...); "
        "opens: .sql_client()/duckdb.connect(); helper: a call of a pass-through SQL helper: "
        f"{', '.join(figures['sql_helpers']) or 'none'})"
    )
    for file, calls in sql.items():
        kinds = {k: sum(c["kind"] == k for c in calls) for k in ("sends", "opens", "helper")}
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        out.append(f"  {file}: {summary}")
        out += [f"      {c['line']:4}  {c['kind']:6}  {c['call']}" for c in calls]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "package",
        nargs="?",
        type=Path,
        default=ROOT / "sources" / "chaster_sessions",
        help="the package folder (default: sources/chaster_sessions beside this script)",
    )
    parser.add_argument(
        "--extra",
        nargs="*",
        type=Path,
        default=None,
        help="more files to measure, outside the import graph (default: pipelines/*.py)",
    )
    parser.add_argument("--max-lines", type=int, default=60, help="a long function has more")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    folder = args.package.resolve()
    if not (folder / "__init__.py").is_file():
        print(f"error: {args.package} is not a package folder (no __init__.py)", file=sys.stderr)
        return 2
    if args.extra is None:
        pipelines = folder.parent.parent / "pipelines"
        args.extra = sorted(pipelines.glob("*.py"))
    figures = measure(folder, args.extra, args.max_lines)
    print(json.dumps(figures, indent=2, ensure_ascii=False) if args.json else _text(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
