"""Replication between peers, each with its own Kubo node on loopback: live, catch-up, partitions,
hostile peers. No test sleeps for replication to happen: each waits on the API with a bounded timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipfs_log import CID, Entry, Identity, Log, encode
from orbit import IpfsError, KuboClient, OrbitDB, ReplicationError, ReplicationTimeoutError, Replicator
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.replication import Announcement
from orbit.state import Snapshot
from stores import STORE_TYPES
from tests.conftest import ALICE, BOB, CAROL, MALLORY
from tests.kubo_node import KuboNode

WAIT = 60.0
WRITERS = [ALICE.did, BOB.did, CAROL.did]


class Peer:
    """One replica: its node, its OrbitDB directory linked to the node, one database and its replicator."""

    def __init__(self, node: KuboNode, directory: Path, identity: Identity) -> None:
        self.node = node
        self.client = KuboClient(node.api_url, block_timeout=5.0)
        options = {"interval": 1.0, "peer_poll": 0.3, "retry": 0.2, "max_retry": 2.0}
        self.orbit = OrbitDB(directory, identity=identity, ipfs=self.client, replication=options)
        self.db: Any = None
        self.replicator: Replicator | None = None

    def open(self, name: str, type: str, **options: Any) -> Any:
        self.db = self.orbit.open(name, type=type, write=WRITERS, **options)
        self.replicator = self.db.replicator  # on by default with ipfs=
        assert self.replicator is not None
        return self.db

    def close(self) -> None:
        self.orbit.close()
        self.client.close()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[KuboNode]]:
    """Three connected nodes for the module's tests (each test uses its own database names)."""
    root = tmp_path_factory.mktemp("replication-nodes")
    started: list[KuboNode] = []
    try:
        for i in range(3):
            node = KuboNode(root / f"node{i}" / "repo")
            started.append(node)
            node.start()
        _connect(started)
        yield started
    finally:
        for node in started:
            node.stop()


def _connect(nodes: list[KuboNode]) -> None:
    for i, a in enumerate(nodes):
        with KuboClient(a.api_url) as client:
            for b in nodes[i + 1 :]:
                client.swarm_connect(b.swarm_address)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Callable[[KuboNode, Identity], Peer]]:
    made: list[Peer] = []

    def make(node: KuboNode, identity: Identity) -> Peer:
        peer = Peer(node, tmp_path / f"peer{len(made)}", identity)
        made.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in made:
            peer.close()


def _union_state(peer: Peer, type: str) -> Any:
    """The state of a fresh replay of the whole log, fully verified from the stored blocks."""
    db = peer.db
    log = Log.load(
        peer.orbit.identity, peer.orbit.blocks, db.heads(), log_id=db.address, access=db.manifest.access
    )
    store = STORE_TYPES[type](log)
    return _state(store, type)


def _state(store: Any, type: str) -> Any:
    if type == "eventlog":
        return [(e.cid, e.value) for e in store.iter()]
    if type == "counter":
        return store.value
    return store.all()


def _write(db: Any, type: str, tag: str, i: int) -> None:
    if type == "eventlog":
        db.add(f"{tag}{i}")
    elif type == "keyvalue":
        db.put(f"k{i % 7}", f"{tag}{i}")
    elif type == "counter":
        db.inc(i + 1)
    else:
        db.put({"_id": f"d{i % 5}", "by": tag, "i": i})


def _converge(group: list[Peer]) -> None:
    for peer in group:
        for other in group:
            if other is not peer:
                peer.db.wait_for(other.db.heads(), timeout=WAIT)


