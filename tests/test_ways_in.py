"""The README's ways into the data work as written: the SQL shell, Python, `task.py run` from
any folder, and the stand-in on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from conftest import ROOT, SLUG, TOKEN, configure, process_env, run_cli, standin_env


def test_sql_shell_reads_the_file_with_the_same_duckdb(make_api, home, monkeypatch, capsys):
    api = make_api(120)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    script = (
        "select count(*) as stored from chaster.sessions;\n"
        "select extension, sessions\n  from analytics.overview;\n"
        "select nonsense from nowhere;\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "task.py"), "sql", "out.duckdb"],
        input=script,
        capture_output=True,
        text=True,
        cwd=home,
        timeout=300,
    )
    assert done.returncode == 1  # one statement failed; the others ran
    assert "│    120 │" in done.stdout
    assert SLUG in done.stdout and "stored" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("error: Catalog Error: Table ")


def test_readme_python_access_runs_without_pandas(make_api, home, monkeypatch, capsys):
    api = make_api(80)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "chaster_sessions.duckdb").code == 0
    # the README's snippet, verbatim apart from the print
    snippet = textwrap.dedent(
        """
        import dlt
        import duckdb

        # name the file: a bare dlt.attach("chaster") would look for chaster.duckdb
        destination = dlt.destinations.duckdb("chaster_sessions.duckdb")
        pipeline = dlt.pipeline("chaster", destination=destination, dataset_name="chaster")
        dataset = pipeline.dataset()
        print(dataset.sessions.select("session_id", "lock__status").limit(3).fetchall())
        print(dataset("select lock__status, count(*) as n from sessions group by 1").fetchall())

        with duckdb.connect("chaster_sessions.duckdb", read_only=True) as con:
            print(con.sql("select extension, sessions from analytics.overview").fetchall())
            table = con.sql("select * from analytics.daily").to_arrow_table()  # pyarrow
            print(table.num_rows)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, cwd=home, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(eval(lines[0])) == 3  # noqa: S307 - our own printed list
    assert sum(n for _, n in eval(lines[1])) == 80  # noqa: S307
    assert eval(lines[2])[0][0] == SLUG  # noqa: S307
    assert int(lines[3]) > 0


def _own_code_env(**extra: str) -> dict[str, str]:
    """The environment, with this checkout's package first (the shell runs as `-m`, found
    through the editable install, which may be another checkout's)."""
    return process_env(drop=("DLT_",), PYTHONPATH=str(ROOT / "sources"), **extra)


def test_task_run_from_another_folder_writes_there_and_sql_reads_it(make_api, tmp_path):
    api = make_api(90)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    env = _own_code_env(DLT_DATA_DIR=str(tmp_path / "dlt"), **standin_env(api))
    task = [sys.executable, str(ROOT / "task.py")]
    done = subprocess.run(
        [*task, "run", "--quiet"], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    written = folder / "chaster_sessions.duckdb"
    assert f"DuckDB: {written} (schema chaster)" in done.stdout
    assert written.is_file()
    # the shell finds that file from the same folder, and names one relative to it
    script = "select count(*) as stored from chaster.sessions; select 2 as second;\n"
    for args in ([], ["chaster_sessions.duckdb"]):
        shown = subprocess.run(
            [*task, "sql", *args], input=script, cwd=folder, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "│     90 │" in shown.stdout and "│      2 │" in shown.stdout


def test_sql_shell_prints_every_result_of_a_line_in_order(make_api, home, monkeypatch, capsys):
    api = make_api(30)
    configure(monkeypatch, api)
    assert run_cli(capsys, "--duckdb", "out.duckdb").code == 0
    script = "select 1 as a; select 2 as b;\nselect 3 as c; select x from nowhere; select 4 as d;\n"
    done = subprocess.run(
        [sys.executable, str(ROOT / "task.py"), "sql", "out.duckdb"], input=script,
        cwd=home, env=_own_code_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1  # one statement failed; every other one printed
    cells = [line.strip("│ ") for line in done.stdout.splitlines()]
    assert [cell for cell in cells if cell in ("a", "b", "c", "d")] == ["a", "b", "c", "d"]
    assert done.stderr.strip().startswith("error: Catalog Error: Table with name nowhere")


def _newest_start(url: str) -> datetime:
    """The start of the newest session the stand-in serves (it serves newest first here)."""
    request = urllib.request.Request(  # noqa: S310 - loopback URL we started
        f"{url}/api/extensions/sessions/search",
        data=json.dumps({"extensionSlug": SLUG, "status": "all", "limit": 1}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        newest = json.loads(answer.read())["results"][0]
    return datetime.fromisoformat(newest["lock"]["startDate"].replace("Z", "+00:00"))


@pytest.mark.parametrize("fixed", [None, "2026-11-01"])
def test_the_standin_on_its_own_serves_sessions_up_to_today(fixed):
    args = ["--port", "0", "--sessions", "200", "--order", "desc", "--token", TOKEN]
    process = subprocess.Popen(
        [sys.executable, "-m", "chaster_standin", *args, *(["--now", fixed] if fixed else [])],
        stdout=subprocess.PIPE, text=True, env=_own_code_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        newest = _newest_start(process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(timeout=30)
    end = datetime.fromisoformat(fixed).replace(tzinfo=UTC) if fixed else datetime.now(UTC)
    assert end - timedelta(days=14) < newest <= end


def test_the_standin_help_shows_its_token_and_its_dates():
    shown = subprocess.run(
        [sys.executable, "-m", "chaster_standin", "--help"],
        capture_output=True, text=True, env=_own_code_env(), timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0
    assert "(default standin-token)" in shown.stdout
    assert "up to today" in shown.stdout and "--now DATE" in shown.stdout
