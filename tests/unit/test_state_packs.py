"""State packs: a commit's state as one file on the node, so a newcomer opens from it with one ``cat``;
the announcement's hint naming it (strictly decoded), recorded beside the heard commit."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipfs_log import CID, Identity, encode
from ipfs_log.errors import BlockNotFoundError
from orbit import OrbitDB, ReplicationError
from orbit.car import write_car
from orbit.errors import IpfsError, IpfsResponseError
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from orbit.replication.wire import MAX_HINT_CID_BYTES, Announcement, decode_announcement
from orbit.state import EMPTY_ROOT, Commit, LatestCommits
from orbit.storage.frontiers import FrontierRecords
from orbit.storage.logs import LogRecords
from tests.conftest import ALICE, BOB
from tests.fake_kubo import FakeKubo
from tests.fake_pubsub import Hub, kubo_client
from tests.serve_process import wait_until

ADDRESS = "/orbitdb/zdpuAtest"
HEAD = CID.for_block(encode({"x": 1}))
FILE = CID(b"\x01\x55\x12\x20" + bytes(32))  # a raw-leaf file's CID, as `add` answers


def _kubo(fake: FakeKubo) -> KuboClient:
    return KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[FakeKubo, Any, Commit, dict[str, Any]]]:
    """A keyvalue with a committed state on the fake node, and its writer's directory closed."""
    fake = FakeKubo()
    with OrbitDB(tmp_path / "writer", identity=ALICE, ipfs=_kubo(fake), replicate=False) as orbit:
        kv = orbit.open("packed", type="keyvalue")
        for i in range(120):
            kv.put(f"k{i % 50}", {"n": i, "pad": "x" * 40})  # values held as digests, in blocks of their own
        kv.delete("k3")
        signed = kv.commit()
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)
        pack = orbit.ipfs.state_pack_of(kv.address)
        assert pack is not None
        assert pack.commit == signed.cid
        assert fake.pins.get(pack.cid) == "recursive"
        yield fake, pack, signed, kv.all()


def _state_gets(fake: FakeKubo, since: int, manifest: CID) -> list[str]:
    """The block/get requests since call ``since`` for anything but the manifest."""
    return [
        p["arg"][0]
        for endpoint, p in fake.calls[since:]
        if endpoint == "block/get" and CID.parse(p["arg"][0]) != manifest
    ]


def test_a_commit_writes_a_state_pack_and_a_newcomer_opens_from_it_without_block_gets(
    tmp_path: Path, written: Any
) -> None:
    fake, pack, signed, state = written
    manifest = CID.parse(signed.address.removeprefix("/orbitdb/"))
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        since = len(fake.calls)
        db: Any = new.open(signed.address, snapshot=signed.block, trust="writer", pack=pack.cid)
        assert db.all() == state
        assert _state_gets(fake, since, manifest) == []
        assert [e for e, _ in fake.calls[since:]].count("cat") == 1
    with OrbitDB(tmp_path / "named", identity=BOB, ipfs=_kubo(fake), replicate=False) as named:
        assert named.ipfs is not None
        assert named.ipfs.state_pack_on_node(manifest) == pack  # the writer named it in MFS
        since = len(fake.calls)
        db = named.open(signed.address, snapshot=signed, trust="writer")  # no pack=: the node's MFS names it
        assert db.all() == state
        assert _state_gets(fake, since, manifest) == []
        assert [e for e, _ in fake.calls[since:]].count("cat") == 1
    del fake.files[NodeLink.state_pack_path(manifest)]
    with OrbitDB(tmp_path / "slow", identity=BOB, ipfs=_kubo(fake), replicate=False) as slow:
        since = len(fake.calls)
        db = slow.open(signed.address, snapshot=signed.block, trust="writer")  # no pack: block by block
        assert db.all() == state
        assert len(_state_gets(fake, since, manifest)) > 50


