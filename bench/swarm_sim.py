"""A deterministic swarm simulator: the replicator's own Machine, with simulated gossip and block exchange.

Each simulated peer runs :class:`orbit.replication.machine.Machine`, the code that makes the real
replicator's decisions (what to announce, to whom, what to fetch next), fed with the same events. Around
it the simulator replaces the I/O:

- **the log** is a set of held entries with parent links (verification is the log's own business and is
  tested elsewhere; here every entry is honest unless the scenario makes a peer announce heads that
  resolve to nothing);
- **gossip** (pubsub on the database's topic): a mesh in which each peer has about ``degree`` links;
  a message is flooded over the mesh (each peer forwards it once to its other mesh links, as gossipsub's
  mesh does), each link transmission delayed by ``latency`` plus jitter and lost with probability
  ``loss``. Gossipsub's lazy repair (IHAVE/IWANT) is not modelled: what is lost on every path stays lost,
  and only the replicator's anti-entropy repairs it (pessimistic);
- **inboxes** (a topic only one peer subscribes to): one link transmission to a direct peer;
- **the block exchange** (bitswap): a fetch of what some heads lack asks a direct peer that holds it (else
  any peer online that holds it, after a provider search); it costs one round trip per level of missing
  history up to :data:`~orbit.ipfs.packs.MIN_PACK` entries, two round trips past that (packs), plus the
  bytes at ``bandwidth``; heads that nobody holds time out after ``block_timeout``.

Everything is driven by one event queue and one seeded random generator: a run is a function of its
configuration and seed. Bytes and messages are counted per peer (sent and received, gossip duplicates
included) and by cause.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ipfs_log.cid import CID
from orbit.ipfs.packs import MIN_PACK
from orbit.replication.machine import FetchJob, Lane, Machine, Outcome, Policy, Send

__all__ = ["SimConfig", "SimPeer", "Swarm"]

HEADER_BYTES = 120
"""The bytes of an announcement without inline entries: address, version, framing, one head."""
HEAD_BYTES = 38
WANT_BYTES = 48
"""A want-list entry of the block exchange (per block asked for)."""
BLOCK_OVERHEAD = 16
"""Framing per block sent by the block exchange."""


@dataclass(frozen=True)
class SimConfig:
    """A swarm's shape and its network."""

    n: int
    degree: int = 8
    latency: float = 0.02
    """One-way delay of a link, in seconds."""
    jitter: float = 0.01
    loss: float = 0.01
    """Probability that one link transmission is lost."""
    bandwidth: float = 10e6
    """Bytes per second of a block transfer."""
    entry_bytes: int = 250
    interval: float = 30.0
    peer_poll: float = 1.0
    block_timeout: float = 10.0
    clock_skew: float = 0.25
    """Each peer's wall clock is off by up to this many seconds (rounds are aligned on it)."""
    provider_search: float = 0.5
    """Extra delay when no direct peer holds what is fetched."""
    seed: int = 1


@dataclass(frozen=True)
class _Entry:
    cid: CID
    parents: tuple[CID, ...]
    size: int


@dataclass
class _Message:
    id: int
    sender: str
    heads: tuple[CID, ...]
    inline: tuple[CID, ...]
    size: int
    cause: str


@dataclass
class SimPeer:
    """One replica: its log (held entries and heads), its machine, its links and its counters."""

    name: str
    machine: Machine
    held: set[CID] = field(default_factory=set)
    heads: set[CID] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    online: bool = True
    seen: set[int] = field(default_factory=set)
    fresh: list[CID] = field(default_factory=list)
    busy: set[Lane] = field(default_factory=set)
    hostile: bool = False
    app_received: int = 0
    link_received: int = 0
    link_sent: int = 0
    bytes_sent: int = 0
    wake: float = float("inf")


