"""``orbit serve`` as a real process on 127.0.0.1: the CLI through it, the token, bad requests, streams."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import ServeProcess, orbit_cli


def make_directory(directory: Path) -> Path:
    assert orbit_cli(directory, "create", "kv", "--type", "keyvalue").returncode == 0
    assert orbit_cli(directory, "create", "events", "--type", "eventlog").returncode == 0
    return directory


@pytest.fixture
def own(tmp_path: Path):
    """A daemon for one test (which may stop it)."""
    with ServeProcess(make_directory(tmp_path / "d")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One daemon for the tests that leave it running (each writes keys of its own)."""
    with ServeProcess(make_directory(tmp_path_factory.mktemp("serve") / "d")) as daemon:
        yield daemon


def heads(daemon: ServeProcess) -> dict[str, Any]:
    with daemon.client() as c:
        return {
            d["name"]: (d["entries"], c.get(f"/api/v1/dbs/{d['name']}").json()["heads"])
            for d in c.get("/api/v1/dbs").json()["databases"]
        }


def test_the_cli_goes_through_the_daemon_and_the_directory_is_whole_after(own: ServeProcess) -> None:
    served = own
    d = served.directory
    put = orbit_cli(d, "put", "kv", "city", '"Paris"')
    assert put.returncode == 0, put.stderr
    assert put.stdout.strip().startswith("bafy")
    added = orbit_cli(d, "add", "events", "-", input='{"n": 1}\n')
    assert added.returncode == 0, added.stderr
    got = orbit_cli(d, "get", "kv", "city")
    assert (got.returncode, got.stdout.strip()) == (0, '"Paris"')
    missing = orbit_cli(d, "get", "kv", "nope")
    assert missing.returncode == 1
    assert "no key 'nope'" in missing.stderr
    usage = orbit_cli(d, "put", "kv")
    assert usage.returncode == 2
    sql = orbit_cli(d, "create", "t", "--type", "table", "--schema", "CREATE TABLE p (id TEXT PRIMARY KEY)")
    assert sql.returncode == 0, sql.stderr
    piped = orbit_cli(
        d, "sql", "t", "--write", input="INSERT INTO p VALUES ('a');\nINSERT INTO p VALUES ('b');\n"
    )
    assert piped.returncode == 0, piped.stderr
    counted = orbit_cli(d, "--json", "sql", "t", "SELECT count(*) AS n FROM p")
    assert json.loads(counted.stdout) == [{"n": 2}]
    listed = orbit_cli(d, "--json", "list", "events")
    assert [json.loads(line)["value"] for line in listed.stdout.splitlines()] == [{"n": 1}]
    # the daemon sees what the CLI wrote, at once
    with served.client() as c:
        assert c.get("/api/v1/dbs/kv/keys/city").json() == {"key": "city", "value": "Paris"}
    assert served.stop() == 0
    assert not (d / "api").exists()
    # without the daemon the CLI opens the directory itself, and finds everything
    again = orbit_cli(d, "get", "kv", "city")
    assert (again.returncode, again.stdout.strip()) == (0, '"Paris"')


def test_files_export_and_import_resolve_relative_to_the_client(served: ServeProcess, tmp_path: Path) -> None:
    d = served.directory
    assert orbit_cli(d, "put", "kv", "exported", "1").returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "orbit", "--dir", str(d), "export", "kv", "kv.car"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "kv.car").stat().st_size > 0