@pytest.mark.parametrize("type", ["eventlog", "keyvalue", "counter", "documents"])
def test_three_peers_with_concurrent_writers_converge(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer], type: str
) -> None:
    group = [peers(node, who) for node, who in zip(nodes, (ALICE, BOB, CAROL), strict=True)]
    for peer in group:
        peer.open(f"converge-{type}", type)
    tags = "abc"

    def writer(peer: Peer, tag: str) -> Callable[[], None]:
        def run() -> None:
            for i in range(15):
                _write(peer.db, type, tag, i)

        return run

    threads = [threading.Thread(target=writer(p, t)) for p, t in zip(group, tags, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    _converge(group)
    states = [_state(p.db.store, type) for p in group]
    assert states[0] == states[1] == states[2]
    assert all(p.db.heads() == group[0].db.heads() for p in group)
    assert states[0] == _union_state(group[0], type)
    assert group[0].db.entry_count() == 45


def test_two_peers_live_update_is_inline_and_status_reports(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a, b = peers(nodes[0], ALICE), peers(nodes[1], BOB)
    da, db = a.open("live", "keyvalue"), b.open("live", "keyvalue")
    assert b.replicator is not None
    seen: list[Any] = []
    b.replicator.subscribe(seen.append)
    cid = da.put("hello", "world")
    db.wait_for([cid], timeout=WAIT)
    assert db.get("hello") == "world"
    status = db.replication_status()
    assert a.node.peer_id in status.peers
    assert status.counters["admitted"] >= 1
    assert status.counters["invalid"] == 0
    assert any(cid in [e.cid for e in event.entries] and event.peer == a.node.peer_id for event in seen)
    db.wait_synced(timeout=WAIT, peer=a.node.peer_id)


def test_a_late_reader_catches_up_on_1000_writes(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a = peers(nodes[0], ALICE)
    da = a.open("late", "eventlog")
    with da.batch() as batch:
        for i in range(1000):
            batch.add(i)
    assert a.orbit.ipfs is not None
    assert a.orbit.ipfs.flush(WAIT)  # A's node holds the log, its heads record and its pack
    assert a.orbit.ipfs.packs_of(da.address)
    b = peers(nodes[1], BOB)  # joins after the writes, and never writes (OrbitDB #1255)
    db = b.open("late", "eventlog")
    db.wait_for(da.heads(), timeout=WAIT)
    assert [e.value for e in db.iter()] == list(range(1000))
    assert a.replicator is not None
    assert b.replicator is not None
    # read through B's node from the packs A announced (bitswap), not broadcast as bundles on the topic
    assert b.replicator.status().counters["packs"] >= 1
    assert a.replicator.status().counters["bundles"] == 0


def test_partition_heals_and_a_restarted_node_catches_up(
    tmp_path: Path, ipfs_node_factory: Callable[[], KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    n1, n2 = ipfs_node_factory(), ipfs_node_factory()
    _connect([n1, n2])
    a, b = peers(n1, ALICE), peers(n2, BOB)
    da, db = a.open("partition", "keyvalue"), b.open("partition", "keyvalue")
    da.put("before", 1)
    db.wait_for(da.heads(), timeout=WAIT)
    n2.stop()  # partition: B's node is gone; both sides keep writing
    for i in range(5):
        da.put(f"a{i}", i)
        db.put(f"b{i}", i)
    n2.start()  # same ports, same repo: the replicator re-subscribes by itself
    _connect([n1, n2])
    db.wait_for(da.heads(), timeout=WAIT)
    da.wait_for(db.heads(), timeout=WAIT)
    expected = {"before": 1} | {f"a{i}": i for i in range(5)} | {f"b{i}": i for i in range(5)}
    assert da.all() == db.all() == expected
    assert b.replicator is not None
    assert b.replicator.status().counters["resubscribed"] >= 1


def test_hostile_peer_is_counted_and_ignored(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a, b = peers(nodes[0], ALICE), peers(nodes[1], BOB)
    da, db = a.open("hostile", "keyvalue"), b.open("hostile", "keyvalue")
    da.put("first", 1)
    db.wait_for(da.heads(), timeout=WAIT)
    address = da.address
    with KuboClient(nodes[2].api_url) as mallory:
        # Mallory's node must know who subscribes before its messages go anywhere (Kubo's pubsub/pub
        # succeeds when nobody receives them).
        assert _eventually(lambda: len(mallory.pubsub_peers(address)) >= 2)
        nowhere = CID.for_block(encode({"never": "stored"}))
        # A validly signed entry by a writer outside the write list, inline and on the node.
        forged = Entry.create(
            MALLORY,
            address,
            {"op": "PUT", "key": "first", "value": "pwned"},
            time=2,
            next=da.heads(),
            refs=[],
        )
        mallory.block_put(forged.block, forged.cid)
        hostile = [
            b"\xff\x00 not cbor",  # garbage, a wrong address, a wrong version
            Announcement("/orbitdb/zelsewhere", (da.heads()[0],)).encode(),
            encode({"v": 99, "address": address, "heads": da.heads()}),
            Announcement(address, (nowhere,)).encode(),  # heads that never resolve
            Announcement(address, (forged.cid,), (forged.block,)).encode(),
        ]
        replicator = b.replicator
        assert replicator is not None

        def counted() -> bool:
            counters = replicator.status().counters
            return counters["invalid"] >= 3 and counters["rejected"] >= 1

        def attack() -> None:
            for message in hostile:
                mallory.pubsub_pub(address, message)

        attack()
        # An honest write still replicates after all that.
        cid = da.put("second", 2)
        db.wait_for([cid], timeout=WAIT)

        def recounted() -> bool:  # gossip may drop a message: Mallory sends again until counted
            if counted():
                return True
            attack()
            return _eventually(counted, timeout=10)

        assert _eventually(recounted), replicator.status()
    assert db.all() == {"first": 1, "second": 2}
    assert forged.cid not in db.log
    assert forged.cid not in da.log


def test_a_flood_of_unresolvable_heads_does_not_stall_honest_updates(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a, b = peers(nodes[0], ALICE), peers(nodes[1], BOB)
    da, db = a.open("flooded", "keyvalue"), b.open("flooded", "keyvalue")
    da.put("first", 0)
    db.wait_for(da.heads(), timeout=WAIT)
    address = da.address

    def honest(tag: str, count: int) -> list[float]:
        delays = []
        for i in range(count):
            cid = da.put(f"{tag}{i}", i)
            started = time.monotonic()
            db.wait_for([cid], timeout=WAIT)
            delays.append(time.monotonic() - started)
        return sorted(delays)

    calm = honest("calm", 10)
    stop = threading.Event()
    forged = Entry.create(MALLORY, address, {"op": "PUT", "key": "first", "value": "pwned"}, time=9, next=[])
    with KuboClient(nodes[2].api_url) as mallory:
        assert _eventually(lambda: len(mallory.pubsub_peers(address)) >= 2)

        def flood() -> None:  # 200 unresolvable heads per message, garbage, oversize, a non-writer's entry
            round_ = 0
            while not stop.is_set():
                nowhere = tuple(CID.for_block(encode({"flood": round_, "i": i})) for i in range(200))
                for message in (
                    Announcement(address, nowhere).encode(),
                    b"\xff garbage " * 50,
                    Announcement(address, (forged.cid,), (forged.block,)).encode(),
                    Announcement(address, nowhere[:1], (b"\x00" * 900_000,)).encode(),
                ):
                    with contextlib.suppress(IpfsError):  # an oversize one may be refused by the node
                        mallory.pubsub_pub(address, message)
                round_ += 1
                stop.wait(0.2)

        flooding = threading.Thread(target=flood, daemon=True)
        flooding.start()
        try:
            replicator = b.replicator
            assert replicator is not None
            assert _eventually(lambda: replicator.status().wanted >= 200), replicator.status()
            flooded = honest("flooded", 20)
            # Each honest write arrives inline and is admitted at once: none waits on Mallory's fetches
            # (each takes the node's block timeout, 5 s here, to fail); a bounded factor of the calm delays.
            assert flooded[-1] < b.client.block_timeout, flooded
            assert flooded[len(flooded) // 2] <= 5 * calm[len(calm) // 2] + 0.5, (calm, flooded)
            status = replicator.status()
            assert status.wanted <= 4096  # bounded, however long the flood goes on
            assert status.counters["invalid"] > 0
            assert status.counters["rejected"] > 0
        finally:
            stop.set()
            flooding.join(5)
        assert forged.cid not in db.log  # nothing of Mallory's was admitted
        started = time.monotonic()
        b.orbit.close()  # within its promise, even with Mallory's heads still being fetched
        assert time.monotonic() - started < 5
    assert db.closed


def test_replicate_false_opens_without_a_replicator(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a = peers(nodes[0], ALICE)
    db = a.orbit.open("quiet", type="keyvalue", write=WRITERS, replicate=False)
    assert db.replicator is None
    with pytest.raises(ReplicationError, match="not replicated"):
        db.replication_status()


def test_wait_for_times_out_clearly(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a = peers(nodes[0], ALICE)
    da = a.open("alone", "keyvalue")
    nowhere = CID.for_block(encode({"missing": True}))
    with pytest.raises(ReplicationTimeoutError, match="1 of 1 heads not replicated"):
        da.wait_for([nowhere], timeout=0.5)
    with pytest.raises(ReplicationTimeoutError, match="not synced"):
        da.wait_synced(timeout=0.5)


def test_close_returns_promptly_during_a_fetch(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a = peers(nodes[0], ALICE)
    da = a.open("closing", "keyvalue")
    replicator = a.replicator
    assert replicator is not None
    with KuboClient(nodes[1].api_url) as other:
        nowhere = tuple(CID.for_block(encode({"n": i})) for i in range(20))

        def fetching() -> bool:  # announced until heard: the topic may need a moment to form
            other.pubsub_pub(da.address, Announcement(da.address, nowhere).encode())
            return replicator.status().wanted > 0

        assert _eventually(fetching)
        started = time.monotonic()
        da.close()
        assert time.monotonic() - started < 5
        assert not replicator.running


def _eventually(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_open_by_address_says_what_it_reached_and_never_opens_silently_empty(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer], tmp_path: Path
) -> None:
    a, b = peers(nodes[0], ALICE), peers(nodes[1], BOB)
    da = a.open("reached", "keyvalue")
    for i in range(30):
        da.put(f"k{i}", i)
    copy = b.orbit.open(da.address, type="keyvalue", wait=WAIT)  # B's node records nothing of it
    assert copy.reached is not None
    assert copy.reached.entries == 30
    assert copy.reached.peers >= 1
    assert copy.reached.synced
    assert copy.all() == da.all()
    # A database nobody serves: its writer replicates nothing, and no node records its heads.
    quiet = a.orbit.open("unserved", type="keyvalue", write=WRITERS, replicate=False)
    quiet.put("k", 1)
    assert a.orbit.ipfs is not None
    assert a.orbit.ipfs.flush(WAIT)  # its manifest is on A's node, so the address resolves
    carol = KuboClient(nodes[2].api_url)
    lonely = OrbitDB(tmp_path / "lonely", identity=CAROL, ipfs=carol)
    try:
        with pytest.raises(ReplicationTimeoutError, match="nothing reached"):
            lonely.open(quiet.address, type="keyvalue", wait=1.0)
        assert lonely.registry.get("unserved") is None  # no empty database left behind
        empty = lonely.open(quiet.address, type="keyvalue", wait=0)  # asked for explicitly
        assert empty.reached is not None
        assert (empty.reached.entries, empty.reached.peers) == (0, 0)
    finally:
        lonely.close()
        carol.close()


def test_a_peer_learns_the_newest_commit_and_reads_a_key_through_its_own_node(
    nodes: list[KuboNode], peers: Callable[[KuboNode, Identity], Peer]
) -> None:
    a, b = peers(nodes[0], ALICE), peers(nodes[1], BOB)
    da, db = a.open("commits", "keyvalue"), b.open("commits", "keyvalue")
    for i in range(30):
        da.put(f"k{i}", {"n": i, "pad": "x" * 40})  # values held as digests: blocks of their own
    signed = da.commit()  # announced at once, with the heads
    assert a.orbit.ipfs is not None
    assert a.orbit.ipfs.flush(WAIT)  # the tree's blocks and the commit are on A's node, the tree pinned
    replicator = a.replicator
    assert replicator is not None

    def learned() -> bool:
        if signed in db.commits():
            return True
        replicator.announce()  # gossip may drop a message while the topic forms: announce again
        return False

    assert _eventually(learned), db.replication_status()
    assert db.replication_status().counters["commits"] >= 1
    # B holds only the commit from the announcement; the tree's blocks come from B's node (bitswap).
    snapshot = Snapshot(IpfsBlockStore(b.client), address=db.address, writers=WRITERS)
    assert snapshot.accept([c.block for c in db.commits()]) == signed
    assert snapshot.get("k7") == {"n": 7, "pad": "x" * 40}
    assert snapshot.get("absent") is None
    assert a.client.pin_ls([signed.root]) == {signed.root: "recursive"}
