"""A small SQL shell on a DuckDB file, run by the same `duckdb` library that wrote it.

`python3 task.py sql [FILE]` (or `python -m chaster_sessions.shell [FILE]`). The pip `duckdb`
package ships no shell, and a DuckDB CLI of another version may not read the file. Statements end
with `;`; several on one line each print their result, in order. Piped input runs as a script,
and the exit code is 1 if any statement failed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import duckdb

DEFAULT_FILES = ("chaster_sessions.duckdb", "chaster_demo.duckdb")


def statements(lines: Iterator[str], prompt: bool) -> Iterator[str]:
    """Complete statements (ending with `;`) from lines; `.quit` ends the input."""
    buffer: list[str] = []
    while True:
        if prompt:
            print("...> " if buffer else "sql> ", end="", flush=True)
        line = next(lines, None)
        if line is None or (not buffer and line.strip() in (".quit", ".exit")):
            break
        buffer.append(line.rstrip("\n"))
        if line.rstrip().endswith(";"):
            yield "\n".join(buffer)
            buffer = []
    if "".join(buffer).strip():
        yield "\n".join(buffer)


def run(con: duckdb.DuckDBPyConnection, source: TextIO, prompt: bool) -> int:
    failed = 0
    for text in statements(iter(source.readline, ""), prompt):
        try:
            # a line may hold several statements; `con.sql` would show only the last result
            parsed = [statement.query for statement in con.extract_statements(text)]
        except duckdb.Error as exc:
            parsed, failed = [], failed + 1
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        for statement in parsed:
            try:
                relation = con.sql(statement)
                if relation is not None:
                    print(relation)
            except duckdb.Error as exc:
                failed += 1
                print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
    if prompt:
        print()
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    found = [name for name in DEFAULT_FILES if Path(name).exists()]
    path = Path(argv[0]) if argv else Path(found[0] if found else DEFAULT_FILES[0])
    if not path.is_file():
        print(f"error: no DuckDB file {path}; name one: python3 task.py sql FILE", file=sys.stderr)
        return 2
    prompt = sys.stdin.isatty()
    # read-only: it never changes the data, but a scheduled run waits until it is closed
    with duckdb.connect(str(path), read_only=True) as con:
        if prompt:
            print(
                f"DuckDB {duckdb.__version__} on {path} (read-only; close it before the next "
                "run). End statements with ;  .quit or Ctrl-D leaves."
            )
        return run(con, sys.stdin, prompt)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
