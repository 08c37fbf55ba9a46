"""Set up the project and run it, with nothing but Python 3.11+: the README's two commands.

    python3 task.py run [options]   set up .venv, then load sessions (the demo when no token is set)
    python3 task.py setup [dev]     set up .venv only (the runtime, or everything with `dev`)
    python3 task.py test            set up .venv (dev), then lint, type-check and run the suite,
                                    one pytest worker per core (`test -n 0` runs it in one)
    python3 task.py stress          set up .venv (dev), then the long kill-and-resume stress runs
    python3 task.py bench [options] set up .venv (dev), then the benchmark (bench/run.py)
    python3 task.py notebook        set up .venv (dev) and JupyterLab, then open the notebook
    python3 task.py sql [FILE]      set up .venv, then a SQL shell on a DuckDB file (same duckdb)
    python3 task.py lock            re-resolve requirements.lock and requirements-dev.lock

`run` installs only what a load needs (requirements.lock); the others install the dev lock too
(Dagster, the notebook's libraries, PostgreSQL's driver, pytest, ruff, mypy). Both locks pin
every package with hashes. Only the standard library is used here, so this works before anything
is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LOCKS = {"runtime": ROOT / "requirements.lock", "dev": ROOT / "requirements-dev.lock"}
STAMP = VENV / ".requirements.sha256"
PIP_TOOLS = "pip-tools==7.6.2"
# Only for opening the notebook by hand; the suite runs it without JupyterLab.
JUPYTERLAB = "jupyterlab==4.6.6"


def fingerprint(kind: str) -> str:
    """What an install of `kind` depends on: its lock and pyproject.toml (the project itself)."""
    data = LOCKS[kind].read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()


def setup(kind: str = "runtime") -> None:
    """Create .venv, install a lock (hashes checked) and the project itself (editable), once per
    change of either. The dev lock holds everything the runtime lock holds, and more."""
    lines = STAMP.read_text().splitlines() if STAMP.exists() else []
    have = dict(line.split(" ", 1) for line in lines if " " in line)
    satisfied = have.get(kind) == fingerprint(kind) or (
        kind == "runtime" and have.get("dev") == fingerprint("dev")
    )
    if PYTHON.exists() and satisfied:
        return
    if not PYTHON.exists():
        print("setting up .venv ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    lock = LOCKS[kind]
    print(f"installing {lock.name} ...", file=sys.stderr, flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(f"{kind} {fingerprint(kind)}\n")


def lock() -> int:
    """Re-resolve both locks with pip-tools, keeping every version the old locks pin unless
    pyproject.toml asks for another; hashes for every file of every pinned release."""
    tools = ROOT / ".venv-lock"
    if not (tools / "bin" / "pip-compile").exists():
        venv.EnvBuilder(with_pip=True).create(tools)
        subprocess.run([str(tools / "bin" / "pip"), "install", "--quiet", PIP_TOOLS], check=True)
    for kind, path in LOCKS.items():
        old = path.with_suffix(".previous")
        shutil.copy(path, old)
        extra = ["--extra", "dev"] if kind == "dev" else []
        subprocess.run(
            [
                str(tools / "bin" / "pip-compile"),
                "--quiet",
                "--generate-hashes",
                "--allow-unsafe",
                "--strip-extras",
                "--no-emit-index-url",
                "--no-emit-find-links",
                *extra,
                "-c",
                old.name,
                "-o",
                path.name,
                "pyproject.toml",
            ],
            cwd=ROOT,
            check=True,
            env={**os.environ, "PIP_CONSTRAINT": ""},
        )
        old.unlink()
        text = path.read_text().replace(f"--constraint={old.name} ", "")
        lines = [line for line in text.splitlines() if old.name not in line]
        # the dev extra names the project itself; it is installed from the checkout instead
        while (
            at := next((i for i, x in enumerate(lines) if "chaster-sessions @ file:" in x), None)
        ) is not None:
            del lines[at - 2 : at + 2]
        path.write_text("\n".join(lines) + "\n")
    return 0


def ensure_postgres_binaries() -> None:
    """The destination tests start a throwaway PostgreSQL server: install it if it is missing
    and this user may (Debian/Ubuntu as root); otherwise those tests say what is missing."""
    if shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("PostgreSQL is not installed: the destination tests will fail", file=sys.stderr)
        return
    print("installing PostgreSQL for the destination tests ...", file=sys.stderr, flush=True)
    quiet = {
        "stdout": subprocess.DEVNULL,
        "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    }
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, **quiet)


def token_configured() -> bool:
    """Whether a real API token is set, in the environment or in the .dlt/secrets.toml that the
    command will read (the rule of `chaster_sessions.cli.choose_settings_folder`)."""
    if os.environ.get("SOURCES__CHASTER__API_TOKEN"):
        return True
    here = Path.cwd() if (Path.cwd() / ".dlt").is_dir() else ROOT
    project = Path(os.environ.get("DLT_PROJECT_DIR", here))
    secrets = project / ".dlt" / "secrets.toml"
    if not secrets.exists():
        return False
    try:
        data = tomllib.loads(secrets.read_text())
    except tomllib.TOMLDecodeError:
        return True  # let the pipeline report the broken file
    return bool(data.get("sources", {}).get("chaster", {}).get("api_token"))


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("run", [])
    if command == "lock":
        return lock()
    runtime = command in ("run", "sql") or (command == "setup" and rest != ["dev"])
    setup("runtime" if runtime else "dev")
    if command == "setup":
        return 0
    if command == "run":
        asks_help = bool({"-h", "--help"} & set(rest))
        if not token_configured() and "--demo" not in rest and not asks_help:
            print(
                "no API token configured (SOURCES__CHASTER__API_TOKEN or .dlt/secrets.toml): "
                "running the built-in demo",
                file=sys.stderr,
            )
            rest = ["--demo", *rest]
        cmd = [str(PYTHON), str(ROOT / "pipelines" / "sessions.py"), *rest]
    elif command == "test":
        ensure_postgres_binaries()
        lint = subprocess.run([str(PYTHON), "-m", "ruff", "check", "."], cwd=ROOT)
        fmt = subprocess.run([str(PYTHON), "-m", "ruff", "format", "--check", "."], cwd=ROOT)
        if lint.returncode or fmt.returncode:
            print("lint failed: run .venv/bin/ruff check --fix . && .venv/bin/ruff format .")
            return 1
        if subprocess.run([str(PYTHON), "-m", "mypy"], cwd=ROOT).returncode:
            print("type check failed: .venv/bin/mypy lists the errors")
            return 1
        # one worker per core (pytest-xdist); tests marked xdist_group share a worker
        parallel = ["-n", "auto", "--dist", "loadgroup"]
        cmd = [str(PYTHON), "-m", "pytest", *parallel, "-m", "not stress", *rest]
    elif command == "stress":
        cmd = [str(PYTHON), "-m", "pytest", "-m", "stress", *rest]
    elif command == "sql":
        cmd = [str(PYTHON), "-m", "chaster_sessions.shell", *rest]
    elif command == "bench":
        cmd = [str(PYTHON), str(ROOT / "bench" / "run.py"), *rest]
    elif command == "notebook":
        if not (VENV / "bin" / "jupyter-lab").exists():
            print(f"installing {JUPYTERLAB} ...", file=sys.stderr, flush=True)
            pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, JUPYTERLAB, "-c", str(LOCKS["dev"])], check=True)
        cmd = [str(VENV / "bin" / "jupyter-lab"), "notebooks/sessions.ipynb", *rest]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    # a load and the SQL shell work where the user is (the DuckDB file is there); the others
    # are the project's own tools
    hand_over(cmd, cwd=None if command in ("run", "sql") else ROOT)


def hand_over(cmd: list[str], cwd: Path | None) -> NoReturn:
    """Become the command (exec), in `cwd` (None: where the user is): its exit code is this
    one's, and a signal sent to this process, by `kill` or a scheduler, reaches the command
    itself. A child process instead would get Ctrl-C twice, once from the terminal and once
    forwarded, and a second signal stops a run at once."""
    if cwd is not None:
        os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)  # noqa: S606 - the command, not a shell


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # during setup, before the command took over: no traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)