def test_the_token_is_required_and_private(served: ServeProcess) -> None:
    token_file = served.directory / "api.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": served.token}):
        response = httpx.get(f"{served.url}/api/v1/dbs", headers=headers, timeout=10)
        assert response.status_code == 401
        assert "token" in response.json()["error"]
        write = httpx.put(
            f"{served.url}/api/v1/dbs/kv/keys/x", json={"value": 1}, headers=headers, timeout=10
        )
        assert write.status_code == 401
    with served.client() as c:
        assert c.get("/api/v1/dbs").status_code == 200
        assert c.get("/api/v1/dbs/kv/keys/x").status_code == 404  # nothing was written
    # no CORS: a cross-origin preflight gets no Access-Control-Allow-Origin
    pre = httpx.options(
        f"{served.url}/api/v1/dbs",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in pre.headers


def test_binding_elsewhere_without_the_token_is_refused(tmp_path: Path) -> None:
    out = orbit_cli(tmp_path / "d", "serve", "--host", "0.0.0.0", "--no-token", "--port", "0", timeout=30)
    assert out.returncode == 2
    assert "without the token" in out.stderr
    assert not (tmp_path / "d" / "api").exists()


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("PUT", "/api/v1/dbs/kv/keys/k", b"{", 400, "not JSON"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b'{"value": NaN}', 400, "NaN"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b"[1]", 400, "JSON object"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b'{"valeu": 1}', 400, "unknown fields"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b'{"value": {"/": 3}}', 400, "link or bytes"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b"\xff\xfe", 400, "UTF-8"),
    ("PUT", "/api/v1/dbs/kv/keys/k", b"", 400, "empty"),
    ("PUT", "/api/v1/dbs/nosuch/keys/k", b'{"value": 1}', 404, "no database"),
    ("PUT", "/api/v1/dbs/events/keys/k", b'{"value": 1}', 409, "eventlog"),
    (
        "POST",
        "/api/v1/dbs/kv/ops",
        b'{"ops": [{"op": "put", "key": "a", "value": 1}, {"op": "add", "value": 2}]}',
        409,
        "'add' does not apply",
    ),
    (
        "POST",
        "/api/v1/dbs/kv/ops",
        b'{"ops": [{"op": "put", "key": "a", "value": 1}, {"op": "put", "key": 3}]}',
        400,
        "ops[1].key",
    ),
    ("POST", "/api/v1/dbs/kv/ops", b'{"ops": []}', 400, "'ops'"),
    ("POST", "/api/v1/dbs/kv/sql", b'{"sql": "SELECT 1"}', 409, "table"),
    ("POST", "/api/v1/dbs", b'{"name": "kv", "type": "counter"}', 409, "already exists"),
    ("POST", "/api/v1/dbs", b'{"name": "x", "type": "nosuch"}', 400, "'type'"),
    ("POST", "/api/v1/dbs", b'{"name": "-x", "type": "counter"}', 400, "name"),
    ("GET", "/api/v1/dbs/kv/entries?limit=-1", None, 400, "limit"),
    ("GET", "/api/v1/dbs/kv/entries?limit=abc", None, 400, "limit"),
    ("GET", "/api/v1/dbs/events/keys/notacid", None, 400, "CID"),
    ("DELETE", "/api/v1/dbs/kv/keys/absent", None, 404, "no key"),
    ("POST", "/api/v1/cli", b'{"argv": "ls"}', 400, "argv"),
    ("POST", "/api/v1/cli", b'{"argv": ["ls"], "stdin": "***"}', 400, "base64"),
    ("GET", "/api/v1/nothing", None, 404, "/api/v1/nothing"),
    ("DELETE", "/api/v1/dbs", None, 405, "/api/v1/dbs"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), BAD_REQUESTS)
def test_a_bad_request_gets_a_4xx_naming_what_was_wrong_and_writes_nothing(
    served: ServeProcess, method: str, path: str, body: Any, status: int, says: str
) -> None:
    before = heads(served)
    with served.client() as c:
        response = c.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status"] == status
    assert says in error["error"]
    assert heads(served) == before
    with served.client() as c:
        assert c.get("/api/v1/dbs/kv/keys/a").status_code == 404


def test_an_oversized_body_is_refused_before_it_is_read(served: ServeProcess) -> None:
    with served.client() as c:
        big = b'{"value": "' + b"x" * (5 << 20) + b'"}'
        assert c.put("/api/v1/dbs/kv/keys/big", content=big).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"value": "'
            for _ in range(80):
                yield b"x" * 65536
            yield b'"}'

        assert c.put("/api/v1/dbs/kv/keys/big", content=chunks()).status_code == 413
        assert c.get("/api/v1/dbs/kv/keys/big").status_code == 404