@pytest.mark.parametrize(
    "record",
    [
        b"not cbor",
        encode({"v": 1, "commit": HEAD}),
        encode({"v": True, "commit": HEAD, "pack": FILE}),
        encode({"v": 1, "commit": "bafy", "pack": FILE}),
        encode({"v": 1, "commit": HEAD, "pack": FILE, "more": 1}),
        encode({"v": 1, "commit": HEAD, "pack": FILE, "pad": "x" * 2000}),
    ],
)
def test_a_malformed_state_pack_record_is_refused_and_the_open_goes_block_by_block(
    tmp_path: Path, written: Any, record: bytes
) -> None:
    fake, _pack, signed, state = written
    manifest = CID.parse(signed.address.removeprefix("/orbitdb/"))
    fake.files[NodeLink.state_pack_path(manifest)] = record
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        assert new.ipfs is not None
        with pytest.raises(IpfsResponseError):
            new.ipfs.state_pack_on_node(manifest)
        since = len(fake.calls)
        db: Any = new.open(signed.address, snapshot=signed.block, trust="writer")
        assert db.all() == state
        assert "cat" not in [e for e, _ in fake.calls[since:]]


def test_a_state_pack_the_node_cannot_name_in_mfs_still_serves_the_hint(tmp_path: Path) -> None:
    fake = FakeKubo()
    fake.refused_files.add(".state")  # the MFS record fails; the pack, the commit and the heads do not
    with OrbitDB(tmp_path / "writer", identity=ALICE, ipfs=_kubo(fake), replicate=False) as orbit:
        kv = orbit.open("unnamed", type="keyvalue")
        for i in range(60):
            kv.put(f"k{i % 20}", {"n": i, "pad": "x" * 40})
        signed = kv.commit()
        assert orbit.ipfs is not None
        assert orbit.ipfs.flush(10)  # the failure is logged, not retried: the pack is a hint
        pack = orbit.ipfs.state_pack_of(kv.address)
        assert pack is not None
        assert pack.commit == signed.cid
        state = kv.all()
    manifest = CID.parse(signed.address.removeprefix("/orbitdb/"))
    assert NodeLink.state_pack_path(manifest) not in fake.files
    assert NodeLink.commit_path(manifest) in fake.files
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        assert new.ipfs is not None
        assert new.ipfs.state_pack_on_node(manifest) is None
        since = len(fake.calls)
        db: Any = new.open(signed.address, snapshot=signed.block, trust="writer")  # block by block
        assert db.all() == state
        assert "cat" not in [e for e, _ in fake.calls[since:]]


def test_a_named_pack_of_another_commit_is_not_read(tmp_path: Path, written: Any) -> None:
    fake, pack, signed, state = written
    manifest = CID.parse(signed.address.removeprefix("/orbitdb/"))
    fake.files[NodeLink.state_pack_path(manifest)] = encode({"v": 1, "commit": HEAD, "pack": pack.cid})
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        since = len(fake.calls)
        db: Any = new.open(signed.address, snapshot=signed.cid, trust="writer")
        assert db.all() == state
        assert "cat" not in [e for e, _ in fake.calls[since:]]


@pytest.mark.parametrize("kind", ["garbage", "forged block", "missing"])
def test_a_bad_pack_falls_back_to_the_node_block_by_block(tmp_path: Path, written: Any, kind: str) -> None:
    fake, _pack, signed, state = written
    bad = CID.for_block(encode({"bad": kind}))
    if kind == "garbage":
        fake.unixfs[bad] = b"not a CAR file"
    elif kind == "forged block":
        car = io.BytesIO()
        write_car(car, [signed.cid], [(signed.root, fake.blocks[signed.root] + b"\0")])
        fake.unixfs[bad] = car.getvalue()
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        db: Any = new.open(signed.address, snapshot=signed.block, trust="writer", pack=bad)
        assert db.all() == state


def test_a_bad_pack_and_a_node_lacking_blocks_fail_and_store_nothing(tmp_path: Path, written: Any) -> None:
    fake, pack, signed, _ = written
    bad = CID.for_block(encode({"bad": 1}))
    fake.unixfs[bad] = b"junk"
    assert signed.winners is not None
    del fake.blocks[signed.winners]  # the root of the tree a keyvalue open reads
    with OrbitDB(tmp_path / "new", identity=BOB, ipfs=_kubo(fake), replicate=False) as new:
        with pytest.raises((BlockNotFoundError, IpfsError)):
            new.open(signed.address, snapshot=signed.block, trust="writer", pack=bad)
        assert new.databases == []
        assert new.registry.by_address(signed.address) is None
        lognum = LogRecords(new.blocks.env).number(signed.address, create=False)
        assert lognum is None or FrontierRecords(new.blocks.env).load(lognum) is None
        # The good pack still opens it: it holds the block the node lost.
        db: Any = new.open(signed.address, snapshot=signed.block, trust="writer", pack=pack.cid)
        assert db.get("k7") == {"n": 107, "pad": "x" * 40}


