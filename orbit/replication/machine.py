"""The replicator's decisions, without I/O: what to announce and to whom, which heads to fetch next.

:class:`Machine` is a sans-I/O state machine, like the log's fetch flow. Events go in, with the facts
the caller read from the database (its heads, which announced heads it holds): a peer's announcement
(:meth:`~Machine.heard`), direct peers that came or went (:meth:`~Machine.joined`,
:meth:`~Machine.left`), a local write
(:meth:`~Machine.wrote`), the outcome of a fetch (:meth:`~Machine.fetched`). Decisions come out: the
messages due now (:meth:`~Machine.sends`, each to the whole topic or to one peer's inbox), the next fetch
of a lane (:meth:`~Machine.next_fetch`), and when to look again (:meth:`~Machine.wake_at`). Threads
and an IPFS node drive it in production (:class:`~orbit.replication.Replicator`); a deterministic
simulator drives the same code with simulated gossip and block exchange in the tests and benchmarks
(``bench/swarm_sim.py``), up to a thousand peers.

What one peer sends and receives does not grow with the number of peers:

- **Per write**: the writer publishes one announcement on the topic (heads and the new entries inline);
  every peer receives it once and sends nothing back. A peer that missed some parent fetches it through
  the block exchange (one copy, from whichever peer has it).
- **Per newcomer**: a newcomer's direct peers greet it in its **inbox** (a topic only it subscribes
  to, so a message there costs one hop, not a broadcast) with their heads and packs, and it greets them
  the same way; it then fetches what it lacks, one copy, through the block exchange. A peer heard on the
  topic with heads older than ours is answered in its inbox, by its direct peers only; where entries
  travel in the answer (a catch-up bundle, for a replica without packs), one replica is elected to send
  them (the lowest digest of replica and requester among those known to hold the same heads).
- **When idle**: anti-entropy rounds with suppression, in the manner of Trickle (RFC 6206). Rounds of
  ``interval`` seconds are aligned on the wall clock, so peers share them. In each round a peer picks a
  moment in the round's second half and announces its heads on the topic then, unless it has already
  heard ``redundancy`` peers announce the very same heads in this round. The moment is drawn from a
  truncated exponential distribution (most peers late, a few early), as multicast feedback suppression
  does: the first announcement of a round then comes early and is heard by the others before their own
  moments, so a round costs about ``redundancy`` broadcasts for one peer or ten thousand; a uniform draw
  would cost one more broadcast per peer firing within one propagation delay of the first, which grows
  with the swarm. A peer that missed a message hears the heads it lacks within one round, so any loss is
  repaired within ``interval`` seconds.

Fetches are scheduled per announcing peer, in three lanes that the caller drives concurrently: peers in
good standing (something they announced was admitted, and nothing failed since), new peers, and suspect
peers (a fetch of what they announced failed, or their entries were rejected). A lane serves its peers in
turn, at most ``batch`` heads per fetch, so what one peer announces can delay another peer's updates by
at most one fetch of its own lane, and never delays the peers in good standing. A suspect peer's heads wait
longer after each failure (doubling up to ``max_retry``). Memory is bounded: at most ``max_peers`` peers
(the least recently heard forgotten first) and ``max_wanted`` heads per peer.

A :class:`Machine` is a plain value, not thread-safe: its owner guards it with a lock.
"""

from __future__ import annotations

import enum
import hashlib
import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ipfs_log.cid import CID

__all__ = ["FetchJob", "Lane", "Machine", "Outcome", "PeerRecord", "Policy", "Send"]

_REJECTED_KEPT: Final = 65536
"""Heads remembered as rejected (the oldest forgotten first)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of a :class:`Machine` (all times in seconds)."""

    interval: float = 30.0
    """The length of an anti-entropy round."""
    redundancy: int = 1
    """A round's announcement is skipped once this many peers announced the same heads in it."""
    spread: float = 10.0
    """The rate of the truncated exponential the moments of announcement are drawn from: duplicates stay
    about constant for swarms up to roughly ``exp(spread)`` peers."""
    batch: int = 8
    """Most heads of one fetch."""
    retry: float = 0.5
    """The wait before a failed head is tried again (doubling after each failure)."""
    max_retry: float = 30.0
    """The longest such wait."""
    max_peers: int = 512
    """Most peers remembered."""
    max_wanted: int = 256
    """Most heads wanted from one peer."""


