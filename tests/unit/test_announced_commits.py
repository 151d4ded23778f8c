"""Commits travel with replication: announcements carry the newest commit (strictly decoded), receivers
record each writer's newest checked commit (bounded), and the node holds commits and their trees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID, Identity, encode
from ipfs_log.codec import IPLDKind, decode
from orbit import OrbitDB, ReplicationError
from orbit.errors import CommitError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from orbit.replication.wire import MAX_ANNOUNCED_COMMIT, Announcement, decode_announcement
from orbit.state import EMPTY_ROOT, Commit, LatestCommits, Snapshot
from orbit.state.latest import MAX_RECORDED
from tests.conftest import ALICE, BOB, MALLORY
from tests.fake_kubo import FakeKubo
from tests.fake_pubsub import Client, Hub, kubo_client
from tests.serve_process import wait_until

ADDRESS = "/orbitdb/zdpuAtest"
WRITERS: list[bytes | str] = [ALICE.public_key, BOB.public_key]
HEAD = CID.for_block(encode({"x": 1}))


def commit_of(identity: Identity = ALICE, address: str = ADDRESS, count: int = 3) -> Commit:
    return Commit.create(identity, address, [HEAD], EMPTY_ROOT, count)


def resigned(commit: Commit, **changes: IPLDKind) -> bytes:
    """The commit's block with fields changed and the signature kept (so it no longer verifies)."""
    body = decode(commit.block)
    assert isinstance(body, dict)
    return encode({**body, **changes})


# ---------------------------------------------------------------------------------------- the wire


@given(
    seed=st.binary(min_size=32, max_size=32),
    heads=st.lists(st.integers(0, 10_000), max_size=8),
    count=st.integers(0, 2**40),
    prev=st.booleans(),
    inline=st.lists(st.binary(max_size=40), max_size=4),
)
def test_an_announcement_with_a_commit_round_trips(
    seed: bytes, heads: list[int], count: int, prev: bool, inline: list[bytes]
) -> None:
    cids = [CID.for_block(encode({"n": n})) for n in heads]
    signer = Identity.from_seed(seed)
    commit = Commit.create(signer, ADDRESS, cids, EMPTY_ROOT, count, HEAD if prev else None)
    message = Announcement(ADDRESS, tuple(cids), tuple(inline), (), commit)
    decoded = decode_announcement(message.encode(), ADDRESS)
    assert decoded == message
    assert decoded.commit is not None
    assert decoded.commit.cid == commit.cid


def test_an_announcement_without_a_commit_still_decodes() -> None:
    old = encode({"v": 1, "address": ADDRESS, "heads": [HEAD], "entries": []})  # as an older orbit sends
    assert decode_announcement(old, ADDRESS).commit is None


def _with_commit(value: IPLDKind) -> bytes:
    return encode({"v": 1, "address": ADDRESS, "heads": [HEAD], "commit": value})


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "at most"),  # present but null
        ("text", "at most"),
        (7, "at most"),
        ([commit_of().block], "at most"),
        (b"\x00" * (MAX_ANNOUNCED_COMMIT + 1), "at most"),
        (b"\xff garbage", "refused"),
        (encode({"v": 1}), "refused"),
        (resigned(commit_of(), count=4), "signature"),  # forged: the count changed after signing
        (resigned(commit_of(), key=MALLORY.public_key), "signature"),  # someone else's key, same sig
        (commit_of(address="/orbitdb/zother").block, "not of"),  # a commit of another database
    ],
    ids=["null", "text", "int", "list", "oversize", "garbage", "not-a-commit", "forged", "key", "address"],
)
def test_a_malformed_commit_refuses_the_message(value: IPLDKind, match: str) -> None:
    with pytest.raises(ReplicationError, match=match) as raised:
        decode_announcement(_with_commit(value), ADDRESS)
    assert "commit" in str(raised.value)


def test_a_non_writers_commit_passes_the_wire_but_is_never_recorded() -> None:
    mallory = commit_of(MALLORY)
    announced = decode_announcement(Announcement(ADDRESS, (HEAD,), commit=mallory).encode(), ADDRESS)
    assert announced.commit == mallory  # well formed and signed: whether she may write is the receiver's
    record = LatestCommits(ADDRESS, WRITERS)
    with pytest.raises(CommitError, match="may not write"):
        record.note(mallory.block)
    assert record.commits() == []


# ---------------------------------------------------------------------------------------- the record


def test_the_record_keeps_each_writers_newest_and_is_bounded_by_the_write_list() -> None:
    record = LatestCommits(ADDRESS, WRITERS)
    for count in (5, 9, 7):  # heard out of order: the one with the most entries stays
        record.note(commit_of(ALICE, count=count).block)
    record.note(commit_of(BOB, count=1).block)
    for bad in (commit_of(MALLORY).block, commit_of(address="/orbitdb/zother").block, b"junk"):
        with pytest.raises(CommitError):
            record.note(bad)
    assert [(c.key, c.count) for c in record.commits()] == sorted(
        [(ALICE.public_key, 9), (BOB.public_key, 1)]
    )
    assert len(record) == 2 == record.limit


