"""Swarm scenarios on real Kubo nodes in network namespaces (tests/netns.py), shared by tests and bench.

- :func:`churn`: peers on their own hosts, 40 ms round trips with jitter behind the relay, all writing
  to one keyvalue database while links stall and are cut and nodes and OrbitDB instances are stopped and
  started again at random; then every acknowledged write must reach every peer.
- :func:`offline_writer`: a writer writes, two replicas copy, the writer goes away (its OrbitDB and its
  node); a newcomer whose host links to one replica only opens the database by address and must reach
  the whole state.

Both return their measures; they raise ``AssertionError`` when what they promise does not hold.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipfs_log import CID, Identity
from orbit import KuboClient, OrbitDB
from tests.netns import Lab, NamespacedKuboNode

OPTIONS = {"interval": 2.0, "peer_poll": 0.3, "retry": 0.2, "max_retry": 2.0, "close_timeout": 2.0}


@dataclass
class LabPeer:
    """One peer: its host's node, its OrbitDB directory and identity, the database while open."""

    node: NamespacedKuboNode
    directory: Path
    identity: Identity
    orbit: OrbitDB | None = None
    client: KuboClient | None = None
    db: Any = None
    written: dict[CID, tuple[str, int]] = field(default_factory=dict)

    def open(self, name: str, writers: list[str]) -> None:
        self.client = KuboClient(self.node.api_url, block_timeout=5.0)
        self.orbit = OrbitDB(self.directory, identity=self.identity, ipfs=self.client, replication=OPTIONS)
        self.db = self.orbit.open(name, type="keyvalue", write=writers)

    def open_address(self, address: str) -> None:
        # A longer block timeout than the writers': the manifest may have to come over a link that was
        # just redialled.
        self.client = KuboClient(self.node.api_url, block_timeout=20.0)
        self.orbit = OrbitDB(self.directory, identity=self.identity, ipfs=self.client, replication=OPTIONS)
        self.db = self.orbit.open(address, type="keyvalue")

    def close(self) -> None:
        if self.orbit is not None:
            self.orbit.close()
        if self.client is not None:
            self.client.close()
        self.orbit = self.client = self.db = None

    @property
    def up(self) -> bool:
        return self.db is not None and self.node.running


def _identities(count: int) -> list[Identity]:
    return [Identity.from_seed(bytes([i + 1]) * 32) for i in range(count)]


