"""The exit codes are written down three times: `--help`, the README and BEHAVIOR.md agree."""

from __future__ import annotations

import re

from chaster_sessions.errors import EXIT_CODES
from conftest import ROOT, run_process


def _readme_codes() -> list[int]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    return [int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)]


def test_readme_lists_exactly_the_exit_codes_of_the_command():
    assert _readme_codes() == sorted(EXIT_CODES)


def test_help_lists_every_exit_code(home):
    result = run_process("--help")
    assert result.code == 0
    listed = re.findall(r"^\s+(\d+)  (.+)$", result.out.split("exit codes:", 1)[1], re.MULTILINE)
    assert {int(code): meaning for code, meaning in listed} == EXIT_CODES


def test_behavior_names_the_duckdb_and_the_remote_destination_codes_apart():
    text = (ROOT / "BEHAVIOR.md").read_text()
    assert "DuckDB file (held by another process, not DuckDB, no such folder) is exit 7" in text
    assert "cannot be reached, is\n  exit 10" in text
    assert EXIT_CODES[7].startswith("the DuckDB file")
    assert EXIT_CODES[10].startswith("the destination (PostgreSQL")