def test_with_anyone_writing_the_record_forgets_the_least_recent_writer() -> None:
    record = LatestCommits(ADDRESS, ["*"])
    signers = [Identity.from_seed(i.to_bytes(32, "big")) for i in range(MAX_RECORDED + 10)]
    for signer in signers:
        record.note(commit_of(signer).block)
    assert len(record) == MAX_RECORDED
    kept = {c.key for c in record.commits()}
    assert kept == {s.public_key for s in signers[10:]}


# ------------------------------------------------------------------ two orbits through a fake node


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[FakeKubo, Hub, Callable[[str, Identity], OrbitDB]]]:
    fake, hub = FakeKubo(), Hub()
    made: list[OrbitDB] = []
    options = {"interval": 1.0, "peer_poll": 0.05, "retry": 0.05, "max_retry": 0.2}

    def make(peer: str, identity: Identity) -> OrbitDB:
        orbit = OrbitDB(
            tmp_path / peer, identity=identity, ipfs=kubo_client(fake, hub, peer), replication=options
        )
        made.append(orbit)
        return orbit

    try:
        yield fake, hub, make
    finally:
        for orbit in made:
            orbit.close()


def test_a_peer_learns_the_newest_commit_and_reads_a_key_from_the_node(pair: Any) -> None:
    fake, _hub, make = pair
    a, b = make("peer-a", ALICE), make("peer-b", BOB)
    kv_a = a.open("shared", type="keyvalue", write=WRITERS)
    assert a.ipfs is not None
    assert a.ipfs.flush(10)  # the manifest is on the node before B looks for it
    kv_b = b.open(kv_a.address, type="keyvalue")
    for i in range(40):
        kv_a.put(f"k{i}", {"n": i, "pad": "x" * 40})  # values held as digests, in blocks of their own
    signed = kv_a.commit()  # announced at once
    assert a.ipfs is not None
    assert a.ipfs.flush(10)

    def learned() -> bool:
        return signed in kv_b.commits()

    wait_until(learned, 20.0, "B to learn A's commit")
    assert kv_b.replication_status().counters["commits"] >= 1
    theirs = [c for c in kv_b.commits() if c.key == ALICE.public_key]
    assert theirs == [signed]

    # B reads a key under A's commit with nothing but the node's blocks and the write list.
    assert b.ipfs is not None
    snapshot = Snapshot(IpfsBlockStore(b.ipfs.client), address=kv_a.address, writers=WRITERS)
    snapshot.accept([c.block for c in kv_b.commits()])
    assert snapshot.commit == signed
    assert snapshot.get("k7") == {"n": 7, "pad": "x" * 40}
    assert snapshot.get("absent") is None
    assert snapshot.bootstrap() == 40  # every node of the tree is on the node

    # The node keeps the tree pinned and the newest commit findable by address.
    assert fake.pins.get(signed.root) == "recursive"
    assert a.ipfs.commit_of(kv_a.manifest.cid) == signed.block
    assert signed.cid in fake.blocks


def test_a_non_writers_announced_commit_is_counted_and_not_recorded(pair: Any) -> None:
    _, hub, make = pair
    b = make("peer-b", BOB)
    kv = b.open("guarded", type="keyvalue", write=WRITERS)
    mallory = Client(hub, "mallory")
    forged = Commit.create(MALLORY, kv.address, [], EMPTY_ROOT, 99)
    message = Announcement(kv.address, (), commit=forged).encode()

    def refused() -> bool:
        mallory.pubsub_pub(kv.address, message)  # pubsub may take a moment to list the subscription
        return bool(kv.replication_status().counters["commits_refused"] >= 1)

    wait_until(refused, 20.0, "the refused commit to be counted")
    assert kv.commits() == []


def test_a_tree_written_while_the_node_was_away_goes_whole_with_the_next_commit(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as offline:
        kv = offline.open("later", type="keyvalue")
        for i in range(60):
            kv.put(f"k{i}", i)
        kv.commit()  # the tree is saved locally at close, with nothing to upload it
    fake = FakeKubo()
    kubo = KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)
    with OrbitDB(tmp_path / "a", identity=ALICE, ipfs=kubo, replicate=False) as linked:
        kv = linked.open("later", type="keyvalue")
        kv.put("k60", 60)
        signed = kv.commit()
        assert linked.ipfs is not None
        assert linked.ipfs.flush(10)
        address, manifest = kv.address, kv.manifest.cid
    snapshot = Snapshot(IpfsBlockStore(kubo), address=address, writers=[ALICE.public_key])
    snapshot.accept([fake.files[NodeLink.commit_path(manifest)]])
    assert snapshot.commit == signed
    assert snapshot.bootstrap() == 61  # nodes from the offline session too
    assert fake.pins.get(signed.root) == "recursive"
