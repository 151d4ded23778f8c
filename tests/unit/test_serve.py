"""orbit serve in-process: the HTTP API over a real OrbitDB (Starlette's test client), its files and codec."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import given

from orbit.errors import ProofError, ServeError
from orbit.facade import OrbitDB
from orbit.registry import Registry, RegistryEntry
from orbit.serve.app import Host, build_app
from orbit.serve.client import DaemonClient
from orbit.serve.daemon import Daemon, is_loopback
from orbit.serve.files import load_token, read_api, remove_api, write_api
from orbit.serve.hub import MAX_QUEUED, EventHub
from orbit.serve.values import BadValue, from_json, to_json
from orbit.sql.proofs import provable_range
from tests.property.strategies import ipld_values
from tests.serve_process import wait_until

TOKEN = "t" * 43


@pytest.fixture
def api(tmp_path: Path):
    orbit = OrbitDB(tmp_path / "d")
    registry = Registry(orbit.directory)
    for name, kind, options in (
        ("kv", "keyvalue", {}),
        ("ev", "eventlog", {}),
        ("n", "counter", {}),
        ("docs", "documents", {"index_by": "id"}),
    ):
        db = orbit.open(name, type=kind, **options)
        registry.add(RegistryEntry(name, db.address, kind, options))
    host = Host(orbit, TOKEN)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(uvicorn.Config(build_app(host), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        wait_until(lambda: server.started, 10, "the server to start")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
            yield client, host
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        host.hub.close()
        orbit.close()


def test_writes_and_reads_of_each_type(api: Any) -> None:
    c, host = api
    assert c.put("/api/v1/dbs/kv/keys/a%2Fb", json={"value": {"/": {"bytes": "aGk"}}}).status_code == 200
    assert c.get("/api/v1/dbs/kv/keys/a%2Fb").json() == {"key": "a/b", "value": {"/": {"bytes": "aGk"}}}
    added = c.post("/api/v1/dbs/ev/ops", json={"ops": [{"op": "add", "value": 1}, {"op": "add", "value": 2}]})
    assert added.status_code == 200
    cid = added.json()["entries"][0]
    assert c.get(f"/api/v1/dbs/ev/keys/{cid}").json()["value"] == 1
    assert [e["value"] for e in c.get("/api/v1/dbs/ev/values").json()["events"]] == [2, 1]
    assert c.post(
        "/api/v1/dbs/n/ops", json={"ops": [{"op": "inc", "by": 5}, {"op": "inc", "by": -2}]}
    ).is_success
    assert c.get("/api/v1/dbs/n/values").json()["value"] == 3
    assert c.put("/api/v1/dbs/docs/keys/ada", json={"value": {"born": 1815}}).status_code == 200
    assert c.put("/api/v1/dbs/docs/keys/ada", json={"value": {"id": "bob"}}).status_code == 400
    assert c.post("/api/v1/dbs/docs/query", json={"conditions": ["born>1800"]}).json()["documents"] == [
        {"id": "ada", "born": 1815}
    ]
    assert (
        c.post("/api/v1/dbs/docs/query", json={"where": {"born": 1815}}).json()["documents"][0]["id"] == "ada"
    )
    assert c.post("/api/v1/dbs/docs/query", json={"conditions": ["nocondition"]}).status_code == 422
    entries = c.get("/api/v1/dbs/ev/entries").json()["entries"]
    assert [e["payload"]["value"] for e in entries] == [2, 1]
    assert entries[0]["next"] == [entries[1]["cid"]]
    assert entries[0]["mine"]
    assert entries[0]["verified"]
    address = host.orbit.databases[0].address
    assert c.get(f"/api/v1/dbs/{address.removeprefix('/orbitdb/')}").json()["address"] == address


def test_a_batch_with_one_bad_operation_writes_nothing(api: Any) -> None:
    c, host = api
    kv = host.database("kv")
    before = kv.heads()
    bad = {"ops": [{"op": "put", "key": "a", "value": 1}, {"op": "put", "key": "b", "value": {"/": "x"}}]}
    response = c.post("/api/v1/dbs/kv/ops", json=bad)
    assert response.status_code == 400
    assert "ops[1].value" in response.json()["error"]
    assert kv.heads() == before
    assert "a" not in kv


def test_create_open_and_sql(api: Any) -> None:
    c, host = api
    schema = "CREATE TABLE people (id TEXT PRIMARY KEY, born INTEGER)"
    made = c.post("/api/v1/dbs", json={"name": "t", "type": "table", "schema": schema})
    assert made.status_code == 201
    assert c.post("/api/v1/dbs", json={"name": "t", "type": "table", "schema": schema}).status_code == 200
    assert Registry(host.directory).get("t") is not None
    w = c.post(
        "/api/v1/dbs/t/sql",
        json={"sql": "INSERT INTO people VALUES (?, ?)", "params": ["ada", 1815], "write": True},
    )
    assert w.status_code == 200
    assert w.json()["rowcount"] == 1
    assert w.json()["entry"].startswith("bafy")
    q = c.post("/api/v1/dbs/t/sql", json={"sql": "SELECT id, born FROM people"})
    assert q.json() == {"columns": ["id", "born"], "rows": [["ada", 1815]]}
    refused = c.post("/api/v1/dbs/t/sql", json={"sql": "DELETE FROM people"})
    assert refused.status_code == 422
    assert c.post("/api/v1/dbs/t/sql", json={"sql": "SELECT count(*) FROM people"}).json()["rows"] == [[1]]
    again = c.post("/api/v1/dbs", json={"address": made.json()["address"], "as": "t2"})
    assert again.status_code == 200
    assert again.json()["name"] == "t"
    assert Registry(host.directory).get("t2") is None


def test_the_token_guards_everything_but_the_explorer_page(api: Any) -> None:
    c, _ = api
    with httpx.Client(base_url=c.base_url, timeout=10) as anonymous:
        assert anonymous.get("/api/v1/dbs").status_code == 401
        assert anonymous.get("/openapi.json").status_code == 401
        page = anonymous.get("/")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
    assert c.get("/openapi.json").json()["openapi"].startswith("3.")


def test_status_without_a_node(api: Any) -> None:
    c, _ = api
    status = c.get("/api/v1/dbs/kv/status").json()
    assert status["replicating"] is False
    assert status["entries"] == 0


def test_hub_drops_a_listener_that_does_not_read() -> None:
    async def run() -> None:
        hub = EventHub()
        listener = hub.listen(asyncio.get_running_loop(), None)
        for i in range(MAX_QUEUED + 10):
            hub.publish("/orbitdb/x", {"event": "update", "data": {"i": i}})
        for _ in range(400):  # the loop runs the hand-offs once this task yields
            if listener.overflowed:
                break
            await asyncio.sleep(0.005)
        assert listener.overflowed
        items: list[Any] = []
        while not listener.queue.empty():
            items.append(listener.queue.get_nowait())
        assert items[-1] is None
        assert items[-2]["event"] == "overflow"
        hub.close()

    asyncio.run(run())


@given(ipld_values())
def test_values_round_trip(value: Any) -> None:
    assert from_json(to_json(value)) == value


@pytest.mark.parametrize(
    "bad",
    [{"/": 1}, {"/": "notacid"}, {"/": {"bytes": "@@"}}, {"/": "x", "y": 1}, float("nan"), [float("inf")]],
)
def test_values_refuse_what_is_not_ipld(bad: Any) -> None:
    with pytest.raises(BadValue):
        from_json(bad)


def test_token_file_is_private_and_checked(tmp_path: Path) -> None:
    assert load_token(tmp_path) is None
    token = load_token(tmp_path, create=True)
    assert token is not None
    assert len(token) >= 32
    assert os.stat(tmp_path / "api.token").st_mode & 0o777 == 0o600
    assert load_token(tmp_path) == token
    (tmp_path / "api.token").chmod(0o644)
    with pytest.raises(ServeError, match="readable by others"):
        load_token(tmp_path)
    (tmp_path / "api.token").write_text("short")
    (tmp_path / "api.token").chmod(0o600)
    with pytest.raises(ServeError, match="does not hold a token"):
        load_token(tmp_path)


def test_api_file_names_only_a_loopback_daemon(tmp_path: Path) -> None:
    write_api(tmp_path, "http://127.0.0.1:5")
    assert read_api(tmp_path) == "http://127.0.0.1:5"
    remove_api(tmp_path, "http://127.0.0.1:6")  # another daemon's: left
    assert read_api(tmp_path) == "http://127.0.0.1:5"
    remove_api(tmp_path, "http://127.0.0.1:5")
    assert read_api(tmp_path) is None
    (tmp_path / "api").write_text("http://evil.example:80\n")
    assert read_api(tmp_path) is None


def test_only_loopback_goes_without_the_token(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert not is_loopback("192.168.1.2")
    with pytest.raises(ServeError, match="without the token"):
        Daemon(tmp_path, host="0.0.0.0", token=False)
    Daemon(tmp_path, host="127.0.0.1", token=False)  # allowed


def test_the_daemon_answers_with_proofs_a_client_checks_with_the_writers_alone(api: Any) -> None:
    c, host = api
    writers = [host.orbit.identity.public_key]
    assert c.put("/api/v1/dbs/kv/keys/color", json={"value": "blue"}).status_code == 200
    schema = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)"
    assert c.post("/api/v1/dbs", json={"name": "t", "type": "table", "schema": schema}).status_code == 201
    rows = {"sql": "INSERT INTO people VALUES (?, ?), (?, ?), (?, ?)", "params": [1, "a", 5, "b", 9, "c"]}
    assert c.post("/api/v1/dbs/t/sql", json={**rows, "write": True}).status_code == 200

    with DaemonClient(str(c.base_url), TOKEN) as daemon:
        answer = daemon.prove("kv", "color")
        assert (answer.present, answer.value) == (True, "blue")
        assert answer.verify(writers).root == host.orbit.open("kv").state_root()
        absent = daemon.prove("kv", "nope")
        assert not absent.present
        absent.verify(writers)
        with pytest.raises(ProofError):  # a daemon that lies about the value is caught by the client
            dataclasses.replace(answer, value="red").verify(writers)

        query = "SELECT * FROM people WHERE id BETWEEN ? AND ?"
        ranged = daemon.prove_sql("t", query, (2, 9))
        ranged.verify(writers)
        assert [row for _, row in ranged.items] == [{"id": 5, "name": "b"}, {"id": 9, "name": "c"}]
        assert (ranged.lo, ranged.hi) == provable_range(host.orbit.open("t").schema, query, (2, 9))
        with pytest.raises(ProofError):
            dataclasses.replace(ranged, items=ranged.items[1:]).verify(writers)

    assert c.get("/api/v1/dbs/n/proofs/keys/x").status_code == 409  # a counter: not by key
    assert (
        c.post(
            "/api/v1/dbs/t/proofs/sql", json={"sql": "SELECT * FROM people WHERE name = ?", "params": ["a"]}
        ).status_code
        == 422
    )
    assert c.post("/api/v1/dbs/t/proofs/sql", json={"sql": 1}).status_code == 400
