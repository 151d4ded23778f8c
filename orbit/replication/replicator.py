"""Replication of one open database with its peers, through an IPFS node: pubsub for heads, blocks by CID.

A :class:`Replicator` drives the sans-I/O :class:`~orbit.replication.machine.Machine` (which decides
what to announce, to whom, and what to fetch next) with threads and an IPFS node. It subscribes to the
database's pubsub topic (its address) and to its own **inbox** (:func:`~orbit.replication.wire.inbox_topic`,
a topic only it subscribes to), and keeps the database in sync:

- **announces** its heads in a small, versioned DAG-CBOR message
  :class:`~orbit.replication.wire.Announcement` ``{v: 1, address, heads: [CID], entries: [block]}``
  on the topic after every local write (inlining the blocks of the newest entries, so a live update
  needs no fetch), and in anti-entropy rounds that are skipped when peers already announced the same
  heads (so an idle swarm is quiet whatever its size); each announcement and greeting also carries the
  database's newest signed commit, if it has one;
- **greets** each new direct peer in its inbox with its heads and packs (one hop, not a broadcast), and
  answers in its inbox a direct peer heard with older heads;
- **admits inline entries at once**, in the listening thread, without waiting for any fetch (a live
  update's, up to :data:`~orbit.replication.wire.LIVE_INLINE` entries; a bigger batch is verified in
  its sender's fetch lane);
- **fetches** what it hears of and lacks, in three lanes (peers in good standing, new peers, suspect
  peers), at most a few heads of one peer per fetch, the peers of a lane in turn: unresolvable heads
  announced by one peer cannot stall the others' updates. The database's join is a sans-I/O flow, driven
  here against the inline blocks first, then the packs peers announced, then the IPFS block store
  (:mod:`orbit.replication.sources`); every entry is verified before it is admitted;
- **sends catch-up bundles** only when it has no packs on its node, to the inbox of the peer that lacks
  them, at most once per half interval;
- **retries** with backoff: heads whose blocks the node cannot produce yet wait longer after each
  failure, and the log keeps what it verified, so nothing is fetched twice;
- **re-subscribes** when the node's stream ends (the node restarted or went away), with backoff
  (:class:`~orbit.replication.loops.SubscriptionKeeper`).

Everything a peer sends is untrusted. A message that is not a well-formed announcement of this
database (garbage, oversize, wrong version or address, malformed CIDs or blocks) is counted and dropped;
entries that fail verification (bad signature, a writer outside the write list...) are counted, never
admitted, and their heads are not asked for again. An announced commit is checked by the database
(``note_commit``: signed by a key of the write list, about this database) and recorded as its writer's
newest if it is (``db.commits()``), or counted as refused; it is never taken for state. None of it stops
the replicator.

Waiting: :meth:`Replicator.wait_for` returns once the log holds given heads, :meth:`Replicator.wait_synced`
once it holds the last heads every known peer (or one peer) announced; both raise
:class:`~orbit.errors.ReplicationTimeoutError` after their timeout. :meth:`Replicator.status` tells peers,
their last heads, pending and missing entries, counters and bytes fetched.

Threads: two read the subscriptions (topic and inbox), three fetch (one per lane), one announces (the
shared machinery of :mod:`orbit.replication.loops`). All waits are bounded; :meth:`Replicator.close`
returns within about ``close_timeout`` seconds even while a fetch is under way (a fetch still running
then finds the database closed and stops).

Locks: the machine and the counters are guarded by one condition, ``_state``, which is never held while
taking the database's lock: the database calls back (on each update) with its own lock held, and that
callback takes ``_state``. So what the log holds is read between two sections under ``_state``, and
passed to the machine as facts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ipfs_log.blockstore import BlockStore, ChainedBlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError, EntryRejectedError, OrbitError
from ipfs_log.fetch import Progress
from ipfs_log.log import Log
from orbit.errors import (
    CarError,
    CommitError,
    DatabaseClosedError,
    IpfsError,
    ReplicationError,
    ReplicationTimeoutError,
)
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import StatePack
from orbit.ipfs.packs import MAX_PACKS, MIN_PACK, Pack
from orbit.ipfs.pubsub import Subscription
from orbit.replication.loops import Backoff, PeerWatch, SubscriptionKeeper, Workers
from orbit.replication.machine import FetchJob, Lane, Machine, Outcome, Policy, Send
from orbit.replication.sources import CountingBlockStore, InlineBlocks
from orbit.replication.status import COUNTERS, ReplicationEvent, ReplicationStatus
from orbit.replication.wire import (
    BUNDLE_TOTAL,
    LIVE_INLINE,
    MAX_ANNOUNCED_COMMIT,
    MAX_HEADS,
    Announcement,
    bundle_messages,
    decode_announcement,
    inbox_topic,
    live_inline,
)
from orbit.state import Commit
from stores.base import Update

__all__ = ["ReplicatedDatabase", "Replicator"]

_log = logging.getLogger("orbit.replicator")

RESUME = "(resume)"
"""The name under which blocks an earlier join lacked are wanted again (not a peer: it announces nothing)."""


class PackShelf(Protocol):
    """The packs of databases' histories on the IPFS node (e.g. :class:`~orbit.ipfs.NodeLink`)."""

    def packs_of(self, address: str) -> list[Pack]:
        """The packs of this replica's history of ``address``, to announce."""

    def read_pack(self, pack: Pack, *, timeout: float | None = None) -> dict[CID, bytes]:
        """A pack's blocks by CID (hash-checked), read through the node."""

    def state_pack_of(self, address: str) -> StatePack | None:
        """The state pack of this replica's newest published commit of ``address``, to announce with it."""


