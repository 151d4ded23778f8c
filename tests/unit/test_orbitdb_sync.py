"""OrbitDBSync without a node: an in-memory pubsub hub and block store stand in for IPFS.

Two syncs converge; every kind of hostile message is counted and dropped (never admitted, never a
crash); missing blocks are retried then given up; publishing failures are counted and repaired by
announcements; the subscription is reopened when the node ends it; close() is prompt mid-fetch.
The real thing (js-ipfs + OrbitDB JS 4.0.0) is tests/integration/test_orbitdb_live.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

from ipfs_log import CID, MemoryBlockStore
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.orbitdb import OrbitEntry, OrbitWriter, SigningKey
from orbit.errors import DatabaseError, IpfsHttpError, IpfsUnreachableError, ReplicationTimeoutError
from orbit.orbitdb.compat import OrbitDBDatabase
from orbit.orbitdb.sync import OrbitDBSync, OrbitDBSyncOptions
from tests.fake_pubsub import Client, Hub

ALICE = OrbitWriter.from_keys(SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32))
BOB = OrbitWriter.from_keys(SigningKey(bytes([3]) * 32), SigningKey(bytes([4]) * 32))
MALLORY = OrbitWriter.from_keys(SigningKey(bytes([5]) * 32), SigningKey(bytes([6]) * 32))
FAST = OrbitDBSyncOptions(
    retry_delays=(0.05, 0.05), announce_interval=0, peer_poll=0.05, close_timeout=1.0, block_timeout=1.0
)


def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class SlowStore(MemoryBlockStore):
    """Hides ``hidden`` blocks (a peer that does not serve them yet); ``gate`` blocks every fetch.

    ``held`` is set once a fetch waits at the closed gate.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[CID] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        if not self.gate.is_set():
            self.held.set()
        self.gate.wait(10)
        return {c: b for c, b in super().get_many(cids).items() if c not in self.hidden}


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def store() -> SlowStore:
    return SlowStore()


@pytest.fixture
def address(store: SlowStore) -> str:
    db = OrbitDBDatabase.create(
        store, "live", "events", writer=ALICE, write=[ALICE.identity.id, BOB.identity.id]
    )
    return db.address


@pytest.fixture
def make(hub: Hub, store: SlowStore, address: str) -> Iterator[Callable[..., OrbitDBSync]]:
    made: list[OrbitDBSync] = []

    def factory(peer: str, writer: OrbitWriter | None = None, **kw: object) -> OrbitDBSync:
        options = kw.pop("options", FAST)
        sync = OrbitDBSync(Client(hub, peer), store, address, writer=writer, options=options, **kw)  # type: ignore[arg-type]
        made.append(sync)
        return sync

    yield factory
    for sync in made:
        sync.close()


def inject(hub: Hub, address: str, data: bytes) -> None:
    hub.deliver("12D3KooWHostile", address, data)


# ---------------------------------------------------------------------------- the happy path


def test_two_syncs_converge_on_the_same_entries_in_the_same_order(make, address: str) -> None:
    alice, bob = make("alice", ALICE), make("bob", BOB)
    # Alice greets Bob (with no heads yet) at her first look at the topic: wait for the look after it,
    # so that every publication counted below is one of her writes.
    until(lambda: alice.client.peer_looks >= 2)
    written = []
    for i in range(5):
        written.append(alice.add(f"a{i}").hash)
        written.append(bob.add(f"b{i}").hash)
    alice.wait_for(written, timeout=5)
    bob.wait_for(written, timeout=5)
    assert alice.events() == bob.events()
    assert {v for _, v in alice.events()} == {f"{w}{i}" for w in "ab" for i in range(5)}
    assert alice.stats().rejected == bob.stats().rejected == 0
    assert alice.stats().admitted > 0
    assert alice.stats().published == 5


def test_a_published_message_is_the_entry_block_as_orbitdb_sends_it(make, hub: Hub) -> None:
    alice = make("alice", ALICE)
    entry = alice.add({"n": 1})
    assert isinstance(alice.client, Client)
    assert alice.client.published == [entry.block]
    assert OrbitEntry.from_block(CID.for_block(entry.block), entry.block, log_id=alice.address) == entry


def test_ancestors_are_fetched_from_the_store(make, store: SlowStore, address: str) -> None:
    """Only the last head travels on pubsub; the rest comes from the block store (the node)."""
    writer_db = OrbitDBDatabase.open(store, address, heads=[], writer=ALICE)
    for i in range(20):
        head = writer_db.add(i)
    bob = make("bob")
    hub = bob.client.hub
    inject(hub, address, head.block)
    bob.wait_for([head.hash], timeout=5)
    assert [v for _, v in bob.events()] == list(range(20))
    assert bob.stats().admitted == 20