def test_a_pack_needs_a_node(tmp_path: Path) -> None:
    from orbit.errors import DatabaseError

    with OrbitDB(tmp_path / "alone", identity=BOB) as alone, pytest.raises(DatabaseError, match="ipfs="):
        alone.open(ADDRESS, snapshot=b"x", trust="writer", pack=FILE)


# ---------------------------------------------------------------------------------------- the wire


def _commit(identity: Identity = ALICE, count: int = 3) -> Commit:
    return Commit.create(identity, ADDRESS, [HEAD], EMPTY_ROOT, count)


def test_the_state_pack_hint_round_trips() -> None:
    message = Announcement(ADDRESS, (HEAD,), (), (), _commit(), FILE)
    decoded = decode_announcement(message.encode(), ADDRESS)
    assert decoded == message
    assert decoded.state_pack == FILE
    assert (
        decode_announcement(Announcement(ADDRESS, (HEAD,), (), (), _commit()).encode(), ADDRESS).state_pack
        is None
    )


@pytest.mark.parametrize(
    ("hint", "with_commit", "match"),
    [
        (FILE, False, "only beside the commit"),
        (bytes(FILE), True, "file's CID"),
        ("bafy", True, "file's CID"),
        (7, True, "file's CID"),
        (HEAD, True, "file's CID"),  # a dag-cbor block, not a file
        (CID(b"\x01\x55\x13\x40" + bytes(64)), True, f"at most {MAX_HINT_CID_BYTES}"),  # oversize
    ],
)
def test_a_malformed_hint_refuses_the_message(hint: Any, with_commit: bool, match: str) -> None:
    body: dict[str, Any] = {"v": 1, "address": ADDRESS, "heads": [HEAD], "state_pack": hint}
    if with_commit:
        body["commit"] = _commit().block
    with pytest.raises(ReplicationError, match=match):
        decode_announcement(encode(body), ADDRESS)


def test_the_hint_is_recorded_beside_its_commit_and_goes_with_it() -> None:
    record = LatestCommits(ADDRESS, [ALICE.public_key, BOB.public_key])
    first = _commit(count=3)
    record.note(first.block)
    assert record.pack_of(first) is None
    record.note(first.block, FILE)  # the same commit, heard again with its pack
    assert record.pack_of(first) == FILE
    newer = _commit(count=5)
    record.note(newer.block)
    assert record.pack_of(newer) is None
    assert record.pack_of(first) is None  # no longer held


def test_a_peer_hears_the_pack_with_the_commit_and_opens_from_it(tmp_path: Path) -> None:
    fake, hub = FakeKubo(), Hub()
    options = {"interval": 1.0, "peer_poll": 0.05, "retry": 0.05, "max_retry": 0.2}
    writers: list[bytes | str] = [ALICE.public_key, BOB.public_key]
    with (
        OrbitDB(tmp_path / "a", identity=ALICE, ipfs=kubo_client(fake, hub, "a"), replication=options) as a,
        OrbitDB(tmp_path / "b", identity=BOB, ipfs=kubo_client(fake, hub, "b"), replication=options) as b,
    ):
        kv_a = a.open("shared", type="keyvalue", write=writers)
        assert a.ipfs is not None
        assert a.ipfs.flush(10)
        kv_b = b.open(kv_a.address, type="keyvalue", wait=0)
        for i in range(30):
            kv_a.put(f"k{i}", i)
        signed = kv_a.commit()
        assert a.ipfs.flush(10)
        pack = a.ipfs.state_pack_of(kv_a.address)
        assert pack is not None
        kv_a.put("after", 1)  # the next announcement carries the commit with its pack

        def heard() -> bool:
            return kv_b.state_pack_of(signed) == pack.cid

        wait_until(heard, 20.0, "the pack hint to arrive with the commit")
        with OrbitDB(tmp_path / "c", identity=BOB, ipfs=_kubo(fake), replicate=False) as c:
            pack_heard = kv_b.state_pack_of(signed)
            db: Any = c.open(kv_a.address, snapshot=signed, trust="writer", pack=pack_heard, wait=0)
            assert db.get("k29") == 29