def test_the_daemon_survives_10000_bad_requests(served: ServeProcess) -> None:
    kinds = [(m, p, b) for m, p, b, _, _ in BAD_REQUESTS if not p.startswith("/api/v1/cli")]
    statuses: set[int] = set()
    with served.client() as c:
        for i in range(10_000):
            method, path, body = kinds[i % len(kinds)]
            statuses.add(c.request(method, path, content=body).status_code)
        assert all(400 <= s < 500 for s in statuses), statuses
        with httpx.Client(base_url=served.url, timeout=10) as anonymous:
            for _ in range(200):
                assert anonymous.get("/api/v1/dbs").status_code == 401
        assert c.put("/api/v1/dbs/kv/keys/ok", json={"value": 1}).status_code == 200
        assert c.get("/api/v1/dbs/kv/keys/ok").json()["value"] == 1


def sse_events(response: httpx.Response):
    event = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line[5:])


def test_clients_leaving_mid_stream_do_not_hurt_the_daemon(served: ServeProcess) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {served.token}\r\n\r\n"
    ).encode()
    for i in range(30):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(request)
            assert b"200 OK" in s.recv(4096)
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        assert (
            orbit_cli(served.directory, "put", "kv", f"k{i}", str(i)).returncode == 0 if i % 10 == 0 else True
        )
    # a new stream still gets the updates of a write made through the CLI
    got: list[Any] = []
    with served.client() as c, c.stream("GET", "/api/v1/events", params={"db": "kv"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")

        def write() -> None:
            orbit_cli(served.directory, "put", "kv", "live", '"yes"')

        writer = threading.Thread(target=write)
        for event, data in sse_events(response):
            if event == "status" and not writer.is_alive() and not got:
                writer.start()
            if event == "update":
                got = data["entries"]
                break
        writer.join(60)
    assert got[0]["payload"] == {"op": "PUT", "key": "live", "value": "yes"}


def test_follow_through_the_daemon_prints_writes_as_they_come(served: ServeProcess) -> None:
    follow = subprocess.Popen(
        [sys.executable, "-m", "orbit", "--dir", str(served.directory), "--json", "follow", "kv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(follow.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        # the stream is up once the daemon counts a listener; until then, write again
        for n in range(40):
            assert orbit_cli(served.directory, "put", "kv", "f", str(n)).returncode == 0
            reader.join(0.5)
            if lines:
                break
        assert lines, "follow printed nothing"
        entry = json.loads(lines[0])
        assert entry["payload"]["key"] == "f"
    finally:
        follow.terminate()
        follow.communicate(timeout=15)


def test_a_stale_api_file_is_ignored(tmp_path: Path) -> None:
    d = tmp_path / "d"
    assert orbit_cli(d, "create", "kv", "--type", "keyvalue").returncode == 0
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "api").write_text(f"http://127.0.0.1:{port}\n")
    (d / "api.token").write_text("x" * 43 + "\n")
    (d / "api.token").chmod(0o600)
    put = orbit_cli(d, "put", "kv", "a", "1")
    assert put.returncode == 0, put.stderr
    with ServeProcess(d) as daemon, daemon.client() as c:
        assert c.get("/api/v1/dbs/kv/keys/a").json()["value"] == 1


def test_a_second_daemon_on_the_directory_is_refused(served: ServeProcess) -> None:
    out = orbit_cli(served.directory, "serve", "--port", "0", timeout=30)
    assert out.returncode == 1
    assert "already serves" in out.stderr
    assert (served.directory / "api").read_text().strip() == served.url


def test_an_api_file_naming_something_else_is_stale_too(tmp_path: Path) -> None:
    d = make_directory(tmp_path / "d")
    with ServeProcess(make_directory(tmp_path / "other")) as other:  # another directory's daemon
        (d / "api").write_text(other.url + "\n")
        (d / "api.token").write_text("y" * 43 + "\n")
        (d / "api.token").chmod(0o600)
        put = orbit_cli(d, "put", "kv", "mine", "1")
        assert put.returncode == 0, put.stderr
        with other.client() as c:
            assert c.get("/api/v1/dbs/kv/keys/mine").status_code == 404  # written here, not there
    assert orbit_cli(d, "get", "kv", "mine").stdout.strip() == "1"


def test_the_daemon_stops_promptly_with_a_stream_open(own: ServeProcess) -> None:
    with own.client() as c, c.stream("GET", "/api/v1/events") as response:
        assert next(response.iter_lines()).startswith("retry:")
        assert own.stop(timeout=15) == 0
    assert not (own.directory / "api").exists()
