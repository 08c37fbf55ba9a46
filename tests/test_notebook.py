"""The notebook runs top to bottom against a fresh demo database and draws every chart."""

from __future__ import annotations

from collections import Counter

import nbclient
import nbformat
import pytest

from chaster_sessions.cli import demo_population
from conftest import ROOT, SLUG

NOTEBOOK = ROOT / "notebooks" / "sessions.ipynb"


@pytest.mark.xdist_group("demo")
def test_notebook_runs_against_the_demo_database(demo, monkeypatch):
    folder, _ = demo
    monkeypatch.setenv("CHASTER_DUCKDB", str(folder / "chaster_demo.duckdb"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # what is committed must not stand in for what runs now
        if cell.cell_type == "code":
            cell.outputs = []
    client = nbclient.NotebookClient(
        notebook, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell, if any cell fails

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(charts) == 8  # the last one from the action logs, which the demo loads
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"database: {folder / 'chaster_demo.duckdb'}" in text
    assert any(line.startswith(f"│ {SLUG} │ time_changed ") for line in text.splitlines())

    # the overview table the notebook prints carries the seeded figures
    population = demo_population()
    real = [
        population.session(s)["lock"]
        for s in population.session_ids(SLUG)
        if not population.session(s)["lock"]["isTestLock"]
    ]
    statuses = Counter(lock["status"] for lock in real)
    overview_row = next(line for line in text.splitlines() if line.startswith(f"│ {SLUG}"))
    cells = [c.strip() for c in overview_row.strip("│").split("│")]
    assert cells[:5] == [
        SLUG,
        str(len(real)),
        str(statuses["locked"]),
        str(statuses["unlocked"]),
        str(statuses["deserted"]),
    ]


def test_committed_outputs_come_from_the_demo_database():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    streams = "".join(
        o.get("text", "")
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    assert "database: chaster_demo.duckdb" in streams
