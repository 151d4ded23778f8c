"""The command line with a real IPFS node: open by address from the node, status, follow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ipfs_log.cid import CID
from orbit import OrbitDB
from orbit.cli import main
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from orbit.state import EMPTY_ROOT, Commit
from tests.conftest import ALICE, BOB
from tests.ipfs_node import IpfsNode


def test_open_from_the_node_then_read_and_status(
    ipfs_node: IpfsNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=ipfs_node.api_url, pin=False, replicate=False) as a:
        kv = a.open("shared-settings", type="keyvalue", write="*")
        kv.put("theme", "dark")
        address = kv.address
        assert a.ipfs is not None
        assert a.ipfs.flush(60)
    b = str(tmp_path / "b")
    assert main(["open", address, "--ipfs", ipfs_node.api_url, "--dir", b]) == 0
    assert "reached 1 entry (from the node's record and 0 peers)" in capsys.readouterr().out
    assert main(["get", "shared-settings", "theme", "--dir", b, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == "dark"
    assert main(["status", "shared-settings", "--ipfs", ipfs_node.api_url, "--dir", b, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["address"] == address
    assert state["entries"] == 1
    assert state["node"] == ipfs_node.api_url
    assert main(["status", "shared-settings", "--ipfs", ipfs_node.api_url, "--dir", b]) == 0
    human = capsys.readouterr().out
    assert re.search(rf"^address +{address}$", human, re.M), human  # a table for people: no JSON quotes
    assert '"' not in human
    assert "synced" in human


def test_follow_says_when_it_starts(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    directory = tmp_path / "a"
    with OrbitDB(directory, identity=ALICE) as a:
        a.open("notes", type="eventlog").add("one")
    env = {k: v for k, v in os.environ.items() if k not in ("ORBIT_DIR", "IPFS_API")}
    argv = [
        sys.executable,
        "-m",
        "orbit",
        "follow",
        "notes",
        "--dir",
        str(directory),
        "--ipfs",
        ipfs_node.api_url,
    ]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as follow:
        _first_line_then_interrupt(follow)


def _first_line_then_interrupt(follow: subprocess.Popen[str]) -> None:
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(follow.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(60)
        assert lines, "follow printed nothing when it started"
        assert lines[0].startswith("following notes (/orbitdb/"), lines[0]
        assert "1 entry so far" in lines[0]
        assert "Ctrl-C stops" in lines[0]
    finally:
        follow.send_signal(signal.SIGINT)
        try:
            assert follow.wait(30) == 130
        finally:
            follow.kill()


def test_open_of_an_address_the_node_lacks_is_one_clear_error(
    ipfs_node: IpfsNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a:  # never on the node
        address = a.open("nowhere", type="keyvalue").address
    code = main(["open", address, "--ipfs", ipfs_node.api_url, "--dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "did not find the manifest" in err


def test_open_of_an_address_nobody_serves_says_nothing_was_reached(
    ipfs_node: IpfsNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=ipfs_node.api_url, replicate=False) as a:
        address = a.open("unserved", type="keyvalue").address  # its manifest is on the node, no heads
        assert a.ipfs is not None
        assert a.ipfs.flush(60)
    b = str(tmp_path / "b")
    code = main(["open", address, "--ipfs", ipfs_node.api_url, "--dir", b, "--wait", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "nothing reached" in err
    assert main(["ls", "--dir", b]) == 0
    assert "unserved" not in capsys.readouterr().out  # nothing left registered
    assert main(["open", address, "--ipfs", ipfs_node.api_url, "--dir", b, "--wait", "0"]) == 0  # on purpose
    assert capsys.readouterr().out.startswith("unserved  keyvalue")
    assert main(["open", address, "--dir", b, "--wait", "soon"]) == 2  # a usage error


def test_open_from_the_newest_commit_the_node_keeps(
    ipfs_node: IpfsNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=ipfs_node.api_url, replicate=False) as a:
        kv = a.open(f"committed-{os.urandom(4).hex()}", type="keyvalue")
        for i in range(300):
            kv.put(f"key {i % 30}", i)
        kv.commit()
        kv.put("after the commit", True)  # taken the usual way, after the commit's heads
        bare = a.open(f"uncommitted-{os.urandom(4).hex()}", type="keyvalue")
        bare.put("k", 1)
        assert a.ipfs is not None
        assert a.ipfs.flush(60)
        address, state, bare_address = kv.address, kv.all(), bare.address
    b = str(tmp_path / "b")
    argv = ["--ipfs", ipfs_node.api_url, "--dir", b]
    assert main(["open", address, "--trust", "writer", "--as", "settings", "--json", *argv]) == 0
    opened = json.loads(capsys.readouterr().out)
    assert opened["name"] == "settings"
    assert opened["reached"]["entries"] >= 1
    assert main(["list", "settings", "--json", "--dir", b]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {item["key"]: item["value"] for item in listed} == state
    assert main(["info", "settings", "--json", "--dir", b]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 1  # held: the one after the commit, no replay
    assert main(["open", bare_address, "--trust", "writer", *argv]) == 1
    assert "keeps no commit" in capsys.readouterr().err
    with KuboClient(ipfs_node.api_url) as kubo:  # the node is untrusted: a forged commit stores nothing
        manifest = CID.parse(bare_address.removeprefix("/orbitdb/"))
        forged = Commit.create(BOB, bare_address, [], EMPTY_ROOT, 0)  # BOB may not write there
        kubo.files_write(NodeLink.commit_path(manifest), forged.block)
        assert main(["open", bare_address, "--trust", "writer", *argv]) == 1
        forged_error = capsys.readouterr().err
        assert "1 commits refused" in forged_error, forged_error
        kubo.files_write(NodeLink.commit_path(manifest), b"\xa1junk")
        assert main(["open", bare_address, "--trust", "writer", *argv]) == 1
        assert "not canonical DAG-CBOR" in capsys.readouterr().err
    assert main(["ls", "--json", "--dir", b]) == 0
    assert [json.loads(line)["address"] for line in capsys.readouterr().out.splitlines()] == [address]
    assert main(["open", address, "--trust", "writer", "--dir", str(tmp_path / "c")]) != 0  # needs a node
