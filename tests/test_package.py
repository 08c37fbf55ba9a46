"""The source as a package, through the doors a dlt user takes: `pip install`, the console script,
`from chaster_sessions import chaster_source` with a plain `pipeline.run`, the runner on a
dataset of another name, the folder copied into a project as `dlt init` would, and an upgrade
from the previous layout's files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from conftest import (
    ROOT,
    SLUG,
    configure,
    duplicate_rows,
    process_env,
    query,
    run_process,
    standin_env,
    stored_sessions,
)

OLD_LAYOUT = Path(__file__).parent / "fixtures" / "layout_0_1"  # what version 0.1 wrote


# it copies the project root, where test_first_contact writes a database part-way: under
# pytest-xdist the two run in one worker, one after the other
@pytest.mark.xdist_group("project-root")
def test_pip_install_from_a_copy_gives_the_console_script(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".venv*", ".git", "*.duckdb", "__pycache__")
    )
    prefix = tmp_path / "prefix"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--ignore-installed",  # else pip uninstalls the editable install from .venv
         "--prefix", str(prefix), str(copy)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    shutil.rmtree(copy)  # installed, not linked to the copy
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert (site / "chaster_sessions" / "README.md").is_file()
    assert (site / "chaster_sessions" / "requirements.txt").is_file()
    assert (site / "chaster_standin" / "server.py").is_file()
    env = process_env(PYTHONPATH=str(site), DLT_DATA_DIR=str(tmp_path / "dlt"))
    script = prefix / "bin" / "chaster-sessions"
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "usage: chaster-sessions" in helped.stdout and "exit codes" in helped.stdout
    work = tmp_path / "work"
    work.mkdir()
    demo = subprocess.run(
        [str(script), "--demo", "--quiet"], capture_output=True, text=True, env=env, cwd=work
    )
    assert demo.returncode == 0, demo.stderr
    assert "3,000 new" in demo.stdout
    located = subprocess.run(
        [sys.executable, "-c", "import chaster_sessions; print(chaster_sessions.__file__)"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert located.stdout.startswith(str(site))


def _doors(checkout: Path) -> dict[str, list[str]]:
    """The command's two doors into a checkout: the installed console script (its package taken
    from the checkout, as the editable install of task.py does) and pipelines/sessions.py."""
    script = Path(sys.executable).parent / "chaster-sessions"
    return {
        "chaster-sessions": [str(script), "--quiet"],
        "pipelines/sessions.py": [
            sys.executable,
            str(checkout / "pipelines" / "sessions.py"),
            "--quiet",
        ],
    }


def test_both_doors_read_the_same_settings_from_any_folder(make_api, tmp_path):
    api = make_api(50)
    checkout = tmp_path / "checkout"
    for part in ("sources", "pipelines"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / ".dlt").mkdir()
    (checkout / ".dlt" / "config.toml").write_text(
        f'[sources.chaster]\nextension_slug = "{SLUG}"\nbase_url = "{api.url}"\n'
        "requests_per_minute = 100000\n"
    )
    (checkout / ".dlt" / "secrets.toml").write_text(
        '[sources.chaster]\napi_token = "test-token-7f3a9c2e51"\n'
    )
    env = process_env(drop=("DLT_", "RUNTIME__"), PYTHONPATH=str(checkout / "sources"))

    def run(door: str, cwd: Path, **extra: str) -> tuple[int, str, str]:
        cwd.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            _doors(checkout)[door], cwd=cwd, capture_output=True, text=True, timeout=300,
            env={**env, "DLT_DATA_DIR": str(cwd.parent / f"dlt-{cwd.name}"), **extra},
        )  # fmt: skip
        return done.returncode, done.stdout, done.stderr.strip()

    # an empty folder: the checkout's own .dlt/, and the file lands where the user is
    for door in _doors(checkout):
        folder = tmp_path / "empty" / door.replace("/", "_")
        code, out, err = run(door, folder)
        assert code == 0, (door, err)
        assert "50 new" in out and f"DuckDB: {folder / 'chaster_sessions.duckdb'}" in out, door
    # a folder with its own .dlt/ reads that one; DLT_PROJECT_DIR wins over both
    own = tmp_path / "own"
    (own / ".dlt").mkdir(parents=True)
    (own / ".dlt" / "config.toml").write_text("[sources.chaster\n")
    chosen = tmp_path / "chosen"
    (chosen / ".dlt").mkdir(parents=True)
    (chosen / ".dlt" / "config.toml").write_text("[sources.chaster\n")
    outcomes = {
        door: (run(door, own)[::2], run(door, own, DLT_PROJECT_DIR=str(chosen))[::2])
        for door in _doors(checkout)
    }
    assert outcomes["chaster-sessions"] == outcomes["pipelines/sessions.py"]
    (in_own, in_chosen) = outcomes["chaster-sessions"]
    assert in_own[0] == 2 and in_own[1].startswith(f"error: {own / '.dlt' / 'config.toml'} is not")
    assert in_chosen[0] == 2
    assert in_chosen[1].startswith(f"error: {chosen / '.dlt' / 'config.toml'} is not")


PLAIN_RUN = """
import sys
import dlt
from chaster_sessions import chaster_source

