"""The command line with a real IPFS node: open by address from the node, status, follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbit import OrbitDB
from orbit.cli import main
from tests.conftest import ALICE
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
    capsys.readouterr()
    assert main(["get", "shared-settings", "theme", "--dir", b, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == "dark"
    assert main(["status", "shared-settings", "--ipfs", ipfs_node.api_url, "--dir", b, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["address"] == address
    assert state["entries"] == 1
    assert state["node"] == ipfs_node.api_url


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
