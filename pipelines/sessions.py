"""Load Chaster extension sessions into DuckDB: `python pipelines/sessions.py --help`.

The same command as the installed `chaster-sessions`, runnable from a checkout without
installing: it puts `sources/` on the path. Everything else, including which `.dlt/` settings
folder is read (`cli.choose_settings_folder`), is `chaster_sessions.cli`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from chaster_sessions.cli import main

if __name__ == "__main__":
    sys.exit(main())