def test_a_new_peer_gets_the_heads_at_once(make) -> None:
    """OrbitDB's join exchange, one way: heads are published when a peer appears on the topic."""
    alice = make("alice", ALICE)
    head = alice.add("before bob")
    bob = make("bob")
    bob.wait_for([head.hash], timeout=5)


def test_periodic_announcements_repair_a_lost_message(make, hub: Hub, address: str) -> None:
    options = OrbitDBSyncOptions(announce_interval=0.2, peer_poll=0.05, close_timeout=1.0)
    bob = make("bob", options=options)
    alice = make("alice", ALICE, options=options)
    until(lambda: alice.client.pubsub_peers(address))
    alice.client.pub_error = IpfsHttpError(
        "InsufficientPeers", "pubsub/pub", status=500, kubo_message="InsufficientPeers"
    )
    head = alice.add("lost")
    assert alice.stats().publish_failures >= 1
    alice.client.pub_error = None
    bob.wait_for([head.hash], timeout=5)


# ---------------------------------------------------------------------------- hostile messages


def resign(signer: SigningKey, value: dict[str, IPLDKind]) -> bytes:
    value = dict(value)
    value["key"] = signer.public_hex
    value["clock"] = {"id": signer.public_hex, "time": value["clock"]["time"]}  # type: ignore[index, call-overload]
    value["sig"] = signer.sign(encode({k: value[k] for k in ("id", "payload", "next", "refs", "clock", "v")}))
    return encode(value)


def hostile_messages(address: str, store: SlowStore) -> dict[str, bytes]:
    """One message per way to be wrong, each named by the error it must be counted under."""
    entry = OrbitEntry.create(ALICE, address, {"op": "ADD", "key": None, "value": "x"}, time=1)
    value = decode(entry.block)
    assert isinstance(value, dict)
    tampered: dict[str, IPLDKind] = {**value, "payload": {"op": "ADD", "key": None, "value": "changed"}}
    non_canonical = bytearray(entry.block)
    non_canonical[0] = 0xBF  # indefinite-length map
    # Mallory signs with her own key and names Alice's identity (OrbitDB 4 would admit this).
    claimed = decode(resign(MALLORY.signing_key, dict(value, identity=ALICE.identity.hash)))
    store.put(MALLORY.identity.cid, MALLORY.identity.block)
    store.put(ALICE.identity.cid, ALICE.identity.block)
    unauthorised = OrbitEntry.create(MALLORY, address, {"op": "ADD", "key": None, "value": "m"}, time=1)
    assert isinstance(claimed, dict)
    return {
        "garbage": b"\x00\xffnot cbor at all",
        "not an entry": encode({"hello": "world"}),
        "tampered payload": encode(tampered),
        "non-canonical": bytes(non_canonical),
        "another log": OrbitEntry.create(ALICE, address + "x", "x", time=1).block,
        "signer claims a permitted identity": encode(claimed),
        "writer not on the write list": unauthorised.block,
        "oversize": b"\xa0" * 2_000_000,
    }


def test_hostile_messages_are_counted_and_dropped(make, hub: Hub, store: SlowStore, address: str) -> None:
    bob = make("bob")
    messages = hostile_messages(address, store)
    for data in messages.values():
        inject(hub, address, data)
    until(lambda: bob.stats().rejected == len(messages))
    stats = bob.stats()
    assert len(bob) == 0
    assert stats.received == len(messages)
    assert stats.rejections == {
        "ReplicationError": 1,  # oversize
        "EntryDecodeError": 3,  # garbage, not an entry, non-canonical
        "InvalidSignatureError": 1,
        "LogIdMismatchError": 1,
        "SignerMismatchError": 1,
        "PermissionDeniedError": 1,
    }
    # ...and it still works.
    alice = make("alice", ALICE)
    bob.wait_for([alice.add("fine").hash], timeout=5)


def test_a_fetched_ancestor_that_fails_verification_rejects_the_head(make, hub, store, address) -> None:
    """A valid head on top of a forged ancestor: nothing is admitted."""
    forged = OrbitEntry.create(MALLORY, address, {"op": "ADD", "key": None, "value": "m"}, time=1)
    store.put(forged.cid, forged.block)
    store.put(MALLORY.identity.cid, MALLORY.identity.block)
    head = OrbitEntry.create(
        ALICE, address, {"op": "ADD", "key": None, "value": "a"}, time=2, next=[forged.hash]
    )
    store.put(ALICE.identity.cid, ALICE.identity.block)
    bob = make("bob")
    inject(hub, address, head.block)
    until(lambda: bob.stats().rejected == 1)
    assert bob.stats().rejections == {"PermissionDeniedError": 1}
    assert len(bob) == 0


