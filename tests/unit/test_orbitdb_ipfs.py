"""OrbitDB(directory, ipfs=…) over a Kubo fake: uploads, pins, heads records, open by address from
another directory, a node that is down while writing, bad blocks from the node."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ipfs_log.cid import CID
from ipfs_log.codec import decode
from ipfs_log.errors import BlockNotFoundError, OrbitError
from orbit import OrbitDB
from orbit.errors import DatabaseError, IpfsBlockMismatchError, UnknownAddressError
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from tests.conftest import ALICE, BOB
from tests.fake_kubo import FakeKubo


def client(fake: FakeKubo) -> KuboClient:
    return KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)


def test_writes_reach_the_node_with_pins_and_a_heads_record(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        kv = orbit.open("settings", type="keyvalue")
        for i in range(10):
            kv.put(f"k{i}", i)
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
        heads = kv.heads()
        manifest = kv.manifest.cid
        address = kv.address
    assert manifest in fake.blocks
    assert {manifest, *heads} <= set(fake.pins)
    record = decode(fake.files[NodeLink.heads_path(manifest)])
    assert record == {"v": 1, "address": address, "heads": heads, "packs": []}  # packs from 128 entries


def test_open_by_address_from_another_directory(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("events", type="eventlog", write=[ALICE.public_key, BOB.public_key])
        cids = [events.add({"n": i}) for i in range(40)]
        address = events.address
    seen: list[int] = []
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        copy = other.open(address, type="eventlog", progress=seen.append)
        assert [e.value for e in copy.all()] == [{"n": i} for i in range(40)]
        assert [e.cid for e in copy.all()] == cids
        assert seen[-1] == 40
        calls = len(fake.calls)
        assert copy.get(cids[3]) == {"n": 3}  # served locally: no request
        assert len(copy.all()) == 40
        assert len(fake.calls) == calls
        copy.add({"n": 40})  # Bob writes; his upload moves the pins and the record
        assert other.ipfs is not None
        assert other.ipfs.flush(10)
        bob_heads = copy.heads()
    with OrbitDB(tmp_path / "c", identity=ALICE, ipfs=client(fake)) as third:
        assert len(third.open(address, type="eventlog").all()) == 41
        assert third.open(address).heads() == bob_heads


def test_unknown_address_on_the_node_too(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", ipfs=client(fake)) as orbit, pytest.raises(UnknownAddressError):
        orbit.open("/orbitdb/zdpuAnzL5E7BkRh2bGQHVaG2RUovQkDyzx3SGdhpsN2iW5bM3")


def test_bad_block_from_the_node_is_refused(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("events", type="eventlog")
        first = events.add("first")
        events.add("second")
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
        address = events.address
    fake.corrupt.add(CID(first))
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        with pytest.raises(IpfsBlockMismatchError) as info:
            other.open(address)
        assert info.value.cid == first
        assert other.databases == []  # not left half open
    fake.corrupt.clear()
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        assert [e.value for e in other.open(address, type="eventlog").all()] == ["first", "second"]


def test_node_down_while_writing(tmp_path: Path) -> None:
    fake = FakeKubo()
    fake.down = True
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("events", type="eventlog")
        cids = [events.add(i) for i in range(20)]  # acknowledged: durable locally
        assert orbit.ipfs is not None
        assert orbit.ipfs.uploads.pending() == 21  # the entries and the manifest
        assert not orbit.ipfs.flush(0.2)
        address = events.address
    assert fake.blocks == {}
    fake.down = False
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:  # the journal survived
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
    assert set(cids) <= set(fake.blocks)
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        assert [e.value for e in other.open(address, type="eventlog").all()] == list(range(20))


def test_every_error_is_an_orbit_error(tmp_path: Path) -> None:
    fake = FakeKubo()
    fake.malformed["files/read"] = b"\xa1"  # a heads record that is not DAG-CBOR
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("events", type="eventlog")  # by name: opens anyway (local-first), with a warning
        events.add(1)
        assert orbit.ipfs is not None
        orbit.ipfs.flush(10)
        address = events.address
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        with pytest.raises(OrbitError, match="heads record"):
            other.open(address)  # by address: the log would be missing, so it fails
        assert other.databases == []


def test_without_pins_the_heads_are_still_recorded(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake), pin=False) as orbit:
        events = orbit.open("events", type="eventlog")
        events.add("unpinned")
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
        address = events.address
    assert fake.pins == {}
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        assert [e.value for e in other.open(address, type="eventlog").all()] == ["unpinned"]


def test_wait_for_takes_heads_as_text_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        kv = orbit.open("settings", type="keyvalue")
        kv.put("k", 1)
        heads = kv.heads()
        kv.wait_for([str(h) for h in heads], timeout=5)  # as another process prints them
        kv.wait_for(heads, timeout=5)
        kv.wait_for(str(heads[0]), timeout=5)  # one head alone
        for bad in ["not a cid", str(kv.manifest.cid).replace("bafy", "bafz")]:
            with pytest.raises(DatabaseError):
                kv.wait_for([bad], timeout=5)
        for wrong in [42, bytes(heads[0]), None, heads[0].encode("base32").encode()]:
            with pytest.raises(TypeError, match="a head is a CID or its text"):
                kv.wait_for([wrong], timeout=5)  # type: ignore[list-item]
        with pytest.raises(TypeError):
            kv.wait_for(42, timeout=5)  # type: ignore[arg-type]
        raw = CID(b"\x01\x55" + bytes(heads[0])[2:])  # a raw-codec CID names no entry
        with pytest.raises(DatabaseError, match="not the CID of an entry"):
            kv.wait_for([raw], timeout=5)


def test_an_open_that_failed_part_way_is_finished_by_the_next_open(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("partial", type="eventlog")
        cids = [events.add({"n": i}) for i in range(41)]
        address = events.address
    lost = fake.blocks.pop(cids[28])  # the node lacks one block of the history
    with (
        OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other,
        pytest.raises(BlockNotFoundError, match="entries admitted"),
    ):
        other.open(address, type="eventlog")
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        partial = other.open(address, type="eventlog")  # still missing: it opens with what it has
        assert 0 < len(partial.all()) <= 28
    fake.blocks[cids[28]] = lost  # the block is back on the node
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other:
        whole = other.open(address, type="eventlog")
        assert [e.cid for e in whole.all()] == cids
        assert whole.log.pending == 0


def test_the_replicator_resumes_what_an_open_left_pending(tmp_path: Path) -> None:
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("resumed", type="eventlog")
        cids = [events.add({"n": i}) for i in range(41)]
        address = events.address
    lost = fake.blocks.pop(cids[28])
    with (
        OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake)) as other,
        pytest.raises(BlockNotFoundError),
    ):
        other.open(address, type="eventlog")
    options = {"retry": 0.05, "max_retry": 0.2, "peer_poll": 0.1}
    with OrbitDB(tmp_path / "b", identity=BOB, ipfs=client(fake), replication=options) as other:
        partial = other.open(address, type="eventlog")
        assert len(partial.all()) < 41
        assert partial.replication_status().missing == 1
        fake.blocks[cids[28]] = lost  # back on the node, while the database is open: nobody announces it
        deadline = time.monotonic() + 30
        while len(partial.all()) < 41:
            assert time.monotonic() < deadline, partial.replication_status()
            time.sleep(0.05)
        assert [e.cid for e in partial.all()] == cids
        assert partial.replication_status().pending == 0


def test_close_finishes_the_uploads_and_the_heads_record_while_replicating(tmp_path: Path) -> None:
    # The closer used to hold the directory's lock while the uploading thread needed it to write the
    # last heads record: close took its whole budget and left the record behind.
    fake = FakeKubo()
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=client(fake)) as orbit:
        events = orbit.open("closing", type="eventlog")
        assert events.replicator is not None
        cids = [events.add({"n": i}) for i in range(41)]
        manifest = events.manifest.cid
    record = decode(fake.files[NodeLink.heads_path(manifest)])
    assert isinstance(record, dict)
    assert record["heads"] == [cids[-1]]
    assert set(cids) <= set(fake.blocks)