class Lane(enum.IntEnum):
    """The fetch lanes, in order of priority."""

    TRUSTED = 0
    """Peers in good standing: something they announced was admitted, and nothing failed since."""
    NEW = 1
    """Peers not judged yet."""
    SUSPECT = 2
    """Peers a fetch of whose heads failed, or whose entries were rejected, since their last success."""


class Outcome(enum.Enum):
    """How a fetch ended."""

    DONE = "done"
    """Every head of the job is held now."""
    MISSING = "missing"
    """Some blocks could not be found (what was complete was admitted)."""
    FAILED = "failed"
    """The node or the store failed."""
    REJECTED = "rejected"
    """The job's (single) head leads to an entry that failed verification: never wanted again."""


@dataclass(frozen=True, slots=True)
class Send:
    """A message due: this replica's heads, to the topic or to one peer's inbox."""

    to: str | None
    """The peer whose inbox it goes to, or None for the whole topic."""
    reason: str
    """``write``, ``round``, ``greet`` or ``answer``."""
    bundle: bool = False
    """Whether the peer asked for entries it lacks (a catch-up bundle, when there are no packs)."""


@dataclass(frozen=True, slots=True)
class FetchJob:
    """Heads to fetch, announced by one peer."""

    peer: str
    heads: tuple[CID, ...]
    lane: Lane


@dataclass(slots=True)
class _Want:
    peer: str
    at: float  # when it may be tried next
    delay: float  # the wait after its next failure
    busy: bool = False  # in a fetch now


@dataclass(slots=True)
class PeerRecord:
    """What the machine knows of one peer."""

    heads: tuple[CID, ...] = ()
    """The heads it announced last."""
    last_seen: float = 0.0
    """When it was heard last (the caller's clock)."""
    messages: int = 0
    """Messages heard from it."""
    successes: int = 0
    """Fetches of its heads, or inline admissions, that succeeded."""
    failures: int = 0
    """Fetches of its heads that failed since its last success."""
    served: int = 0
    """When it was last served a fetch (a turn counter: lower goes first)."""
    wanted: set[CID] = field(default_factory=set)
    """Heads it announced that are wanted and attributed to it."""
    commit: CID | None = None
    """The last commit it announced that the database checked (signed by a writer, of this database)."""

    @property
    def lane(self) -> Lane:
        """The lane its heads are fetched in."""
        if self.failures:
            return Lane.SUSPECT
        return Lane.TRUSTED if self.successes else Lane.NEW


def _rank(replica: str, requester: str) -> bytes:
    return hashlib.sha256(f"{replica}\n{requester}".encode()).digest()


