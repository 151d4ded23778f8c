"""An OpenAPI-driven fuzz run (schemathesis) against a real ``orbit serve``: no 5xx, and no write from a
request the daemon refused.

Every operation of ``/openapi.json`` is exercised but two: the event stream (it does not end) and
``POST /api/v1/cli`` (it runs command lines, which may write files where they are told: its refusals are
tested in test_serve.py). Paths that name a database get one of the directory's real databases most of
the time, so the generated bodies reach the stores and not only the 404 of an unknown name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from orbit.serve.openapi import openapi
from tests.serve_process import ServeProcess, orbit_cli

NAMES = ["kv", "events", "docs", "n", "t", "nosuch"]
schema = schemathesis.openapi.from_dict(openapi()).exclude(path_regex="/api/v1/(events|cli)$")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d: Path = tmp_path_factory.mktemp("fuzz") / "d"
    for args in (
        ("create", "kv", "--type", "keyvalue"),
        ("create", "events", "--type", "eventlog"),
        ("create", "docs", "--type", "documents", "--index", "city"),
        ("create", "n", "--type", "counter"),
        ("create", "t", "--type", "table", "--schema", "CREATE TABLE p (id TEXT PRIMARY KEY, born INTEGER)"),
    ):
        out = orbit_cli(d, *args)
        assert out.returncode == 0, out.stderr
    with ServeProcess(d) as served:
        yield served


def state(client: httpx.Client) -> Any:
    listed = client.get("/api/v1/dbs").json()["databases"]
    return sorted((x["address"], x["entries"], tuple(client.get(f"/api/v1/dbs/{x['name']}").json()["heads"]))
                  for x in listed)  # fmt: skip


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_write_from_a_refused_request(case: Any, daemon: ServeProcess) -> None:
    if case.path_parameters and "db" in case.path_parameters:
        case.path_parameters["db"] = NAMES[len(str(case.path_parameters["db"])) % len(NAMES)]
    headers = {"Authorization": f"Bearer {daemon.token}"}
    with httpx.Client(base_url=daemon.url, headers=headers, timeout=30) as client:
        before = state(client)
        response = case.call(base_url=daemon.url, headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            assert state(client) == before, (response.status_code, response.text)
