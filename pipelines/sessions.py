"""Load Chaster extension sessions into DuckDB: `python pipelines/sessions.py --help`.

The same command as the installed `chaster-sessions`, runnable from a checkout without
installing: it puts `sources/` on the path and finds the project's `.dlt/` settings from any
working directory. Everything else is `chaster_sessions.cli`.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sources"))
# Settings live in the project's .dlt/ folder; find it from any working directory.
if "DLT_PROJECT_DIR" not in os.environ and not (Path.cwd() / ".dlt").is_dir():
    os.environ["DLT_PROJECT_DIR"] = str(ROOT)

from chaster_sessions.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