class Machine:
    """A replicator's decisions (see the module docs).

    Args:
        policy: the knobs.
        now: the caller's clock at the start (any monotonic clock, in seconds).
        rng: where the moments of anti-entropy rounds are drawn from (a seeded one for a
            deterministic simulation).
        epoch: the wall-clock time minus the caller's clock (e.g. ``time.time() - time.monotonic()``):
            rounds are aligned on the wall clock, so that the peers of a swarm share them.
    """

    def __init__(
        self, policy: Policy, now: float, rng: random.Random | None = None, *, epoch: float = 0.0
    ) -> None:
        self.policy = policy
        self.name = ""
        """This replica's peer id, once known: it takes part in electing who answers a gap."""
        self._rng = rng or random.Random()
        self._epoch = epoch
        self._peers: OrderedDict[str, PeerRecord] = OrderedDict()  # least recently heard first
        self._wanted: dict[CID, _Want] = {}
        self._rejected: OrderedDict[CID, None] = OrderedDict()
        self._turn = 0
        # Anti-entropy: the current round ends at _round_end; its announcement is due at _fire_at,
        # unless `redundancy` peers announced our heads in it (_same) by then.
        self._round_end = now
        self._fire_at = now
        self._same = 0
        self._fired = True
        self._topic_due = False  # a broadcast is due now (a local write)
        self._inbox: dict[str, bool] = {}  # peer -> whether it asked for a bundle
        self._new_round(now)

    # ------------------------------------------------------------------ events

    def wrote(self) -> None:
        """A local write: announce on the topic now (the round's own announcement still follows)."""
        self._topic_due = True

    def joined(self, peers: Iterable[str]) -> None:
        """New direct peers on the topic: greet each in its inbox."""
        for peer in peers:
            self._inbox.setdefault(peer, False)

    def left(self, peers: Iterable[str]) -> None:
        """Direct peers gone from the topic: their last heads are no longer a target to sync with.

        Heads they announced that are still wanted stay wanted (other peers' nodes may have the blocks);
        a peer with none is forgotten.
        """
        for peer in peers:
            self._inbox.pop(peer, None)
            record = self._peers.get(peer)
            if record is not None:
                record.heads = ()
                if not record.wanted:
                    del self._peers[peer]

    def heard(
        self,
        sender: str,
        heads: Sequence[CID],
        now: float,
        *,
        ours: Sequence[CID],
        held: Iterable[CID],
        neighbor: bool,
        commit: CID | None = None,
    ) -> None:
        """A peer announced ``heads`` (and maybe a commit).

        Args:
            sender: the peer.
            heads: its heads.
            now: the caller's clock.
            ours: this replica's heads now.
            held: those of ``heads`` the log holds.
            neighbor: whether the peer is a direct peer (on the topic, connected to our node): only
                direct peers are answered, so a peer that is behind gets a few answers, not one from
                every replica.
            commit: the CID of the commit it announced, once the caller checked it (None: none, or
                refused; the last one checked is kept).
        """
        record = self._record(sender, now)
        record.heads, record.last_seen = tuple(heads), now
        if commit is not None:
            record.commit = commit
        record.messages += 1
        held_set = set(held)
        ours_set = set(ours)
        same = bool(ours_set) and set(heads) == ours_set
        if same:
            self._same += 1
        elif ours_set and held_set >= set(heads) and neighbor:
            # It is behind us (or new, with no heads): tell it our heads, in its inbox.
            self._inbox[sender] = True
        lacking = [h for h in heads if h not in held_set]
        if lacking:
            self._want(record, sender, lacking, now)
        self._drop(held_set)

    def want(self, source: str, heads: Sequence[CID], now: float) -> None:
        """Want ``heads`` that no announcement named (e.g. blocks an earlier join lacked), as ``source``'s.

        ``source`` is a name of the caller's (not a peer on the topic): its heads are scheduled like a
        peer's, with their own standing, and it announces nothing.
        """
        self._want(self._record(source, now), source, heads, now)

    def admitted(self, peer: str, now: float) -> None:
        """Entries from ``peer`` were admitted (inline, with no fetch): it is in good standing."""
        record = self._record(peer, now)
        record.successes += 1
        record.failures = 0

    def holding(self, heads: Iterable[CID]) -> None:
        """The log holds ``heads`` now: stop wanting them."""
        self._drop(heads)

    def fetched(self, job: FetchJob, outcome: Outcome, now: float) -> None:
        """A fetch ended (see :class:`Outcome`); heads held since must also be passed to :meth:`holding`."""
        record = self._peers.get(job.peer)
        if outcome is Outcome.DONE:
            self._drop(job.heads)
            if record is not None:
                record.successes += 1
                record.failures = 0
            return
        if record is not None:
            record.failures += 1
        if outcome is Outcome.REJECTED:
            for head in job.heads:
                self._reject(head)
            return
        for head in job.heads:
            want = self._wanted.get(head)
            if want is not None:
                want.busy = False
                want.at = now + want.delay
                want.delay = min(want.delay * 2, self.policy.max_retry)

    # ------------------------------------------------------------------ decisions

    def sends(self, now: float, *, ours: Sequence[CID]) -> list[Send]:
        """Return the messages due now (and forget them: the caller sends them)."""
        due: list[Send] = []
        if self._topic_due:
            self._topic_due = False
            due.append(Send(None, "write"))
        if not self._fired and now >= self._fire_at:
            self._fired = True
            if self._same < self.policy.redundancy and ours and not due:
                due.append(Send(None, "round"))
        if now >= self._round_end:
            self._new_round(now)
        for peer, bundle in self._inbox.items():  # an empty replica greets too: it asks for heads
            due.append(Send(peer, "answer" if bundle else "greet", bundle and self._elected(peer, ours)))
        self._inbox.clear()
        return due

    def _elected(self, requester: str, ours: Sequence[CID]) -> bool:
        """Whether this replica is the one to send ``requester`` its entries (a catch-up bundle).

        Of the replicas known to hold the same heads (they announced them) and this one, the one whose
        digest of ``(replica, requester)`` is lowest: replicas that know the same peers elect the same one,
        so a gap is answered with entries once, the other answers carry heads only.
        """
        if not self.name:
            return True
        same = tuple(ours)
        holders = [p for p, r in self._peers.items() if r.heads and set(r.heads) == set(same)]
        return min([self.name, *holders], key=lambda p: _rank(p, requester)) == self.name

    def next_fetch(self, lane: Lane, now: float) -> FetchJob | None:
        """Return the next fetch of ``lane`` (its heads marked busy until :meth:`fetched`), or None."""
        best: PeerRecord | None = None
        best_peer = ""
        for peer, record in self._peers.items():
            if record.lane is not lane or not record.wanted:
                continue
            if best is not None and record.served >= best.served:
                continue
            if any(self._ready(h, now) for h in record.wanted):
                best, best_peer = record, peer
        if best is None:
            return None
        ready = sorted(
            (h for h in best.wanted if self._ready(h, now)), key=lambda h: (self._wanted[h].at, bytes(h))
        )
        heads = tuple(ready[: self.policy.batch])
        for head in heads:
            self._wanted[head].busy = True
        self._turn += 1
        best.served = self._turn
        return FetchJob(best_peer, heads, lane)

    def wake_at(self) -> float:
        """When :meth:`sends` may have something due next, at the latest (the caller's clock)."""
        if self._topic_due or self._inbox:
            return -float("inf")
        return self._round_end if self._fired else min(self._fire_at, self._round_end)

    def fetch_wake_at(self, lane: Lane) -> float:
        """When a head of ``lane`` becomes due next (``inf`` if none is wanted there)."""
        times = [
            w.at
            for r in self._peers.values()
            if r.lane is lane
            for h in r.wanted
            if not (w := self._wanted[h]).busy
        ]
        return min(times, default=float("inf"))

    # ------------------------------------------------------------------ views

    @property
    def wanted(self) -> int:
        """Heads wanted now."""
        return len(self._wanted)

    def peers(self) -> dict[str, PeerRecord]:
        """The peers remembered (a copy of the table; the records are live)."""
        return dict(self._peers)

    def is_rejected(self, head: CID) -> bool:
        """Whether ``head`` led to an entry that failed verification."""
        return head in self._rejected

    # ------------------------------------------------------------------ internals

    def _new_round(self, now: float) -> None:
        interval, spread = self.policy.interval, self.policy.spread
        start = math.floor((now + self._epoch) / interval) * interval - self._epoch
        self._round_end = start + interval
        late = math.log1p(self._rng.random() * math.expm1(spread)) / spread  # in [0, 1), mostly near 1
        self._fire_at = start + interval / 2 + interval / 2 * late
        self._fired = self._fire_at < now  # joined after its moment: it waits for the next round
        self._same = 0

    def _record(self, peer: str, now: float) -> PeerRecord:
        record = self._peers.get(peer)
        if record is None:
            while len(self._peers) >= self.policy.max_peers:
                _, old = self._peers.popitem(last=False)
                self._forget(old)
            record = self._peers[peer] = PeerRecord(last_seen=now)
        else:
            self._peers.move_to_end(peer)
        return record

    def _want(self, record: PeerRecord, peer: str, heads: Sequence[CID], now: float) -> None:
        for head in heads:
            if head in self._rejected:
                continue
            want = self._wanted.get(head)
            if want is None:
                if len(record.wanted) >= self.policy.max_wanted:
                    continue
                self._wanted[head] = _Want(peer, now, self.policy.retry)
                record.wanted.add(head)
            elif want.peer != peer:
                # Fetch it in the better lane of the two peers that announced it.
                owner = self._peers.get(want.peer)
                if owner is None or record.lane < owner.lane:
                    if owner is not None:
                        owner.wanted.discard(head)
                    want.peer = peer
                    record.wanted.add(head)

    def _ready(self, head: CID, now: float) -> bool:
        want = self._wanted[head]
        return not want.busy and want.at <= now

    def _drop(self, heads: Iterable[CID]) -> None:
        for head in heads:
            want = self._wanted.pop(head, None)
            if want is not None:
                owner = self._peers.get(want.peer)
                if owner is not None:
                    owner.wanted.discard(head)

    def _forget(self, record: PeerRecord) -> None:
        for head in record.wanted:
            self._wanted.pop(head, None)

    def _reject(self, head: CID) -> None:
        self._drop([head])
        self._rejected[head] = None
        while len(self._rejected) > _REJECTED_KEPT:
            self._rejected.popitem(last=False)