class ReplicatedDatabase(Protocol):
    """What a :class:`Replicator` needs of the database it keeps in sync (e.g. an orbit ``Database``)."""

    @property
    def address(self) -> str:
        """The database's address (the pubsub topic)."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The lock that guards the database's log."""

    @property
    def log(self) -> Log:
        """The database's log (read under :attr:`lock`)."""

    def check_open(self) -> None:
        """Raise ``DatabaseClosedError`` if the database is closed."""

    def heads(self) -> list[CID]:
        """The log's heads."""

    def holds(self, heads: Iterable[CID]) -> bool:
        """Whether the log holds every one of ``heads`` (takes the lock; raises if closed)."""

    def subscribe(self, callback: Callable[[Update], None]) -> Callable[[], None]:
        """Call ``callback`` after each batch of applied entries; return an unsubscribe function."""

    def join_heads(
        self, heads: Iterable[CID], *, source: BlockStore | None = None, progress: Progress | None = None
    ) -> list[Entry]:
        """Fetch, verify and admit what is reachable from ``heads``."""

    def latest_commit(self) -> Commit | None:
        """This replica's newest signed commit, if any (announced with the heads)."""

    def note_commit(self, block: bytes, pack: CID | None = None) -> Commit:
        """Check a commit a peer announced (signed by a writer, of this database) and record it.

        ``pack`` is the state pack it named with the commit (an untrusted hint), recorded beside it.

        Raises ``CommitError`` when it is refused (nothing is recorded).
        """


