"""OrbitDB(directory, ipfs=…) on the real node: a database written with ipfs=, closed, and opened by
address from another directory with the same node reads the same state; its heads are pinned."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ipfs_log.cid import CID
from orbit import OrbitDB
from orbit.ipfs.client import KuboClient
from orbit.ipfs.uploads import CachedBlockStore
from tests.conftest import ALICE, BOB
from tests.ipfs_node import IpfsNode


def _stuck(uploads: CachedBlockStore) -> str:
    """What a flush that timed out leaves: pending uploads with their errors, pins, the last error."""
    return (
        f"{uploads.pending()} pending ({uploads.pending_errors()}), pins pending: {uploads.pins_pending},"
        f" last error: {uploads.last_error!r}"
    )


def test_written_with_ipfs_opened_by_address_elsewhere(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    name = f"settings-{os.urandom(4).hex()}"
    with OrbitDB(tmp_path / "alice", identity=ALICE, ipfs=ipfs_node.api_url) as alice:
        kv = alice.open(name, type="keyvalue")
        for i in range(60):
            kv.put(f"key {i % 20}", i)
        kv.delete("key 0")
        events = alice.open(f"{name}-events", type="eventlog")
        for i in range(100):
            events.add({"i": i})
        assert alice.ipfs is not None
        assert alice.ipfs.flush(60), _stuck(alice.ipfs.uploads)
        kv_state, kv_heads, kv_address = kv.all(), kv.heads(), kv.address
        ev_values, ev_heads, ev_address = [e.value for e in events.all()], events.heads(), events.address
        manifests = [kv.manifest.cid, events.manifest.cid]

    with KuboClient(ipfs_node.api_url) as kubo:
        recursive = kubo.pin_ls(type="recursive")  # `pin/ls`: the heads, recursively
        assert set(kv_heads + ev_heads + manifests) <= set(recursive)
        assert all(recursive[c] == "recursive" for c in kv_heads + ev_heads)

    progress: list[int] = []
    with OrbitDB(tmp_path / "bob", identity=BOB, ipfs=ipfs_node.api_multiaddr) as bob:
        copy = bob.open(kv_address, type="keyvalue", progress=progress.append)
        assert copy.all() == kv_state
        assert copy.heads() == kv_heads
        assert progress[-1] == 61
        copied_events = bob.open(ev_address, type="eventlog")
        assert [e.value for e in copied_events.all()] == ev_values
        assert copied_events.heads() == ev_heads


def test_readme_ipfs_example_against_the_node(
    ipfs_node: IpfsNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Using a local IPFS daemon", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert '"http://127.0.0.1:5001"' in example
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example.replace("http://127.0.0.1:5001", ipfs_node.api_url), "README.md", "exec"), namespace)
    address = namespace["address"]
    assert isinstance(address, str)
    with OrbitDB(tmp_path / "elsewhere", ipfs=ipfs_node.api_url) as other:
        events = other.open(address, type="eventlog")
        assert [e.value for e in events.all()] == [{"note": "kept locally and on the node"}]


def test_a_newcomer_opens_from_a_commit_with_the_state_pack_the_node_names(
    ipfs_node: IpfsNode, tmp_path: Path
) -> None:
    name = f"packed-{os.urandom(4).hex()}"
    with OrbitDB(tmp_path / "alice", identity=ALICE, ipfs=ipfs_node.api_url, replicate=False) as alice:
        kv = alice.open(name, type="keyvalue")
        for i in range(200):
            kv.put(f"key {i % 40}", {"n": i, "pad": "x" * 40})
        commit = kv.commit()
        assert alice.ipfs is not None
        assert alice.ipfs.flush(60), _stuck(alice.ipfs.uploads)
        pack = alice.ipfs.state_pack_of(kv.address)
        assert pack is not None
        assert pack.commit == commit.cid
        state, address = kv.all(), kv.address
    with OrbitDB(tmp_path / "bob", identity=BOB, ipfs=ipfs_node.api_url, replicate=False) as bob:
        assert bob.ipfs is not None
        manifest = CID.parse(address.removeprefix("/orbitdb/"))
        assert bob.ipfs.state_pack_on_node(manifest) == pack  # named in the node's MFS
        block = bob.ipfs.commit_of(manifest)  # what a newcomer that knows only the address finds
        assert block == commit.block
        copy = bob.open(address, snapshot=block, trust="writer", type="keyvalue")
        assert copy.all() == state
        assert copy.state_root() == commit.root