pipeline = dlt.pipeline("plain", destination=dlt.destinations.duckdb("plain.duckdb"),
                        dataset_name="sessions_data")
info = pipeline.run(chaster_source(api_token=sys.argv[1], extension_slug=sys.argv[2],
                                   base_url=sys.argv[3]))
print(info.has_failed_jobs)
"""


def test_a_plain_pipeline_run_is_complete_and_a_second_brings_it_level(make_api, tmp_path):
    api = make_api(600, order="desc")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "plain.py").write_text(PLAIN_RUN)
    # the runner's chunk settings are in the environment: a plain run must ignore them
    env = process_env(
        PYTHONPATH=str(ROOT / "sources"),
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        SOURCES__CHASTER__CHUNK_PAGES="3",
        SOURCES__CHASTER__REQUESTS_PER_MINUTE="100000",
    )
    args = [sys.executable, "plain.py", "test-token-7f3a9c2e51", SLUG, api.url]
    first = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    database = folder / "plain.duckdb"
    stored = dict(query(database, "select session_id, lock__status from sessions_data.sessions"))
    assert stored == api.population.truth(SLUG)
    assert api.count("search") == 6  # 600 sessions, pages of 100: one walk, never in chunks

    running = api.population.session_ids(SLUG, "locked")
    for session_id in running[:5]:
        api.population.end(session_id, "deserted")
    api.population.change(running[5], score=7)
    api.population.add(SLUG, 8)
    second = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    stored = dict(query(database, "select session_id, lock__status from sessions_data.sessions"))
    assert stored == api.population.truth(SLUG)
    data = query(
        database, "select data from sessions_data.sessions where session_id = ?", [running[5]]
    )
    assert json.loads(data[0][0])["score"] == 7
    assert duplicate_rows(database, "sessions_data") == 0


CHUNKED_RUN = """
import sys
import dlt
from chaster_sessions import chaster_source, load

pipeline = dlt.pipeline("chunked", destination=dlt.destinations.duckdb("chunked.duckdb"),
                        dataset_name="sessions_data")
source = chaster_source(api_token=sys.argv[1], extension_slug=sys.argv[2], base_url=sys.argv[3],
                        privacy="pseudonymous", pseudonym_key="k", chunk_pages=3)