class Swarm:
    """A simulated swarm (see the module docs)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self.entries: dict[CID, _Entry] = {}
        self.peers: dict[str, SimPeer] = {}
        self.admitted_at: dict[CID, list[float]] = {}
        self.bytes_by_cause: dict[str, int] = {}
        self.policy = Policy(interval=config.interval)
        for i in range(config.n):
            self.add_peer(f"p{i}", connect=False)
        names = list(self.peers)
        for i, name in enumerate(names):  # a ring (connected) plus random links up to the degree
            self._link(name, names[(i + 1) % len(names)])
        for name in names:
            while len(self.peers[name].links) < self.config.degree and len(names) > self.config.degree:
                self._link(name, self.rng.choice(names))

    # ------------------------------------------------------------------ building

    def add_peer(self, name: str, *, connect: bool = True, hostile: bool = False) -> SimPeer:
        """Add a peer; a newcomer gets ``degree`` random online peers, which find it at their next poll."""
        skew = self.rng.uniform(-self.config.clock_skew, self.config.clock_skew)
        machine = Machine(self.policy, self.now, random.Random(self.rng.random()), epoch=skew)
        machine.name = name
        peer = self.peers[name] = SimPeer(name, machine, hostile=hostile)
        if connect:
            others = [p for p in self.peers if p != name and self.peers[p].online]
            for other in self.rng.sample(others, min(self.config.degree, len(others))):
                self._link(name, other)
            for other in sorted(peer.links):
                self._after(self.rng.uniform(0, self.config.peer_poll), self._joined(other, [name]))
            self._after(self.rng.uniform(0, self.config.peer_poll), self._joined(name, sorted(peer.links)))
        self._schedule_wake(peer)
        return peer

    def _link(self, a: str, b: str) -> None:
        if a != b:
            self.peers[a].links.add(b)
            self.peers[b].links.add(a)

    def seed_history(self, count: int) -> list[CID]:
        """Give every peer the same history of ``count`` entries (a chain); return it."""
        chain: list[CID] = []
        parents: tuple[CID, ...] = ()
        for _ in range(count):
            entry = self._new_entry(parents)
            chain.append(entry.cid)
            parents = (entry.cid,)
        for peer in self.peers.values():
            peer.held.update(chain)
            peer.heads = {chain[-1]} if chain else set()
        return chain

    def _new_entry(self, parents: tuple[CID, ...]) -> _Entry:
        cid = CID.for_block(b"sim-entry-%d" % next(self._ids))
        entry = _Entry(cid, parents, self.config.entry_bytes)
        self.entries[cid] = entry
        return entry

    # ------------------------------------------------------------------ the clock

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), action))

    def every(self, period: float, action: Callable[[], None]) -> None:
        """Call ``action`` now and then every ``period`` seconds (simulated)."""

        def tick() -> None:
            action()
            self._after(period, tick)

        tick()

    def run_until(self, t: float) -> None:
        """Process every event up to time ``t``."""
        while self._queue and self._queue[0][0] <= t:
            when, _, action = heapq.heappop(self._queue)
            self.now = when
            action()
        self.now = max(self.now, t)

    def run_while(self, condition: Callable[[], bool], limit: float) -> bool:
        """Process events while ``condition()`` holds, ``limit`` seconds at most; return whether it ended."""
        end = self.now + limit
        while condition():
            if not self._queue or self._queue[0][0] > end:
                self.now = end
                return not condition()
            when, _, action = heapq.heappop(self._queue)
            self.now = when
            action()
        return True

    # ------------------------------------------------------------------ writes and what peers do

    def write(self, name: str) -> CID:
        """``name`` writes one entry (following its heads) and announces it."""
        peer = self.peers[name]
        entry = self._new_entry(tuple(sorted(peer.heads, key=bytes)))
        self._admit(peer, entry)
        peer.fresh.append(entry.cid)
        peer.machine.wrote()
        self._pump(peer)
        return entry.cid

    def announce_garbage(self, name: str, count: int) -> None:
        """``name`` (hostile) announces ``count`` heads that nobody can resolve, on the topic."""
        heads = tuple(CID.for_block(b"nothing-%d" % next(self._ids)) for _ in range(count))
        self._gossip(self.peers[name], heads, (), "hostile")

    def stop(self, name: str) -> None:
        """Take a peer offline (its node and process gone)."""
        self.peers[name].online = False

    def _joined(self, name: str, others: list[str]) -> Callable[[], None]:
        def run() -> None:
            peer = self.peers[name]
            if peer.online:
                peer.machine.joined(o for o in others if self.peers[o].online)
                self._pump(peer)

        return run

    def _left(self, name: str, gone: str) -> Callable[[], None]:
        def run() -> None:
            self.peers[name].machine.left([gone])

        return run

    def _admit(self, peer: SimPeer, entry: _Entry) -> None:
        peer.held.add(entry.cid)
        peer.heads.difference_update(entry.parents)
        peer.heads.add(entry.cid)
        self.admitted_at.setdefault(entry.cid, []).append(self.now)

    def _pump(self, peer: SimPeer) -> None:
        """Send what the machine says is due, start fetches, and set the next wake-up."""
        if not peer.online:
            return
        ours = sorted(peer.heads, key=bytes)
        for send in peer.machine.sends(self.now, ours=ours):
            self._send(peer, send, tuple(ours))
        for lane in Lane:
            if lane not in peer.busy:
                job = peer.machine.next_fetch(lane, self.now)
                if job is not None:
                    peer.busy.add(lane)
                    self._start_fetch(peer, job)
        self._schedule_wake(peer)

    def _schedule_wake(self, peer: SimPeer) -> None:
        when = min(
            [peer.machine.wake_at()]
            + [peer.machine.fetch_wake_at(lane) for lane in Lane if lane not in peer.busy]
        )
        when = max(when, self.now + 1e-3)
        if when < peer.wake:
            peer.wake = when

            def wake() -> None:
                if peer.wake == when:
                    peer.wake = float("inf")
                    self._pump(peer)

            heapq.heappush(self._queue, (when, next(self._seq), wake))

    def _send(self, peer: SimPeer, send: Send, ours: tuple[CID, ...]) -> None:
        if send.to is None:
            inline, peer.fresh = tuple(peer.fresh[-64:]), []
            self._gossip(peer, ours, inline, send.reason)
            return
        target = self.peers.get(send.to)
        if target is None or send.to not in peer.links:
            return
        cause = "newcomer" if "newcomer" in (peer.name, send.to) else send.reason
        size = HEADER_BYTES + HEAD_BYTES * max(0, len(ours) - 1)
        message = _Message(next(self._ids), peer.name, ours, (), size, cause)
        self._transmit(peer, target, message, forward=False)

    def _gossip(self, peer: SimPeer, heads: tuple[CID, ...], inline: tuple[CID, ...], reason: str) -> None:
        size = HEADER_BYTES + HEAD_BYTES * max(0, len(heads) - 1)
        size += sum(self.entries[c].size for c in inline)
        cause = "newcomer" if peer.name == "newcomer" else reason
        message = _Message(next(self._ids), peer.name, heads, inline, size, cause)
        peer.seen.add(message.id)
        for other in sorted(peer.links):
            self._transmit(peer, self.peers[other], message, forward=True)

    def _transmit(self, sender: SimPeer, target: SimPeer, message: _Message, *, forward: bool) -> None:
        if not sender.online:
            return
        sender.link_sent += 1
        sender.bytes_sent += message.size
        self.bytes_by_cause[message.cause] = self.bytes_by_cause.get(message.cause, 0) + message.size
        if self.rng.random() < self.config.loss:
            return
        delay = self.config.latency + self.rng.uniform(0, self.config.jitter)

        def arrive() -> None:
            if not target.online:
                return
            target.link_received += 1
            if forward:
                if message.id in target.seen:
                    return
                target.seen.add(message.id)
                for other in sorted(target.links):
                    if other != sender.name:
                        self._transmit(target, self.peers[other], message, forward=True)
            self._receive(target, message)

        self._after(delay, arrive)

    def _receive(self, peer: SimPeer, message: _Message) -> None:
        peer.app_received += 1
        if message.inline:
            admitted = False
            for cid in reversed(message.inline):  # inlined newest first: admit oldest first
                entry = self.entries[cid]
                if cid not in peer.held and all(p in peer.held for p in entry.parents):
                    self._admit(peer, entry)
                    admitted = True
        else:
            admitted = False
        peer.machine.heard(
            message.sender,
            message.heads,
            self.now,
            ours=sorted(peer.heads, key=bytes),
            held=[h for h in message.heads if h in peer.held],
            neighbor=message.sender in peer.links,
        )
        if admitted:
            peer.machine.admitted(message.sender, self.now)
        self._pump(peer)

    # ------------------------------------------------------------------ the block exchange

    def _missing(self, peer: SimPeer, heads: Iterable[CID]) -> tuple[list[_Entry], int] | None:
        """The entries ``heads`` lead to that ``peer`` lacks (parents first) and the depth, or None."""
        order: list[_Entry] = []
        depth: dict[CID, int] = {}
        stack = [h for h in heads if h not in peer.held]
        seen: set[CID] = set()
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            entry = self.entries.get(cid)
            if entry is None:
                return None
            order.append(entry)
            stack.extend(p for p in entry.parents if p not in peer.held)
        order.sort(key=lambda e: self._height(e, peer, depth))  # parents first
        return order, max(depth.values(), default=0)

    def _height(self, entry: _Entry, peer: SimPeer, memo: dict[CID, int]) -> int:
        if entry.cid in memo:
            return memo[entry.cid]
        stack = [entry]
        while stack:
            top = stack[-1]
            pending = [self.entries[p] for p in top.parents if p not in peer.held and p not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[top.cid] = 1 + max((memo[p] for p in top.parents if p in memo), default=0)
        return memo[entry.cid]

    def _start_fetch(self, peer: SimPeer, job: FetchJob) -> None:
        found = self._missing(peer, job.heads)
        holders: list[SimPeer] = []
        if found is not None:
            needed = {e.cid for e in found[0]}
            holders = [
                p
                for p in self.peers.values()
                if p.online and not p.hostile and needed <= p.held and p is not peer
            ]
        if found is None or not holders:
            self._after(self.config.block_timeout, self._fetch_ended(peer, job, [], Outcome.MISSING))
            return
        entries, depth = found
        near = [p for p in holders if p.name in peer.links]
        source = near[0] if near else holders[0]
        rtt = 2 * self.config.latency + self.config.jitter
        rounds = 2 if len(entries) >= MIN_PACK else max(1, depth)
        size = sum(e.size + BLOCK_OVERHEAD for e in entries)
        delay = rounds * rtt + size / self.config.bandwidth + (0 if near else self.config.provider_search)
        cause = "newcomer" if peer.name == "newcomer" else "fetch"
        asked = WANT_BYTES * len(entries)
        peer.bytes_sent += asked
        source.bytes_sent += size
        self.bytes_by_cause[cause] = self.bytes_by_cause.get(cause, 0) + size + asked
        self._after(delay, self._fetch_ended(peer, job, entries, Outcome.DONE))

    def _fetch_ended(
        self, peer: SimPeer, job: FetchJob, entries: list[_Entry], outcome: Outcome
    ) -> Callable[[], None]:
        def run() -> None:
            peer.busy.discard(job.lane)
            if not peer.online:
                return
            for entry in entries:
                if entry.cid not in peer.held:
                    self._admit(peer, entry)
            peer.machine.holding(h for h in job.heads if h in peer.held)
            peer.machine.fetched(job, outcome, self.now)
            self._pump(peer)

        return run

    # ------------------------------------------------------------------ measures

    def holders(self, cid: CID) -> int:
        """How many online peers hold ``cid``."""
        return sum(1 for p in self.peers.values() if p.online and cid in p.held)

    def converged(self) -> bool:
        """Whether every honest online peer has the same heads."""
        heads = {frozenset(p.heads) for p in self.peers.values() if p.online and not p.hostile}
        return len(heads) <= 1

    # ------------------------------------------------------------------ scenarios

    def stop_peer(self, name: str) -> None:
        """Take a peer offline (process and node gone; what it holds stays on its disk)."""
        peer = self.peers[name]
        peer.online = False
        for other in sorted(peer.links):
            self.peers[other].links.discard(name)
            self._after(self.rng.uniform(0, self.config.peer_poll), self._left(other, name))
        peer.links.clear()
        peer.busy.clear()

    def start_peer(self, name: str) -> None:
        """Bring a stopped peer back, linked to ``degree`` random online peers (as a newcomer is)."""
        peer = self.peers[name]
        peer.online = True
        others = [p for p in self.peers if p != name and self.peers[p].online]
        for other in self.rng.sample(others, min(self.config.degree, len(others))):
            self._link(name, other)
        for other in sorted(peer.links):
            self._after(self.rng.uniform(0, self.config.peer_poll), self._joined(other, [name]))
        self._after(self.rng.uniform(0, self.config.peer_poll), self._joined(name, sorted(peer.links)))
        peer.wake = float("inf")
        self._schedule_wake(peer)

    def live(self, writer: str, writes: int, rate: float) -> list[float]:
        """``writer`` writes ``writes`` entries at ``rate`` a second; return the times to the last peer.

        The run goes on until every online peer holds every write (or 10 intervals pass: a write some peer
        never got counts as taking that long).
        """
        made: list[tuple[float, CID]] = []
        for _ in range(writes):
            self.run_until(self.now + 1 / rate)
            made.append((self.now, self.write(writer)))
        online = [p for p in self.peers.values() if p.online and not p.hostile]
        last = made[-1][1]
        self.run_while(lambda: any(last not in p.held for p in online), 10 * self.config.interval)
        limit = 10 * self.config.interval
        return sorted(
            (max(self.admitted_at[c]) - t) if all(c in p.held for p in online) else limit for t, c in made
        )

    def idle(self, seconds: float) -> float:
        """Run ``seconds`` with no writes; return the messages each peer received per second, on average."""
        online = [p for p in self.peers.values() if p.online]
        before = {p.name: p.app_received for p in online}
        self.run_until(self.now + seconds)
        return sum(p.app_received - before[p.name] for p in online) / len(online) / seconds

    def newcomer(self, source: str, *, links: list[str] | None = None) -> tuple[float, float]:
        """A newcomer joins (linked to ``links``, or at random); return (seconds to catch up, bytes ratio).

        It catches up when it holds everything ``source`` holds. The ratio is the bytes the swarm sent
        because of it (greetings to and from it, its fetches, its own announcements) over the bytes of the
        entries it lacked.
        """
        target = set(self.peers[source].held)
        spent = self.bytes_by_cause.get("newcomer", 0)
        if links is None:
            peer = self.add_peer("newcomer")
        else:
            peer = self.add_peer("newcomer", connect=False)
            for other in links:
                self._link("newcomer", other)
                self._after(self.rng.uniform(0, self.config.peer_poll), self._joined(other, ["newcomer"]))
            self._after(self.rng.uniform(0, self.config.peer_poll), self._joined("newcomer", links))
        start = self.now
        self.run_while(lambda: not target <= peer.held, 10 * self.config.interval)
        took = self.now - start
        lacking = sum(self.entries[c].size for c in target)
        return took, (self.bytes_by_cause.get("newcomer", 0) - spent) / lacking
