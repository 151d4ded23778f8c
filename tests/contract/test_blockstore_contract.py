"""One BlockStore contract, every implementation: memory, the LMDB local store, an IPFS node (Kubo fake
over MockTransport, and the real js-ipfs node), and the cached composition in front of each node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ipfs_log.blockstore import BlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import encode
from ipfs_log.errors import BlockNotFoundError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.uploads import CachedBlockStore
from orbit.storage.blocks import LocalBlockStore
from tests.fake_kubo import FakeKubo

IMPLEMENTATIONS = [
    "memory",
    "local",
    "ipfs-kubo-fake",
    "cached-kubo-fake",
    pytest.param("ipfs-node", marks=pytest.mark.ipfs),
    pytest.param("cached-node", marks=pytest.mark.ipfs),
]


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    kind: str = request.param
    if kind == "memory":
        yield MemoryBlockStore()
        return
    if kind == "local":
        local = LocalBlockStore(tmp_path / "blocks")
        yield local
        local.close()
        return
    if kind.endswith("fake"):
        client = KuboClient("http://kubo.test", transport=httpx.MockTransport(FakeKubo()), block_timeout=0.5)
    else:
        client = KuboClient(request.getfixturevalue("ipfs_node").api_url, block_timeout=0.5)
    remote = IpfsBlockStore(client)
    if kind.startswith("ipfs"):
        yield remote
    else:
        local = LocalBlockStore(tmp_path / "blocks")
        cached = CachedBlockStore(local, remote, tmp_path, background=False)
        yield cached
        assert cached.pending() == 0  # every write reached the node
        cached.close()
        local.close()
    remote.close()
    client.close()


def block(tag: str) -> tuple[CID, bytes]:
    data = encode({"tag": tag, "nonce": os.urandom(12)})  # unique: the session node keeps blocks
    return CID.for_block(data), data


def test_put_then_get(store: BlockStore) -> None:
    cid, data = block("one")
    store.put(cid, data)
    got = store.get(cid)
    assert got == data
    assert isinstance(got, bytes)
    assert store.has(cid)


def test_missing_block(store: BlockStore) -> None:
    cid, _ = block("never stored")
    with pytest.raises(BlockNotFoundError) as info:
        store.get(cid)
    assert isinstance(info.value, KeyError)
    assert info.value.cid == cid
    assert not store.has(cid)


def test_get_many_returns_what_is_held(store: BlockStore) -> None:
    held = [block(f"held {i}") for i in range(5)]
    absent = [block(f"absent {i}")[0] for i in range(2)]
    store.put_many(held)
    got = store.get_many([held[0][0], absent[0], *(c for c, _ in held[1:]), absent[1]])
    assert got == dict(held)
    assert store.get_many([]) == {}


def test_put_is_idempotent(store: BlockStore) -> None:
    cid, data = block("twice")
    store.put(cid, data)
    store.put(cid, data)
    store.put_many([(cid, data), (cid, data)])
    assert store.get(cid) == data


def test_put_many_then_get_each(store: BlockStore) -> None:
    blocks = [block(f"many {i}") for i in range(40)]
    store.put_many(blocks)
    for cid, data in blocks:
        assert store.get(cid) == data
    assert store.get_many(c for c, _ in blocks) == dict(blocks)


def test_large_block(store: BlockStore) -> None:
    data = encode({"payload": os.urandom(900_000)})  # under js-ipfs's 1 MiB request limit
    cid = CID.for_block(data)
    store.put(cid, data)
    assert store.get(cid) == data
