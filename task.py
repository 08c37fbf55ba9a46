"""Set up the project and run it, with nothing but Python 3.11+: the README's two commands.

    python3 task.py run [options]   set up .venv, then load sessions (the demo when no token is set)
    python3 task.py setup           set up .venv only
    python3 task.py test            set up .venv, then lint and run the test suite
    python3 task.py stress          set up .venv, then the long kill-and-resume stress runs
    python3 task.py bench [options] set up .venv, then the benchmark (bench/run.py)
    python3 task.py notebook        set up .venv and JupyterLab, then open notebooks/sessions.ipynb

Only the standard library is used here, so this works before anything is installed.
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

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".requirements.sha256"
# Only for opening the notebook by hand; the suite runs it without JupyterLab.
JUPYTERLAB = "jupyterlab==4.6.6"


def setup() -> None:
    """Create .venv and install the locked requirements, once per change of the lock file."""
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("setting up .venv ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing locked requirements ...", file=sys.stderr, flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(LOCK),
        ],
        check=True,
    )
    STAMP.write_text(wanted)


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
    """Whether a real API token is set, in the environment or in .dlt/secrets.toml."""
    if os.environ.get("SOURCES__CHASTER__API_TOKEN"):
        return True
    project = Path(os.environ.get("DLT_PROJECT_DIR", ROOT))
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
    setup()
    if command == "setup":
        return 0
    if command == "run":
        if not token_configured() and "--demo" not in rest:
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
        cmd = [str(PYTHON), "-m", "pytest", "-m", "not stress", *rest]
    elif command == "stress":
        cmd = [str(PYTHON), "-m", "pytest", "-m", "stress", *rest]
    elif command == "bench":
        cmd = [str(PYTHON), str(ROOT / "bench" / "run.py"), *rest]
    elif command == "notebook":
        if not (VENV / "bin" / "jupyter-lab").exists():
            print(f"installing {JUPYTERLAB} ...", file=sys.stderr, flush=True)
            pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, JUPYTERLAB, "-c", str(LOCK)], check=True)
        cmd = [str(VENV / "bin" / "jupyter-lab"), "notebooks/sessions.ipynb", *rest]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