def test_duplicates_are_not_fetched_again(make, hub, address) -> None:
    alice, bob = make("alice", ALICE), make("bob")
    entry = alice.add(1)
    bob.wait_for([entry.hash], timeout=5)
    for _ in range(3):
        inject(hub, address, entry.block)
    until(lambda: bob.stats().duplicates == 3)
    assert bob.stats().admitted == 1


# ---------------------------------------------------------------------------- faults


def test_missing_blocks_are_retried_until_they_arrive(make, hub, store: SlowStore, address) -> None:
    writer_db = OrbitDBDatabase.open(store, address, heads=[], writer=ALICE)
    first = writer_db.add("first")
    second = writer_db.add("second")
    store.hidden.add(first.cid)
    options = OrbitDBSyncOptions(retry_delays=(0.1,) * 50, announce_interval=0, close_timeout=1.0)
    bob = make("bob", options=options)
    inject(hub, address, second.block)
    until(lambda: bob.stats().retries >= 2)
    assert len(bob) == 0
    store.hidden.clear()
    bob.wait_for([first.hash, second.hash], timeout=5)
    assert bob.stats().unavailable == 0


def test_a_head_whose_blocks_never_arrive_is_given_up(make, hub, store: SlowStore, address) -> None:
    writer_db = OrbitDBDatabase.open(store, address, heads=[], writer=ALICE)
    first = writer_db.add("first")
    second = writer_db.add("second")
    store.hidden.add(first.cid)
    bob = make("bob")
    inject(hub, address, second.block)
    until(lambda: bob.stats().unavailable == 1)
    assert bob.stats().retries == len(FAST.retry_delays)
    assert len(bob) == 0
    # a later announcement of the same head is fetched afresh
    store.hidden.clear()
    inject(hub, address, second.block)
    bob.wait_for([second.hash], timeout=5)


def test_the_subscription_is_reopened_when_the_node_ends_it(make, hub, address) -> None:
    bob = make("bob", options=OrbitDBSyncOptions(resubscribe_delay=0.05, close_timeout=1.0))
    client = bob.client
    assert isinstance(client, Client)
    client.subs[0].fail(IpfsUnreachableError("the node cut the subscription stream", "pubsub/sub"))
    until(lambda: bob.stats().resubscriptions == 1)
    alice = make("alice", ALICE)
    bob.wait_for([alice.add("after").hash], timeout=5)


def test_close_is_prompt_while_a_fetch_hangs(make, hub, store: SlowStore, address) -> None:
    writer_db = OrbitDBDatabase.open(store, address, heads=[], writer=ALICE)
    writer_db.add("first")
    head = writer_db.add("second")
    bob = make("bob", options=OrbitDBSyncOptions(close_timeout=0.5))
    store.gate.clear()  # every block fetch now hangs (up to 10 s)
    inject(hub, address, head.block)
    assert store.held.wait(5), "the receiver never entered the fetch"
    started = time.monotonic()
    bob.close()
    assert time.monotonic() - started < 1.5
    store.gate.set()
    with pytest.raises(DatabaseError, match="closed"):
        bob.add("x")


def test_wait_for_times_out_naming_what_lacks(make) -> None:
    bob = make("bob")
    missing = OrbitEntry.create(ALICE, bob.address, "x", time=1)
    with pytest.raises(ReplicationTimeoutError, match=r"1 of 1 entries still missing"):
        bob.wait_for([missing.hash], timeout=0.2)


def test_wait_for_peers(make) -> None:
    bob = make("bob")
    with pytest.raises(ReplicationTimeoutError, match="0 peer"):
        bob.wait_for_peers(timeout=0.2)
    make("alice", ALICE)
    assert bob.wait_for_peers(timeout=2) == ["alice"]


def test_an_unknown_address_fails_after_its_tries(hub: Hub, store: SlowStore) -> None:
    from orbit.errors import UnknownAddressError
    from orbit.orbitdb.compat import orbitdb_address

    address = orbitdb_address(CID.for_block(encode({"name": "x"})))
    with pytest.raises(UnknownAddressError):
        OrbitDBSync(Client(hub, "bob"), store, address, options=OrbitDBSyncOptions(open_attempts=2))
