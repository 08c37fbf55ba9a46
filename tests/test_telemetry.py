"""dlt's anonymous telemetry is off unless the user turns it on: the dataset is about people.

A local HTTP server stands in for dlt's telemetry endpoint, so the test sees what would have been
sent. The control case (telemetry turned on) proves the server would notice events.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from conftest import ROOT, run_process, standin_env


class _Collector(BaseHTTPRequestHandler):
    events: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).events.append(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def telemetry_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    events: ClassVar[list[bytes]] = []
    handler = type("Handler", (_Collector,), {"events": events})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/track", events
    finally:
        server.shutdown()
        server.server_close()


def test_the_projects_config_turns_telemetry_off():
    config = tomllib.loads((ROOT / ".dlt" / "config.toml").read_text())
    assert config["runtime"]["dlthub_telemetry"] is False


def test_the_command_sends_no_telemetry_without_the_projects_config(
    home, make_api, telemetry_endpoint
):
    url, events = telemetry_endpoint
    api = make_api(30)
    # the home fixture's project folder has an empty .dlt/: the installed command run elsewhere
    env = {**standin_env(api), "RUNTIME__DLTHUB_TELEMETRY_ENDPOINT": url}
    result = run_process("--quiet", "--duckdb", "out.duckdb", env=env)
    assert result.code == 0, result.err
    assert events == []

    # turned back on, the same run reports to the endpoint: the server above would notice
    on = run_process(
        "--quiet", "--duckdb", "out.duckdb", env={**env, "RUNTIME__DLTHUB_TELEMETRY": "true"}
    )
    assert on.code == 0, on.err
    assert len(events) > 0
    assert b"pipeline_" in b"".join(events)
