"""Block stores on the real IPFS node: a log written through the node and read back by another replica,
recursive pins of heads, CAR files both ways with the node, and a node killed in a write loop (and
restarted over the stale lock a SIGKILL leaves)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

from ipfs_log import Log, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import encode
from orbit.car import read_car, write_car
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.uploads import CachedBlockStore
from orbit.storage.blocks import LocalBlockStore
from tests.conftest import ALICE, BOB, WRITERS
from tests.ipfs_node import IpfsNode


def fresh_log_id(tag: str) -> str:
    return f"{tag}-{os.urandom(6).hex()}"  # the session node keeps blocks: never reuse a log


def test_log_through_the_node_with_recursive_pins(ipfs_node: IpfsNode) -> None:
    with IpfsBlockStore(ipfs_node.api_url, timeout=5) as remote:
        log_id = fresh_log_id("pins")
        writer = Log(ALICE, remote, log_id=log_id, access=WRITERS)
        first = writer.append({"n": 0})
        for i in range(1, 30):
            writer.append({"n": i})
        remote.pin(writer.head_cids)
        assert remote.pinned([*writer.head_cids, first.cid]) == set(writer.head_cids)
        pins = remote.client.pin_ls([first.cid])  # asks the node to walk the pinned log
        assert pins[first.cid].startswith("indirect")  # kept through next/refs links
        # another replica, nothing local: fetched from the node, every entry verified
        reader = Log(BOB, MemoryBlockStore(), log_id=log_id, access=WRITERS)
        reader.join_heads(writer.head_cids, source=remote)
        assert [e.payload for e in reader] == [{"n": i} for i in range(30)]
        old_head = writer.head_cids
        writer.append({"n": 30})
        remote.pin(writer.head_cids, previous=old_head)
        assert remote.pinned() >= set(writer.head_cids)
        assert not remote.pinned(old_head)  # moved: the old head is no longer a recursive pin


def test_pins_move_along_a_log_far_ahead_quickly(ipfs_node: IpfsNode) -> None:
    """Kubo's ``pin/update`` from head 28 to head 44 of this log ran past 15 s (its pairwise diff of the two
    DAGs follows every ``refs`` skip link again and again); moving the pin must take one ordinary pin."""
    with IpfsBlockStore(ipfs_node.api_url, timeout=20) as remote:
        log = Log(ALICE, remote, log_id=fresh_log_id("far"), access=WRITERS)
        heads = [log.append({"n": i}).cid for i in range(60)]
        remote.pin([heads[28]])
        remote.pin([heads[44]], previous=[heads[28]])  # IpfsTimeoutError with pin/update
        assert remote.pinned(heads) == {heads[44]}
        remote.pin([heads[59]], previous=[heads[44]])
        assert remote.pinned(heads) == {heads[59]}
        assert remote.client.pin_ls([heads[0]])[heads[0]].startswith("indirect")


def test_car_written_by_orbit_imports_into_the_node_and_back(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    log_id = fresh_log_id("car")
    log = Log(ALICE, MemoryBlockStore(), log_id=log_id, access=WRITERS)
    for i in range(50):
        log.append({"event": i})
    path = tmp_path / "log.car"
    write_car(path, log.head_cids, ((e.cid, e.block) for e in log))
    with KuboClient(ipfs_node.api_url) as kubo:
        assert kubo.dag_import(path) == log.head_cids  # `ipfs dag import` of orbit's CAR
        assert log.head_cids[0] in kubo.pin_ls(type="recursive")  # pin-roots
        exported = io.BytesIO()
        kubo.dag_export(log.head_cids[0], exported)  # `ipfs dag export <head>`
    roots, blocks = read_car(exported.getvalue())
    assert roots == log.head_cids
    assert len(blocks) == 50
    replica = Log(BOB, MemoryBlockStore(), log_id=log_id, access=WRITERS)
    source = MemoryBlockStore()
    source.put_many(blocks.items())
    replica.join_heads(roots, source=source)  # every entry verified
    assert [e.payload for e in replica] == [e.payload for e in log]


def test_node_killed_in_a_write_loop_loses_no_acknowledged_write(
    ipfs_node_factory: Callable[[], IpfsNode], tmp_path: Path
) -> None:
    node = ipfs_node_factory()
    client = KuboClient(node.api_url, timeout=5, block_timeout=2)
    local = LocalBlockStore(tmp_path / "blocks")
    store = CachedBlockStore(local, IpfsBlockStore(client), tmp_path, retry_interval=0.2)
    acknowledged: list[tuple[CID, bytes]] = []
    for i in range(150):
        if i == 50:
            node.kill()
        if i == 100:
            assert store.pending() >= 50  # acknowledged while the node was down, queued
            assert not node.running
            (node.repo / "repo.lock").write_text("stale")  # what a SIGKILL can leave behind
            api_port, peer = node.api_port, node.peer_id
            node.start()  # the stale lock is cleared; same ports, same identity
            assert (node.api_port, node.peer_id) == (api_port, peer)
        data = encode({"i": i, "nonce": os.urandom(8)})
        cid = CID.for_block(data)
        store.put(cid, data)  # returns only once durable locally
        acknowledged.append((cid, data))
    assert all(local.get(cid) == data for cid, data in acknowledged)
    deadline = time.monotonic() + 30
    while store.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.pending() == 0, store.pending_errors()
    with KuboClient(node.api_url) as check:
        for cid, data in acknowledged:
            assert check.block_get(cid, timeout=2) == data
    store.close()
    local.close()
    client.close()
