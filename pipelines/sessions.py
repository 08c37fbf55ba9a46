"""Load Chaster extension sessions into DuckDB: `python pipelines/sessions.py --help`.

The same command as the installed `chaster-sessions`, runnable from a checkout without
installing: it puts `sources/` on the path. Everything else, including which `.dlt/` settings
folder is read (`cli.choose_settings_folder`), is `chaster_sessions.cli`.

Importing dlt takes about a second; a Ctrl-C or SIGTERM in that second ends with one line and
the signal's exit code too, not a traceback or a silent death (the command's own handlers take
over once it starts).
"""

import signal
import sys
from pathlib import Path


def _before_the_run(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    print(f"error: interrupted ({name}) before the run began; nothing was done", file=sys.stderr)
    sys.exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is not signal.SIG_IGN:
        signal.signal(_signum, _before_the_run)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from chaster_sessions.cli import script  # noqa: E402

if __name__ == "__main__":
    script()
