"""The README's ways into the data work as written: the SQL shell and Python."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT, SLUG, configure, run_cli


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