print(load(pipeline, source).chunks)
"""


@pytest.mark.parametrize("script", [PLAIN_RUN, CHUNKED_RUN], ids=["plain", "chunked"])
def test_a_clean_load_prints_no_dlt_warning(make_api, tmp_path, script):
    """dlt warns about each hinted column that gets no data, three paragraphs a load; the
    dictionary's columns (the credentials among them, never stored by default) must not be
    such columns, nor must the objects a self-lock has as null (`lock.keyholder`)."""
    api = make_api(600)  # two chunks of three pages for the chunked script
    (tmp_path / "run.py").write_text(script)
    env = process_env(PYTHONPATH=str(ROOT / "sources"), DLT_DATA_DIR=str(tmp_path / "dlt"))
    env = {k: v for k, v in env.items() if not k.startswith("RUNTIME__")}  # dlt's default level
    env["SOURCES__CHASTER__REQUESTS_PER_MINUTE"] = "100000"
    args = [sys.executable, "run.py", "test-token-7f3a9c2e51", SLUG, api.url]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == (["False"] if script is PLAIN_RUN else ["2"])
    assert "WARNING" not in done.stderr, done.stderr
    for credential in ("lock__combination", "lock__offer_token", "lock__shared_lock__password"):
        assert credential not in done.stderr


def test_load_on_a_dataset_of_another_name_makes_its_views(make_api, home, monkeypatch):
    import dlt

    from chaster_sessions import chaster_source, load

    api = make_api(300)
    configure(monkeypatch, api, chunk_pages="2")
    pipeline = dlt.pipeline(
        "library_user",
        destination=dlt.destinations.duckdb(str(home / "mine.duckdb")),
        dataset_name="raw_chaster",
    )
    result = load(pipeline, chaster_source())
    assert result.chunks == 2  # 3 pages in chunks of 2
    assert result.after == {SLUG: (300, 0)}
    assert "analytics.overview" in result.record.views
    api.population.delete(api.population.session_ids(SLUG, "locked")[0])
    again = load(pipeline, chaster_source())
    assert again.after == {SLUG: (300, 1)}  # the deleted one is marked, by the same runner
    overview = query(home / "mine.duckdb", "select sessions, removed from analytics.overview")
    assert overview[0][1] == 1
    assert query(home / "mine.duckdb", "select count(*) from analytics.sessions") == [(300,)]


def test_the_source_folder_copied_into_a_project_runs_its_example(make_api, tmp_path):
    api = make_api(150)
    project = tmp_path / "my_project"
    shutil.copytree(
        ROOT / "sources" / "chaster_sessions",
        project / "chaster_sessions",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "sources" / "chaster_sessions_pipeline.py", project)
    env = process_env(DLT_DATA_DIR=str(tmp_path / "dlt"), **standin_env(api))
    done = subprocess.run(
        [sys.executable, "chaster_sessions_pipeline.py"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"'{SLUG}': (150, 0)" in done.stdout
    assert query(project / "chaster_sessions.duckdb", "select count(*) from chaster.sessions") == [
        (150,)
    ]


def test_a_database_and_state_of_the_old_layout_keep_loading(make_api, home):
    """Version 0.1's tables, dlt schema, state and cursor (tests/fixtures/layout_0_1, written
    by that version against this population) keep loading: the cursor goes on, nothing reloads."""
    api = make_api(12)
    with duckdb.connect(str(home / "up.duckdb")) as con:
        con.execute(f"import database '{OLD_LAYOUT}'")
    assert stored_sessions(home / "up.duckdb") == api.population.truth(SLUG)
    [(high,)] = query(home / "up.duckdb", "select max(pagination_id) from chaster.sessions")
    env = standin_env(api)
    api.population.add(SLUG, 5)
    ended = api.population.session_ids(SLUG, "locked")[0]
    api.population.end(ended, "unlocked")
    result = run_process("--quiet", "--duckdb", "up.duckdb", env=env)
    assert result.code == 0, result.err
    assert "5 new" in result.out and "resumed" not in result.out
    running = len(api.population.truth(SLUG, "locked"))
    # the stored cursor goes on: one new page, the locked sweep, one GET; no reload
    assert api.count("search") == 1 + -(-running // 100)
    assert api.count("get") == 1
    # and it walks on from 0.1's cursor (a reload would begin with no paginationLastId)
    walk = [r.body for r in api.requests if r.body and r.body["status"] == "all"]
    assert [page["paginationLastId"] for page in walk] == [high]
    assert stored_sessions("up.duckdb") == api.population.truth(SLUG)
    assert duplicate_rows("up.duckdb") == 0


def test_the_source_module_reads_no_settings_at_import(tmp_path):
    """A typo in .dlt/config.toml must reach the command's one-line error, not an import."""
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text("[sources.chaster\n")
    code = textwrap.dedent("""
        import chaster_sessions, chaster_sessions.cli
        print("imported")
    """)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path, env=process_env(PYTHONPATH=str(ROOT / "sources")),
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout.strip() == "imported", done.stderr