def _wait_all(peers: list[LabPeer], timeout: float) -> float:
    """Wait until every peer holds every other's heads; return how long it took."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        heads = {h for p in peers for h in p.db.heads()}
        if all(p.db.holds(heads) for p in peers):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            lacking = {i: len([h for h in heads if not p.db.holds([h])]) for i, p in enumerate(peers)}
            raise AssertionError(f"not converged within {timeout} s: heads lacking per peer {lacking}")
        time.sleep(0.05)


def _uploaded(peer: LabPeer, timeout: float) -> None:
    """Wait until every block the peer wrote or admitted is on its node (pins may still follow)."""
    link = peer.orbit.ipfs if peer.orbit is not None else None
    assert link is not None
    deadline = time.monotonic() + timeout
    while link.uploads.pending():
        assert time.monotonic() < deadline, (link.uploads.pending(), link.uploads.last_error)
        time.sleep(0.05)


def churn(
    root: Path, *, hosts: int = 5, steps: int = 120, seed: int = 1, timeout: float = 90.0
) -> dict[str, Any]:
    """Run the churn scenario (see the module docs); return its measures.

    Raises:
        AssertionError: an acknowledged write did not reach every peer, or the states differ.
    """
    rng = random.Random(seed)
    identities = _identities(hosts)
    writers = [i.did for i in identities]
    with Lab(root / "lab", hosts) as lab:
        lab.relay.set(delay=0.02, jitter=0.005)
        lab.start()
        peers = [LabPeer(node, root / f"orbit{i}", identities[i]) for i, node in enumerate(lab.nodes)]
        for peer in peers:
            peer.open("churned", writers)
        restarts = stalls = cuts = 0
        last_restart = time.monotonic()
        for step in range(steps):
            peer = rng.choice(peers)
            roll = rng.random()
            if roll < 0.06 and peer.up:  # the node goes away and comes back (its OrbitDB stays)
                peer.node.restart()
                lab.connect()
                restarts += 1
                last_restart = time.monotonic()
            elif roll < 0.12 and peer.up:  # the process goes away and comes back (its node stays)
                peer.close()
                peer.open("churned", writers)
                restarts += 1
                last_restart = time.monotonic()
            elif roll < 0.18:
                rng.choice(list(lab.links())).stall(rng.uniform(0.2, 1.5))
                stalls += 1
            elif roll < 0.22:
                for link in lab.relay.between(*rng.sample(lab.hosts, 2)):
                    link.cut()
                cuts += 1
            elif peer.up:
                key, value = f"k{rng.randrange(20)}", step
                cid = peer.db.put(key, value)
                peer.written[cid] = (key, value)
        lab.connect()
        after_restart = time.monotonic() - last_restart
        converge = _wait_all(peers, timeout) + after_restart
        acknowledged = {c for p in peers for c in p.written}
        for peer in peers:
            missing = [c for c in acknowledged if not peer.db.holds([c])]
            assert not missing, f"{len(missing)} acknowledged writes missing on a peer"
        states = [peer.db.all() for peer in peers]
        assert all(s == states[0] for s in states), "the peers' states differ"
        for peer in peers:
            peer.close()
    return {
        "churn_converge_s": converge,
        "churn_writes": len(acknowledged),
        "churn_restarts": restarts,
        "churn_stalls": stalls,
        "churn_cuts": cuts,
    }


def offline_writer(root: Path, *, entries: int = 5_000, timeout: float = 120.0) -> dict[str, Any]:
    """Run the offline-writer scenario (see the module docs); return its measures.

    Raises:
        AssertionError: the newcomer did not reach the whole state.
    """
    identities = _identities(4)
    writers = [identities[0].did]
    # 0 the writer, 1 and 2 replicas, 3 the newcomer, linked to replica 1 only.
    mesh = [(0, 1), (0, 2), (1, 2), (1, 3)]
    with Lab(root / "lab", 4, mesh=mesh) as lab:
        lab.relay.set(delay=0.02, jitter=0.005)
        lab.start()
        writer, first, second, newcomer = (
            LabPeer(node, root / f"orbit{i}", identities[i]) for i, node in enumerate(lab.nodes)
        )
        writer.open("history", writers)
        for i in range(entries):
            writer.db.put(f"key{i % 500}", i)
        heads = writer.db.heads()
        address = writer.db.address
        assert writer.orbit is not None
        assert writer.orbit.ipfs is not None
        _uploaded(writer, timeout)  # the manifest and the entries are on the writer's node
        for replica in (first, second):
            lab.connect()
            replica.open_address(address)
            replica.db.wait_for(heads, timeout=timeout)
        state = writer.db.all()
        writer.close()
        writer.node.stop()
        for replica in (first, second):  # the replicas' nodes hold the history now
            _uploaded(replica, timeout)
        lab.connect()  # the links of peers still running are up (Kubo redials them, this is quicker)
        started = time.monotonic()
        newcomer.open_address(address)
        newcomer.db.wait_for(heads, timeout=timeout)
        took = time.monotonic() - started
        assert newcomer.db.all() == state
        assert len(newcomer.db.log) == entries
        for peer in (first, second, newcomer):
            peer.close()
    return {"offline_writer_newcomer_s": took, "offline_writer_entries": entries}


def partition(root: Path, *, writes: int = 10, timeout: float = 60.0) -> dict[str, Any]:
    """Four peers split in two groups that both write, then the links come back: they converge.

    Raises:
        AssertionError: the groups did not converge to the same state.
    """
    identities = _identities(4)
    writers = [i.did for i in identities]
    with Lab(root / "lab", 4) as lab:
        lab.relay.set(delay=0.02, jitter=0.005)
        lab.start()
        peers = [LabPeer(node, root / f"orbit{i}", identities[i]) for i, node in enumerate(lab.nodes)]
        for peer in peers:
            peer.open("split", writers)
        cross = [link for a in lab.hosts[:2] for b in lab.hosts[2:] for link in lab.relay.between(a, b)]
        for link in cross:
            link.down()
        for i in range(writes):
            peers[0].db.put(f"left{i % 3}", i)
            peers[3].db.put(f"right{i % 3}", i)
        _wait_all(peers[:2], timeout)
        _wait_all(peers[2:], timeout)
        assert not peers[0].db.holds(peers[3].db.heads())  # the groups were apart
        for link in cross:
            link.up()
        lab.connect()
        healed = _wait_all(peers, timeout)
        states = [peer.db.all() for peer in peers]
        assert all(s == states[0] for s in states), "the peers' states differ"
        assert len(states[0]) == 6
        for peer in peers:
            peer.close()
    return {"partition_heal_s": healed}