class Replicator:
    """Keeps an open database in sync with its peers through an IPFS node (see the module docs).

    Args:
        db: the database.
        client: the node's RPC client (pubsub).
        remote: the node's block store (fetches; e.g. :class:`~orbit.ipfs.blockstore.IpfsBlockStore`).
        interval: seconds of an anti-entropy round (its announcement is skipped when peers already
            announced the same heads in it).
        peer_poll: seconds between polls of ``pubsub/peers`` (a new peer is greeted in its inbox).
        retry: first backoff, in seconds, before heads whose blocks were missing are asked for again
            (doubling up to ``max_retry``).
        max_retry: the longest backoff.
        pin: called with the new heads after entries were admitted (e.g. to pin them on the node).
        progress: called during a long fetch with the number of entries verified so far.
        upload: put new local entries on the node before announcing them (off when something else
            uploads them, as ``OrbitDB(ipfs=...)`` does in the background: announcements inline the
            newest entries, so peers need not wait for the node).
        close_timeout: how long :meth:`close` waits for the threads, in all.
        packs: the packs of histories on the node (:class:`PackShelf`): announcements name this
            replica's, and a replica that lacks what a peer announced reads the peer's packs through
            its node before fetching the rest block by block; catch-up bundles are then not sent.
    """

    def __init__(
        self,
        db: ReplicatedDatabase,
        client: KuboClient,
        remote: BlockStore,
        *,
        interval: float = 30.0,
        peer_poll: float = 1.0,
        retry: float = 0.5,
        max_retry: float = 30.0,
        pin: Callable[[list[CID]], None] | None = None,
        progress: Callable[[int], None] | None = None,
        upload: bool = True,
        close_timeout: float = 2.0,
        packs: PackShelf | None = None,
    ) -> None:
        self.upload = upload
        self._shelf = packs
        self._packs_seen: dict[CID, Pack] = {}  # packs peers announced, not read yet (bounded)
        self._packs_read: set[CID] = set()
        self.db = db
        self.client = client
        self.topic = db.address
        self.interval = interval
        self.peer_poll = peer_poll
        self.retry = retry
        self.max_retry = max_retry
        self.close_timeout = close_timeout
        self._pin = pin
        self._progress = progress
        self._verifying = 0  # entries verified so far by the fetch under way
        self._inline = InlineBlocks()
        self._remote = remote
        self._remote_timeout = max(10.0, client.block_timeout * 3)  # per read of a pack from peers
        self._source = ChainedBlockStore(self._inline, CountingBlockStore(remote, self._count_bytes))
        # Guards everything below and wakes waiters. Never held while taking the database's lock (the
        # database calls _on_update with its lock held, and that takes this one). The subscription
        # keepers' locks may be taken inside it (a keeper never calls out while holding its own).
        self._state = threading.Condition()
        self._generation = 0  # bumped on every admission and message: waiters re-check after a bump
        policy = Policy(interval=interval, retry=retry, max_retry=max_retry)
        self._machine = Machine(policy, time.monotonic(), epoch=time.time() - time.monotonic())
        self._neighbors: set[str] = set()  # direct peers on the topic (pubsub/peers), from the last poll
        self._counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._last_error: str | None = None
        self._subscribers: list[Callable[[ReplicationEvent], None]] = []
        self._stop = threading.Event()
        self._announce_now = threading.Event()
        self._fresh: list[Entry] = []  # local entries not yet announced (inlined next time)
        self._bundled_at = -float("inf")
        self._admitting = threading.local()  # entries admitted by this thread's join, from _on_update
        backoff = Backoff(retry, max_retry)  # between tries to subscribe
        self._subscription = SubscriptionKeeper(
            self._subscribe,
            self._stop,
            backoff,
            close_timeout=close_timeout,
            on_open_failed=lambda e: self._error(f"cannot subscribe: {e}"),
            on_end=self._on_stream_end,
        )
        self._inbox = SubscriptionKeeper(
            self._subscribe_inbox,
            self._stop,
            backoff,
            close_timeout=close_timeout,
            on_open_failed=lambda e: self._error(f"cannot subscribe to the inbox: {e}"),
            on_end=self._on_stream_end,
        )
        self._self_id: str | None = None
        self._threads = Workers()
        self._running = False
        self._unsubscribe = db.subscribe(self._on_update)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Replicator:
        """Start the threads (subscribing in the background); return ``self``."""
        with self._state:
            if self._running or self._stop.is_set():
                return self
            self._running = True
        targets: list[tuple[str, Callable[[], None]]] = [
            ("inbox", lambda: self._inbox.run(self._read)),
            ("listen", lambda: self._subscription.run(self._read)),
            ("announce", self._announce_loop),
        ]
        targets += [(f"fetch-{lane.name.lower()}", self._fetch_loop(lane)) for lane in Lane]
        for name, target in targets:
            self._threads.start(f"orbit-replicate-{name}", target)
        return self

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._running and not self._stop.is_set()

    def close(self) -> None:
        """Stop replicating; returns within about ``close_timeout`` seconds. Idempotent."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + self.close_timeout
        self._stop.set()
        self._announce_now.set()
        self._unsubscribe()
        with self._state:
            self._running = False
            self._state.notify_all()
        for keeper in (self._subscription, self._inbox):
            keeper.close(max(0.1, (deadline - time.monotonic()) / 2))
        self._threads.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Replicator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ watching and waiting

    def subscribe(self, callback: Callable[[ReplicationEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (in a replicator thread) with each batch of entries replicated from a peer."""
        with self._state:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._state:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _held(self, heads: Iterable[CID]) -> set[CID]:
        """Those of ``heads`` the log holds (takes the database's lock: never call with _state held)."""
        log = self.db.log
        with self.db.lock:
            self.db.check_open()
            return {h for h in heads if h in log}

    def _wait_until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``done()`` (checked without _state held) or the deadline; return whether done."""
        while True:
            with self._state:
                generation = self._generation
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._state:
                if self._generation == generation:
                    self._state.wait(min(left, 1.0))

    def wait_for(self, heads: Iterable[CID], timeout: float) -> None:
        """Return as soon as the database holds every one of ``heads``.

        Raises:
            ReplicationTimeoutError: not within ``timeout`` seconds (the message says what is missing).
            DatabaseClosedError: the database was closed.
        """
        wanted = list(heads)
        if self._wait_until(lambda: self.db.holds(wanted), time.monotonic() + timeout):
            return
        missing = [h for h in wanted if not self.db.holds([h])]
        raise ReplicationTimeoutError(
            f"{self.topic}: {len(missing)} of {len(wanted)} heads not replicated within {timeout} s "
            f"(first: {missing[0] if missing else '-'}; {self._describe()})"
        )

    def wait_synced(self, timeout: float, peer: str | None = None) -> None:
        """Return once the database holds the last heads announced by ``peer`` (or by every peer seen).

        Raises:
            ReplicationTimeoutError: not within ``timeout`` seconds, or no such peer was heard from.
            DatabaseClosedError: the database was closed.
        """

        def synced() -> bool:
            with self._state:
                peers = self._machine.peers()
                if peer is None:
                    targets = [p.heads for p in peers.values() if p.heads]
                else:
                    state = peers.get(peer)
                    targets = [state.heads] if state is not None and state.heads else []
            return bool(targets) and all(self.db.holds(h) for h in targets)

        if not self._wait_until(synced, time.monotonic() + timeout):
            who = "any peer" if peer is None else f"peer {peer}"
            raise ReplicationTimeoutError(
                f"{self.topic}: not synced with {who} within {timeout} s ({self._describe()})"
            )

    def wait_heard(self, timeout: float) -> list[str]:
        """Return the peers heard from, waiting up to ``timeout`` seconds for the first if none was yet.

        Raises:
            DatabaseClosedError: the database was closed.
        """

        def heard() -> bool:
            self.db.check_open()
            with self._state:
                return bool(self._machine.peers())

        self._wait_until(heard, time.monotonic() + timeout)
        with self._state:
            return list(self._machine.peers())

    def _describe(self) -> str:
        with self._state:
            peers, wanted, error = len(self._machine.peers()), self._machine.wanted, self._last_error
        pending = self.db.log.pending
        return f"{peers} peers, {wanted} heads wanted, {pending} entries pending, last error: {error}"

    def status(self) -> ReplicationStatus:
        """Return a snapshot of peers, their heads, what is pending or missing, and the counters."""
        log = self.db.log
        subscription = self._subscription.current
        with self._state:
            return ReplicationStatus(
                address=self.topic,
                running=self.running,
                subscribed=subscription is not None and not subscription.closed,
                peers={p: r.heads for p, r in self._machine.peers().items() if p != RESUME},
                pending=log.pending,
                missing=len(log.missing),
                wanted=self._machine.wanted,
                verifying=self._verifying,
                counters=dict(self._counters),
                last_error=self._last_error,
            )

    def announce(self) -> None:
        """Announce the heads on the topic now (as after a write)."""
        with self._state:
            self._machine.wrote()
        self._announce_now.set()

    # ------------------------------------------------------------------ internals

    def _count(self, name: str, n: int = 1) -> None:
        with self._state:
            self._counters[name] += n

    def _count_bytes(self, n: int) -> None:
        self._count("bytes_fetched", n)

    def _error(self, message: str) -> None:
        with self._state:
            self._last_error = message
        _log.info("%s: %s", self.topic, message)

    def _on_update(self, update: Update) -> None:
        # Runs in the thread that wrote or joined, under the database's lock: only note what to announce
        # (or what this thread's join admitted), and wake waiters.
        if not update.local:
            admitting: list[Entry] | None = getattr(self._admitting, "entries", None)
            if admitting is not None:
                admitting.extend(update.entries)
        with self._state:
            if update.local:
                self._fresh.extend(update.entries)
                self._machine.wrote()
                self._announce_now.set()
            self._generation += 1
            self._state.notify_all()

    def _own_id(self) -> str:
        if self._self_id is None:
            self._self_id = str(self.client.id().get("ID", ""))
            with self._state:
                self._machine.name = self._self_id
        return self._self_id

    def _subscribe(self) -> Subscription:
        self._own_id()
        return self.client.pubsub_sub(self.topic)

    def _subscribe_inbox(self) -> Subscription:
        return self.client.pubsub_sub(inbox_topic(self.topic, self._own_id()))

    def _read(self, subscription: Subscription) -> None:
        message = subscription.next(timeout=1.0)
        if message is not None:
            self._receive(message.sender, message.data)

    def _on_stream_end(self, error: IpfsError) -> None:
        self._error(f"subscription ended: {error}")
        self._count("resubscribed")

    def _receive(self, sender: str, data: bytes) -> None:
        self._count("messages")
        if sender and sender == self._self_id:
            self._count("own")
            return
        try:
            announcement = decode_announcement(data, self.topic)
        except ReplicationError as e:
            self._count("invalid")
            self._error(f"dropped a message from {sender[:16]}: {e}")
            return
        commit = (
            None
            if announcement.commit is None
            else self._note_commit(sender, announcement.commit, announcement.state_pack)
        )
        if announcement.entries:
            self._inline.add(announcement.entries)
            if announcement.heads and len(announcement.entries) <= LIVE_INLINE:
                # A live update is admitted here at once; a bigger batch (a catch-up bundle) is verified
                # in its sender's fetch lane, so no peer can hold up the reading of everyone's messages.
                self._admit_inline(sender, announcement.heads)
        if announcement.packs and self._shelf is not None:
            self._note_packs(announcement)
        try:
            ours = self.db.heads()
            held = self._held(announcement.heads)
        except DatabaseClosedError:
            return
        with self._state:
            self._machine.heard(
                sender,
                announcement.heads,
                time.monotonic(),
                ours=ours,
                held=held,
                neighbor=sender in self._neighbors,
                commit=commit,
            )
            self._generation += 1
            self._state.notify_all()
            due = self._machine.wake_at() <= time.monotonic()
        if due:
            self._announce_now.set()

    def _note_commit(self, sender: str, commit: Commit, pack: CID | None) -> CID | None:
        """Have the database check and record a peer's commit (and its pack hint); return its CID if kept."""
        try:
            self.db.note_commit(commit.block, pack)
        except CommitError as e:
            self._count("commits_refused")
            self._error(f"refused a commit announced by {sender[:16]}: {e}")
            return None
        except DatabaseClosedError:
            return None
        self._count("commits")
        return commit.cid

    def _our_commit(self) -> Commit | None:
        """The database's newest commit, to announce (None if none, or too big to announce)."""
        commit = self.db.latest_commit()
        return commit if commit is not None and len(commit.block) <= MAX_ANNOUNCED_COMMIT else None

    def _our_commit_and_pack(self) -> tuple[Commit | None, CID | None]:
        """The newest commit to announce, and its state pack on the node if it has one yet."""
        commit = self._our_commit()
        held = None if commit is None or self._shelf is None else self._shelf.state_pack_of(self.topic)
        return (
            commit,
            held.cid if held is not None and commit is not None and held.commit == commit.cid else None,
        )

    def _admit_inline(self, sender: str, heads: Sequence[CID]) -> None:
        """Admit what the inline blocks (with the log) complete, at once: no fetch, no wait on the node."""
        try:
            self._join(heads, self._inline, sender)
        except (DatabaseClosedError, BlockNotFoundError):
            return  # the rest is fetched in the sender's lane
        except EntryRejectedError as e:
            self._count("rejected")
            self._error(f"rejected entries inlined by {sender[:16]}: {e}")
        except OrbitError as e:
            self._error(f"cannot admit inline entries: {e}")

    def _join(self, heads: Sequence[CID], source: BlockStore, peer: str) -> None:
        """Join ``heads`` from ``source``; what it admits (even if it then fails) is told as ``peer``'s."""
        before = set(self.db.heads()) if self._pin is not None else set()
        self._admitting.entries = []
        try:
            self.db.join_heads(heads, source=source, progress=self._on_progress)
        finally:
            admitted: list[Entry] = self._admitting.entries
            del self._admitting.entries
            if admitted:
                with self._state:
                    self._machine.admitted(peer, time.monotonic())
                self._admitted(admitted, peer, before)

    def _note_packs(self, announcement: Announcement) -> None:
        """Remember the packs worth reading: the newest that cover what this replica lacks by count.

        Only when the peer's history is at least :data:`~orbit.ipfs.packs.MIN_PACK` entries longer and
        its heads are not held: a replica a few entries behind takes them inline or block by block.
        """
        try:
            if self.db.holds(announcement.heads):
                return
            gap = max(p.end for p in announcement.packs) - len(self.db.log)
        except DatabaseClosedError:
            return
        if gap < MIN_PACK:
            return
        picked: list[Pack] = []
        for pack in sorted(announcement.packs, key=lambda p: p.first, reverse=True):
            picked.append(pack)
            gap -= pack.count
            if gap <= 0:
                break
        with self._state:
            for pack in picked:
                if pack.cid not in self._packs_read and len(self._packs_seen) < 4 * MAX_PACKS:
                    self._packs_seen.setdefault(pack.cid, pack)

    def _fetch_loop(self, lane: Lane) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                now = time.monotonic()
                with self._state:
                    job = self._machine.next_fetch(lane, now)
                    if job is None:
                        wait = min(0.5, max(0.01, self._machine.fetch_wake_at(lane) - now))
                        self._state.wait(wait)
                        continue
                try:
                    self._fetch(job)
                except DatabaseClosedError:
                    self._stop.set()
                    return

        return run

    def _read_packs(self) -> BlockStore | None:
        """Read the packs peers announced that this replica has not read (through its node)."""
        if self._shelf is None:
            return None
        with self._state:
            packs, self._packs_seen = list(self._packs_seen.values()), {}
        if not packs:
            return None
        blocks = MemoryBlockStore()
        for pack in packs[:MAX_PACKS]:
            try:
                blocks.put_many(self._shelf.read_pack(pack, timeout=self._remote_timeout).items())
                self._count("packs")
            except (IpfsError, CarError) as e:  # the entries come block by block instead
                self._error(f"cannot read pack {pack.cid}: {e}")
            with self._state:
                self._packs_read.add(pack.cid)
                if len(self._packs_read) > 16 * MAX_PACKS:
                    self._packs_read.clear()
        return blocks

    def _fetch(self, job: FetchJob) -> None:
        """Fetch one job's heads and tell the machine how it went.

        Raises:
            DatabaseClosedError: the database was closed.
        """
        held = self._held(job.heads)
        heads = [h for h in job.heads if h not in held]
        outcome = Outcome.DONE
        try:
            if heads:
                packed = self._read_packs()
                source = self._source if packed is None else ChainedBlockStore(packed, self._source)
                self._join(heads, source, job.peer)
        except EntryRejectedError as e:
            if len(heads) > 1:  # find which heads lead to the invalid entry; the others are fine
                for head in heads:
                    self._fetch(FetchJob(job.peer, (head,), job.lane))
                return
            # A verified-invalid entry: never admitted, and this head is not asked for again.
            self._count("rejected")
            self._error(f"rejected entries announced by {job.peer[:16]}: {e}")
            outcome = Outcome.REJECTED
        except BlockNotFoundError as e:
            self._error(f"blocks missing, will retry: {e}")
            outcome = Outcome.MISSING
        except DatabaseClosedError:
            raise
        except OrbitError as e:  # the node is down or slow, or the local store failed
            self._count("fetch_errors")
            self._error(f"fetch failed, will retry: {e}")
            outcome = Outcome.FAILED
        held = self._held(job.heads) if outcome is not Outcome.DONE else set(job.heads)
        with self._state:
            self._machine.holding(held)
            self._machine.fetched(job, outcome, time.monotonic())
            self._generation += 1
            self._state.notify_all()

    def _on_progress(self, verified: int) -> None:
        with self._state:
            self._verifying = verified
        if self._progress is not None:
            self._progress(verified)

    def _admitted(self, entries: Sequence[Entry], peer: str, before: set[CID]) -> None:
        self._inline.discard(e.cid for e in entries)
        self._count("admitted", len(entries))
        event = ReplicationEvent(tuple(entries), peer)
        with self._state:
            callbacks = list(self._subscribers)
            self._generation += 1
            self._state.notify_all()
        for callback in callbacks:
            try:
                callback(event)
            except Exception as e:  # a subscriber's failure is its own
                _log.warning("replication subscriber failed: %r", e)
        if self._pin is not None:
            try:
                heads = self.db.heads()
                if set(heads) != before:
                    self._pin(heads)
            except OrbitError as e:
                self._error(f"pinning failed: {e}")

    def _upload_missing(self) -> None:
        """Put the whole log on the node if its heads are not there (e.g. it was written offline).

        Entries reach the node in log order (parents first), so heads on the node mean the rest is too.
        """
        heads = self.db.heads()
        if all(self._remote.has(h) for h in heads):
            return
        batch: list[tuple[CID, bytes]] = []
        for entry in self.db.log:  # read in chunks, each under the lock
            batch.append((entry.cid, entry.block))
            if len(batch) == 256:
                self._remote.put_many(batch)
                batch = []
        if batch:
            self._remote.put_many(batch)

    def _announce_loop(self) -> None:
        uploaded = False
        peers = PeerWatch(
            lambda: self.client.pubsub_peers(self.topic), lambda e: self._error(f"cannot list peers: {e}")
        )
        next_poll = next_resume = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            with self._state:
                wake = self._machine.wake_at()
            self._announce_now.wait(max(0.0, min(wake, next_poll, next_resume) - now))
            if self._stop.is_set():
                return
            self._announce_now.clear()
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.peer_poll
                new = peers.poll()
                if new is not None:
                    with self._state:
                        gone = self._neighbors - peers.known
                        self._neighbors = set(peers.known)
                        self._machine.joined(new)
                        self._machine.left(gone)
            if now >= next_resume:  # what an earlier join lacked is asked for again, whoever has it
                next_resume = now + max(1.0, self.peer_poll)
                with self.db.lock:
                    missing = sorted(self.db.log.missing, key=bytes)[:MAX_HEADS]
                if missing:
                    with self._state:
                        self._machine.want(RESUME, missing, now)
                        self._state.notify_all()
            try:
                if not uploaded and self.upload:  # without upload, the node link uploads everything
                    self._upload_missing()
                uploaded = True
                ours = self.db.heads()
            except DatabaseClosedError:
                return
            except OrbitError as e:
                self._error(f"cannot put the log on the node: {e}")
                continue
            with self._state:
                sends = self._machine.sends(time.monotonic(), ours=ours)
            try:
                for send in sends:
                    self._send(send)
            except DatabaseClosedError:
                return

    def _send(self, send: Send) -> None:
        if send.to is None:
            self._publish()
            return
        if send.bundle and self._send_bundle(send.to):
            return
        heads = tuple(self.db.heads()[-MAX_HEADS:])
        message = Announcement(self.topic, heads, (), self._our_packs(), *self._our_commit_and_pack())
        try:
            self.client.pubsub_pub(inbox_topic(self.topic, send.to), message.encode())
            self._count("greeted")
        except IpfsError as e:
            self._error(f"cannot greet {send.to[:16]}: {e}")

    def _send_bundle(self, peer: str) -> bool:
        """Send a peer that is behind the entries it lacks, in its inbox; return whether sent.

        Only without packs (with packs, peers read the history through their nodes: the greeting names
        them), and at most once every ``interval / 2`` seconds, whoever asks: announcing stale heads
        again and again (from many peer ids) cannot make this replica flood anyone.
        """
        now = time.monotonic()
        with self._state:
            record = self._machine.peers().get(peer)
            heads = record.heads if record is not None else ()
        if now - self._bundled_at < self.interval / 2 or self._our_packs():
            return False
        self._bundled_at = now
        try:
            entries = self._lacking(heads)
            ours = tuple(self.db.heads()[-MAX_HEADS:])
        except DatabaseClosedError:
            return True
        except OrbitError as e:
            self._error(f"cannot read entries for a bundle: {e}")
            return False
        try:
            for message in bundle_messages(self.topic, (e.block for e in entries), ours):
                self.client.pubsub_pub(inbox_topic(self.topic, peer), message.encode())
            self._count("bundles")
        except IpfsError as e:
            self._error(f"cannot send a bundle: {e}")
        return True

    def _lacking(self, heads: Sequence[CID]) -> list[Entry]:
        """Return the entries a peer with ``heads`` (all held here) lacks, at most BUNDLE_TOTAL bytes.

        Those after the oldest of its heads in log order (a superset where branches are concurrent),
        the newest first when there are too many.
        """
        log = self.db.log
        with self.db.lock:
            self.db.check_open()
            known = [h for h in heads if h in log]
            if known:
                oldest = min(known, key=lambda h: log.get(h).sort_key)
                walk = log.iter(gt=oldest, reverse=True)
            else:
                walk = log.iter(reverse=True)
        picked: list[Entry] = []
        total = 0
        for entry in walk:  # newest first: read in chunks, each under the lock
            total += len(entry.block)
            if total > BUNDLE_TOTAL:
                break
            picked.append(entry)
        picked.reverse()
        return picked

    def _our_packs(self) -> tuple[Pack, ...]:
        return () if self._shelf is None else tuple(self._shelf.packs_of(self.topic)[-MAX_PACKS:])

    def _publish(self) -> None:
        try:
            heads = self.db.heads()
        except DatabaseClosedError:
            self._stop.set()
            return
        with self._state:
            fresh, self._fresh = self._fresh, []
        try:  # what is announced must be on the node, for peers that fetch rather than read it inline
            if self.upload:
                self._remote.put_many((e.cid, e.block) for e in fresh)
        except OrbitError as e:
            self._error(f"cannot put new entries on the node: {e}")
            with self._state:
                self._fresh = fresh + self._fresh
                self._machine.wrote()
            return
        inline = live_inline([e.block for e in fresh])  # the newest first, within the budget
        message = Announcement(
            self.topic, tuple(heads[-MAX_HEADS:]), inline, self._our_packs(), *self._our_commit_and_pack()
        ).encode()
        try:
            self.client.pubsub_pub(self.topic, message)
            self._count("announced")
        except IpfsError as e:  # nobody listening (js-ipfs: InsufficientPeers) or the node is away
            self._error(f"cannot announce: {e}")
            with self._state:
                self._fresh = fresh + self._fresh  # inline them next time
