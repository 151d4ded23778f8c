"""``orbit serve`` with real Kubo nodes: a restarted daemon keeps replicating the databases of its
directory, and writes made through it reach the other peer live (its event stream)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orbit.ipfs.client import KuboClient
from tests.kubo_node import KuboNode
from tests.serve_process import ServeProcess, orbit_cli, wait_until

pytestmark = pytest.mark.ipfs


def ok(directory: Path, *args: str) -> str:
    out = orbit_cli(directory, *args)
    assert out.returncode == 0, f"orbit {' '.join(args)}: {out.stderr}"
    return out.stdout.strip()


def test_a_restarted_daemon_keeps_replicating_and_streams_what_arrives(
    tmp_path: Path, ipfs_node_factory: Callable[[], KuboNode]
) -> None:
    a, b = ipfs_node_factory(), ipfs_node_factory()
    with KuboClient(a.api_url) as client:
        client.swarm_connect(b.swarm_address)
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    bob_did = ok(bob, "id")
    with ServeProcess(alice, ipfs=a.api_url) as alice_daemon:
        address = ok(alice, "create", "notes", "--type", "eventlog", "--write", bob_did)
        ok(alice, "add", "notes", '"one"')
        with ServeProcess(bob, ipfs=b.api_url) as bob_daemon:
            ok(bob, "open", address)
            assert wait_until(
                lambda: '"one"' in orbit_cli(bob, "list", "notes").stdout,
                30,
                "Bob to hold Alice's first event",
            )
        alice_daemon.stop()
    # both daemons restart: each opens its registered databases and replicates them again
    with ServeProcess(alice, ipfs=a.api_url) as alice_daemon, ServeProcess(bob, ipfs=b.api_url) as bob_daemon:
        seen: list[object] = []
        with bob_daemon.client() as c, c.stream("GET", "/api/v1/events", params={"db": "notes"}) as stream:
            event = None
            deadline = time.monotonic() + 60
            got: list[str] = []
            for line in stream.iter_lines():
                got.append(line)
                assert time.monotonic() < deadline, (
                    f"Alice's write did not reach Bob's stream in 60 s: {got[-6:]}"
                )
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "status" and not seen:
                    seen.append("listening")
                    ok(alice, "add", "notes", '"two"')  # through Alice's daemon, to Bob's, live
                elif line.startswith("data:") and event == "update":
                    data = json.loads(line[5:])
                    if any(e["payload"].get("value") == "two" for e in data["entries"]):
                        assert data["local"] is False
                        break
        status = json.loads(ok(bob, "--json", "status", "notes"))
        assert status["entries"] == 2
        assert status["peers"], status


def test_open_from_a_commit_through_the_daemon(
    tmp_path: Path, ipfs_node_factory: Callable[[], KuboNode]
) -> None:
    from orbit import OrbitDB

    node = ipfs_node_factory()
    with OrbitDB(tmp_path / "alice", ipfs=node.api_url, replicate=False) as alice:
        kv = alice.open("settings", type="keyvalue", write="*")
        for i in range(100):
            kv.put(f"key {i % 10}", i)
        kv.commit()
        assert alice.ipfs is not None
        assert alice.ipfs.flush(60)
        address, state = kv.address, kv.all()
    bob = tmp_path / "bob"
    with ServeProcess(bob, ipfs=node.api_url):
        ok(bob, "open", address, "--trust", "writer")  # through the daemon, which holds the directory
        listed = [json.loads(line) for line in ok(bob, "list", "settings", "--json").splitlines()]
        assert {item["key"]: item["value"] for item in listed} == state
        assert json.loads(ok(bob, "info", "settings", "--json"))["entries"] <= 1  # a replay would hold 100
