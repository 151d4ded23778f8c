"""Packs (orbit.ipfs.packs): the policy's laws, and a database's history read from packs on a Kubo fake —
including packs that lie, and uploads that go as CAR files (dag/import) with per-block fallbacks."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log.cid import CID
from ipfs_log.codec import decode
from orbit import OrbitDB
from orbit.errors import IpfsBlockMismatchError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from orbit.ipfs.packs import MAX_PACK_ENTRIES, MIN_PACK, Pack, cuts, plan
from tests.conftest import ALICE, BOB
from tests.fake_kubo import FakeKubo


def client(fake: FakeKubo) -> KuboClient:
    return KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)


def _fake_cid(n: int) -> CID:
    return CID.for_block(n.to_bytes(8, "big"))


@given(st.lists(st.integers(1, 5_000), min_size=1, max_size=200))
def test_packs_stay_contiguous_few_and_cheap(growth: list[int]) -> None:
    packs: list[Pack] = []
    admitted = rewritten = made = 0
    for step in growth:
        admitted += step
        todo = plan(packs, admitted)
        if todo is None:
            assert admitted - (packs[-1].end if packs else 0) < MIN_PACK
            continue
        made += 1
        assert set(todo.keep) | set(todo.replaces) == set(packs)
        packs = [*todo.keep, *(Pack(_fake_cid(made), a, n) for a, n in cuts(todo.first, admitted))]
        rewritten += admitted - todo.first
        end = 0
        for pack in packs:  # contiguous from admission 0, none over the limit
            assert pack.first == end
            assert 0 < pack.count <= MAX_PACK_ENTRIES  # what a reader accepts
            end = pack.end
        assert end == admitted
        assert len(packs) <= 2 * math.log2(max(2, admitted / MIN_PACK)) + 2 + admitted // MAX_PACK_ENTRIES
    # each entry is rewritten O(log n) times
    assert rewritten <= admitted * (2 * math.log2(max(2, admitted / MIN_PACK)) + 3)


def test_a_history_written_faster_than_packs_were_cut_goes_as_packs_a_reader_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orbit.ipfs.packs.MAX_PACK_ENTRIES", 150)  # 400 entries in one batch: 3 packs
    fake = FakeKubo()
    address, _ = _write(tmp_path, fake, 400)
    manifest = CID.parse(address.removeprefix("/orbitdb/"))
    record = decode(fake.files[NodeLink.heads_path(manifest)])
    assert isinstance(record, dict)
    packs = record["packs"]
    assert isinstance(packs, list)
    assert [(p["first"], p["count"]) for p in packs if isinstance(p, dict)] == [
        (0, 150),
        (150, 150),
        (300, 100),
    ]
    fake.calls.clear()
    with OrbitDB(tmp_path / "reader", identity=BOB, ipfs=client(fake), replicate=False) as reader:
        copy = reader.open(address, type="eventlog")  # the record is accepted: no pack over the limit
        assert [e.value for e in copy.all()] == [{"n": i} for i in range(400)]
    assert fake.endpoints().count("cat") == 3
    assert fake.endpoints().count("block/get") <= 2


def test_a_stale_or_gapped_pack_list_is_replaced() -> None:
    a = Pack(_fake_cid(1), 0, 500)
    gap = Pack(_fake_cid(2), 600, 500)
    todo = plan([a, gap], 900)  # 400 unpacked after a: a pack of their own
    assert todo is not None
    assert todo.keep == (a,)
    assert todo.replaces == (gap,)
    assert todo.first == 500
    ahead = Pack(_fake_cid(3), 0, 5_000)  # a record from another history: more than the log holds
    todo = plan([ahead], 1_000)
    assert todo is not None
    assert todo.first == 0
    assert todo.replaces == (ahead,)


def _write(tmp_path: Path, fake: FakeKubo, n: int) -> tuple[str, list[CID]]:
    with OrbitDB(tmp_path / "writer", identity=ALICE, ipfs=client(fake), replicate=False) as orbit:
        events = orbit.open("events", type="eventlog", write=[ALICE.public_key, BOB.public_key])
        with events.batch() as batch:
            for i in range(n):
                batch.add({"n": i})
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
        return events.address, events.heads()


def test_a_reader_streams_the_history_from_packs_not_the_dag(tmp_path: Path) -> None:
    fake = FakeKubo()
    address, heads = _write(tmp_path, fake, 300)
    manifest = CID.parse(address.removeprefix("/orbitdb/"))
    record = decode(fake.files[NodeLink.heads_path(manifest)])
    assert isinstance(record, dict)
    assert record["heads"] == heads
    packs = record["packs"]
    assert isinstance(packs, list)
    assert [(p["first"], p["count"]) for p in packs if isinstance(p, dict)] == [(0, 300)]
    assert fake.endpoints().count("block/put") <= 1  # the manifest alone; 300 entries went as CAR files
    fake.calls.clear()
    with OrbitDB(tmp_path / "reader", identity=BOB, ipfs=client(fake), replicate=False) as reader:
        copy = reader.open(address, type="eventlog")
        assert [e.value for e in copy.all()] == [{"n": i} for i in range(300)]
    assert "cat" in fake.endpoints()
    assert "dag/export" not in fake.endpoints()
    assert fake.endpoints().count("block/get") <= 2  # the manifest, at most one more


def test_a_lying_pack_is_ignored_and_the_log_still_verified(tmp_path: Path) -> None:
    fake = FakeKubo()
    address, _ = _write(tmp_path, fake, 200)
    (pack,) = fake.unixfs
    data = bytearray(fake.unixfs[pack])
    data[len(data) // 2] ^= 1  # a block that no longer hashes to its CID
    fake.unixfs[pack] = bytes(data)
    with OrbitDB(tmp_path / "reader", identity=BOB, ipfs=client(fake), replicate=False) as reader:
        copy = reader.open(address, type="eventlog")
        assert [e.value for e in copy.all()] == [{"n": i} for i in range(200)]  # fetched another way


def test_uploads_go_as_car_files_and_fall_back_to_block_put(tmp_path: Path) -> None:
    from ipfs_log.codec import encode

    blocks = [(CID.for_block(b), b) for b in (encode({"i": i}) for i in range(50))]
    fake = FakeKubo()
    with IpfsBlockStore(client(fake)) as store:
        assert store.put_each(blocks) == {}
    assert fake.endpoints() == ["dag/import"]
    assert all(fake.blocks[c] == b for c, b in blocks)
    assert not fake.pins  # imports pin nothing: heads are pinned on their own

    old = FakeKubo()
    old.has_dag_import = False  # a node without dag/import: one block/put each, remembered
    with IpfsBlockStore(client(old)) as store:
        assert store.put_each(blocks) == {}
        assert store.put_each(blocks) == {}
    assert old.endpoints().count("dag/import") == 1
    assert old.endpoints().count("block/put") == 100

    bad = FakeKubo()
    lying = [*blocks[:9], (blocks[9][0], b"not the block")]
    with IpfsBlockStore(client(bad)) as store:
        failures = store.put_each(lying)
    assert list(failures) == [blocks[9][0]]
    assert isinstance(failures[blocks[9][0]], IpfsBlockMismatchError)
    assert all(bad.blocks[c] == b for c, b in blocks[:9])


def test_a_node_that_cannot_add_packs_still_gets_the_heads_record(tmp_path: Path) -> None:
    fake = FakeKubo()
    fake.add_failures = 100  # every `add` fails: no pack, the heads record and the blocks still go
    address, heads = _write(tmp_path, fake, 200)
    manifest = CID.parse(address.removeprefix("/orbitdb/"))
    record = decode(fake.files[NodeLink.heads_path(manifest)])
    assert isinstance(record, dict)
    assert record["heads"] == heads
    assert record["packs"] == []
    with OrbitDB(tmp_path / "reader", identity=BOB, ipfs=client(fake), replicate=False) as reader:
        copy = reader.open(address, type="eventlog")
        assert [e.value for e in copy.all()] == [{"n": i} for i in range(200)]  # through dag/export


def test_a_failed_import_is_retried_block_by_block(tmp_path: Path) -> None:
    from ipfs_log.codec import encode

    blocks = [(CID.for_block(b), b) for b in (encode({"i": i}) for i in range(20))]
    fake = FakeKubo()
    fake.put_failures = 1  # the dag/import answers HTTP 500; the block/puts after it succeed
    with IpfsBlockStore(client(fake)) as store:
        assert store.put_each(blocks) == {}
    assert fake.endpoints().count("dag/import") == 1
    assert fake.endpoints().count("block/put") == 20
    assert all(fake.blocks[c] == b for c, b in blocks)
