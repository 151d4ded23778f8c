"""Live replication with OrbitDB JS peers, through an IPFS node's RPC: OrbitDB's own pubsub messages.

:class:`OrbitDBSync` keeps one OrbitDB v2 database (:class:`~orbit.orbitdb.compat.OrbitDBDatabase`) in
step with ``@orbitdb/core`` peers, speaking what OrbitDB 4's ``Sync`` speaks on pubsub (read from its
``src/sync.js``): the topic is the database address, and a message is the raw bytes of one head entry
(OrbitDB publishes each entry it appends; a receiver decodes it and joins it, fetching the entry's
ancestors and its writer's identity block by CID).

- **Receiving.** Every message is untrusted. It is bounded in size, decoded strictly as an OrbitDB v2
  entry of this database (hash, canonical DAG-CBOR, exact fields, signature:
  :meth:`~ipfs_log.orbitdb.OrbitEntry.from_block`); then its missing ancestors and identity blocks are
  fetched with ``block/get`` through the block store (many in flight, each bounded by the block
  timeout), outside the database lock; then the log joins it under the lock, which verifies every new
  entry (identity chain, ``key == identity.publicKey``, write permission, clock rule) and admits all or
  none. Garbage, foreign, tampered or unauthorised messages are counted (:meth:`OrbitDBSync.stats`) and
  dropped; a head whose blocks do not arrive is retried with backoff, then given up (a later head that
  names it fetches it again).
- **Writing.** :meth:`OrbitDBSync.add` (``put``, ``delete``) appends, stores the identity and entry
  blocks on the node (``block/put``, the returned CIDs checked) and publishes the entry's bytes, as
  OrbitDB does.
- **Announcing.** OrbitDB peers exchange heads when one subscribes, over a libp2p stream protocol
  (``/orbitdb/heads/<address>``) that a program talking to a node's RPC can neither serve nor dial. So
  this side publishes its heads, one message per head, when a new peer appears on the topic
  (``pubsub/peers`` is polled) and once per anti-entropy round unless a peer already announced the
  same head in it (:mod:`orbit.replication.machine`); OrbitDB joins them like any update. The other way
  round, an OrbitDB JS peer's heads are learnt from its next write only.

Threads: one receives and fetches, one watches peers and announces. They run on the loop machinery
orbit's own replicator uses (:mod:`orbit.replication.loops`: the threads and their bounded join, the
subscription kept open and re-opened with backoff after the node ends it, the ``pubsub/peers`` watch,
jitter). Every wait is bounded, and :meth:`OrbitDBSync.close` returns within ``close_timeout`` seconds
even while a fetch is under way (the fetch ends within its block timeout and finds the sync closed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode
from ipfs_log.entry import DEFAULT_LIMITS, Limits
from ipfs_log.errors import BlockNotFoundError, CodecError, EntryRejectedError, OrbitError
from ipfs_log.orbitdb import OrbitEntry, OrbitWriter, hash_to_cid
from orbit.errors import (
    DatabaseError,
    IpfsError,
    ReplicationError,
    ReplicationTimeoutError,
    UnknownAddressError,
)
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.pubsub import PubsubMessage
from orbit.orbitdb.compat import OrbitDBDatabase
from orbit.replication.loops import (
    Backoff,
    PeerWatch,
    PubsubSubscription,
    SubscriptionKeeper,
    Workers,
)
from orbit.replication.machine import Machine, Policy

__all__ = ["OrbitDBSync", "OrbitDBSyncOptions", "OrbitDBSyncStats", "PubsubClient", "PubsubSubscription"]

_log = logging.getLogger("orbit.orbitdb.sync")

_POLL: Final = 0.2
"""Longest the receiver blocks on the subscription before it looks at retries and the stop flag."""
_RESUBSCRIBE_LONGEST: Final = 30.0
"""Longest wait between two tries to subscribe again (the waits double from ``resubscribe_delay``)."""


class PubsubClient(Protocol):
    """The pubsub half of an IPFS node's RPC that :class:`OrbitDBSync` uses (:class:`KuboClient` is one)."""

    def pubsub_sub(self, topic: str | bytes, *, max_queued: int = 10_000) -> PubsubSubscription:
        """Subscribe to ``topic``."""
        ...

    def pubsub_pub(self, topic: str | bytes, data: bytes) -> None:
        """Publish ``data`` on ``topic``."""
        ...

    def pubsub_peers(self, topic: str | bytes | None = None) -> list[str]:
        """Return the peers seen on ``topic``."""
        ...


@dataclass(frozen=True, slots=True)
class OrbitDBSyncOptions:
    """Settings of an :class:`OrbitDBSync`; every wait they set is bounded."""

    block_timeout: float = 30.0
    """Seconds the node may take to produce one block (across nodes, bitswap can be slow)."""
    open_attempts: int = 3
    """Tries to fetch the manifest and access controller when opening by address."""
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Waits before each new try of a head whose blocks did not arrive; then it is given up."""
    announce_interval: float = 15.0
    """Seconds of an anti-entropy round: the heads are announced once per round, unless a peer announced
    the same head in it (as orbit's replicator does); 0 turns them off."""
    peer_poll: float = 1.0
    """Seconds between looks at the topic's peers (a new peer gets the heads at once)."""
    max_fetch: int = 100_000
    """Most entries fetched for one head; a message naming a longer missing history is refused."""
    max_queued: int = 10_000
    """Messages the subscription buffers while the receiver is busy fetching."""
    close_timeout: float = 2.0
    """Seconds :meth:`OrbitDBSync.close` waits for the threads."""
    resubscribe_delay: float = 1.0
    """Wait before subscribing again after the node ended the subscription stream."""
    limits: Limits = DEFAULT_LIMITS
    """Bounds on entries (bytes, ``next``/``refs`` counts); a message over ``max_entry_bytes`` is refused."""


@dataclass(frozen=True, slots=True)
class OrbitDBSyncStats:
    """What an :class:`OrbitDBSync` has seen and done so far."""

    received: int = 0
    """Messages received on the topic."""
    duplicates: int = 0
    """Messages naming an entry the log already holds (its own, or an announcement seen before)."""
    admitted: int = 0
    """Entries admitted from peers (heads and the ancestors fetched for them)."""
    rejected: int = 0
    """Messages or fetched histories refused (malformed, foreign, tampered, unauthorised, oversize)."""
    rejections: dict[str, int] = field(default_factory=dict)
    """``rejected`` by reason: the error's class name (``EntryDecodeError``, ``PermissionDeniedError``…)."""
    retries: int = 0
    """Fetches tried again because blocks did not arrive in time."""
    unavailable: int = 0
    """Heads given up after every retry."""
    published: int = 0
    """Entries published (own writes and announcements)."""
    publish_failures: int = 0
    """Publications the node refused (e.g. js-ipfs's "InsufficientPeers" before any peer subscribed)."""
    resubscriptions: int = 0
    """Times the subscription was opened again after the node ended it."""


@dataclass(slots=True)
class _Pending:
    block: bytes | None
    """The head's bytes when they came in a message (verified); None for a head known by CID only."""
    attempts: int = 0
    due: float = 0.0


class _Overlay:
    """A block store that reads fetched blocks from memory first, then from the backing store."""

    def __init__(self, backing: BlockStore) -> None:
        self.backing = backing
        self.cache: dict[CID, bytes] = {}

    def get(self, cid: CID) -> bytes:
        block = self.cache.get(cid)
        return block if block is not None else self.backing.get(cid)

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        wanted = list(cids)
        found = {c: self.cache[c] for c in wanted if c in self.cache}
        rest = [c for c in wanted if c not in found]
        if rest:
            found.update(self.backing.get_many(rest))
        return found

    def put(self, cid: CID, block: bytes) -> None:
        self.backing.put(cid, block)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.backing.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return cid in self.cache or self.backing.has(cid)


class _Stopped(Exception):
    """The sync is closing: a fetch in progress gives up."""


class OrbitDBSync:
    """One OrbitDB v2 database kept live with OrbitDB JS peers through an IPFS node.

    Make one with :meth:`open` (an existing database, by address) or :meth:`create`; both start it
    (subscribed when they return). Use it as a context manager, or call :meth:`close`.

    Args:
        client: the node's RPC client (:class:`~orbit.ipfs.KuboClient`), for pubsub.
        store: where blocks are read and written (e.g. an :class:`~orbit.ipfs.blockstore.IpfsBlockStore`
            over the same node).
        address: ``/orbitdb/<manifest hash>``; its manifest and access controller must be in ``store``.
        writer: who appends (None: read-only).
        options: timeouts, retries and bounds.
        owns_store: close ``store`` (if it has ``close``) when this closes.

    Raises:
        DatabaseError: the address, manifest or access controller is malformed or unsupported.
        UnknownAddressError: the store did not produce the manifest within ``open_attempts`` tries.
        BlockNotFoundError: the access controller block did not arrive.
        IpfsError: the node failed, or refused the subscription.
    """

    def __init__(
        self,
        client: PubsubClient,
        store: BlockStore,
        address: str,
        *,
        writer: OrbitWriter | None = None,
        options: OrbitDBSyncOptions | None = None,
        owns_store: bool = False,
    ) -> None:
        self.options = options = options or OrbitDBSyncOptions()
        self.client = client
        self._owns_store = owns_store
        self._store = _Overlay(store)
        self._lock = threading.RLock()
        # Anti-entropy rounds as orbit's replicator has them (orbit.replication.machine): an announcement
        # per round, skipped when a peer announced our head in it, so an idle topic stays quiet.
        interval = options.announce_interval
        self._rounds = (
            Machine(Policy(interval=interval), time.monotonic(), epoch=time.time() - time.monotonic())
            if interval > 0
            else None
        )
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._counts: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()
        self._pending: dict[CID, _Pending] = {}
        self._identities: set[CID] = set()
        self._subscription = SubscriptionKeeper(
            lambda: client.pubsub_sub(address, max_queued=options.max_queued),
            self._stop,
            Backoff(options.resubscribe_delay, _RESUBSCRIBE_LONGEST),
            close_timeout=0.5,
            on_open=self._on_resubscribed,
            on_open_failed=lambda e: _log.info("%s: subscribing again failed: %s", address, e),
            on_end=self._on_stream_end,
        )
        self._threads = Workers()
        self._released = False
        self._release_lock = threading.Lock()
        try:
            self.db = self._open(address, writer)
            self._subscription.subscribe()
        except BaseException:
            self._release()
            raise
        self._threads.start(f"orbitdb-sync recv {address[-12:]}", self._receive_loop)
        self._threads.start(f"orbitdb-sync peers {address[-12:]}", self._announce_loop)

    def _open(self, address: str, writer: OrbitWriter | None) -> OrbitDBDatabase:
        attempts = max(1, self.options.open_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return OrbitDBDatabase.open(
                    self._store, address, heads=[], writer=writer, limits=self.options.limits
                )
            except (BlockNotFoundError, UnknownAddressError):  # a block did not arrive in time
                if attempt == attempts:
                    raise
                _log.info("%s: manifest or access controller not found yet (try %d)", address, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ making one

    @classmethod
    def open(
        cls,
        client: KuboClient,
        address: str,
        *,
        writer: OrbitWriter | None = None,
        options: OrbitDBSyncOptions | None = None,
    ) -> OrbitDBSync:
        """Open the OrbitDB database at ``address`` through the node and start syncing it.

        The manifest and access controller are fetched through the node (from a peer, over bitswap,
        if the node lacks them); the log starts empty and fills as peers publish.

        Raises:
            DatabaseError: the address, manifest or access controller is malformed or unsupported.
            UnknownAddressError: the node did not produce the manifest in time.
            BlockNotFoundError: the access controller block did not arrive.
            IpfsError: the node failed, or refused the subscription.
        """
        options = options or OrbitDBSyncOptions()
        store = IpfsBlockStore(client, timeout=options.block_timeout)
        return cls(client, store, address, writer=writer, options=options, owns_store=True)

    @classmethod
    def create(
        cls,
        client: KuboClient,
        name: str,
        type: str,
        *,
        writer: OrbitWriter,
        write: Sequence[str] | None = None,
        meta: IPLDKind = None,
        options: OrbitDBSyncOptions | None = None,
    ) -> OrbitDBSync:
        """Make a new OrbitDB database (as OrbitDB's ``open(name, {type})``) on the node and sync it.

        Args:
            client: the node's RPC client.
            name: the database name.
            type: ``events``, ``keyvalue`` or ``documents``.
            writer: who appends here.
            write: identity ids allowed to write (``["*"]`` for anyone); default the writer's id.
            meta: optional metadata written in the manifest.
            options: timeouts, retries and bounds.

        Raises:
            UnknownStoreTypeError: an unsupported type.
            IpfsError: the node failed, or refused the subscription.
        """
        options = options or OrbitDBSyncOptions()
        store = IpfsBlockStore(client, timeout=options.block_timeout)
        try:
            db = OrbitDBDatabase.create(store, name, type, writer=writer, write=write, meta=meta)
        except BaseException:
            store.close()
            raise
        return cls(client, store, db.address, writer=writer, options=options, owns_store=True)

    # ------------------------------------------------------------------ reading

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest hash>``: the database address and its pubsub topic."""
        return self.db.address

    def __len__(self) -> int:
        with self._lock:
            return len(self.db.log)

    def __contains__(self, entry: object) -> bool:
        with self._lock:
            return entry in self.db.log

    def __repr__(self) -> str:
        return f"OrbitDBSync({self.address!r}, {len(self)} entries, closed={self._stop.is_set()})"

    def entries(self) -> list[OrbitEntry]:
        """Every entry, oldest first (OrbitDB's ``log.values()`` order)."""
        with self._lock:
            return self.db.log.values()

    def heads(self) -> list[OrbitEntry]:
        """The log's heads, newest first."""
        with self._lock:
            return self.db.log.heads

    def events(self) -> list[tuple[str, IPLDKind]]:
        """``events``: ``(hash, value)`` of every entry, oldest first (OrbitDB's ``all()``)."""
        with self._lock:
            return self.db.events()

    def keyvalue(self) -> dict[str, IPLDKind]:
        """``keyvalue``: key → value, in OrbitDB's ``all()`` order."""
        with self._lock:
            return self.db.keyvalue()

    def documents(self) -> dict[str, IPLDKind]:
        """``documents``: key → document, in OrbitDB's ``all()`` order."""
        with self._lock:
            return self.db.documents()

    def stats(self) -> OrbitDBSyncStats:
        """A snapshot of the counters."""
        with self._lock:
            c = self._counts
            return OrbitDBSyncStats(
                received=c["received"],
                duplicates=c["duplicates"],
                admitted=c["admitted"],
                rejected=sum(self._rejections.values()),
                rejections=dict(self._rejections),
                retries=c["retries"],
                unavailable=c["unavailable"],
                published=c["published"],
                publish_failures=c["publish_failures"],
                resubscriptions=c["resubscriptions"],
            )

    # ------------------------------------------------------------------ waiting

    def wait_for(self, entries: Iterable[str | CID], timeout: float) -> None:
        """Return once the log holds every one of ``entries`` (hashes or CIDs).

        Raises:
            ReplicationTimeoutError: some are still missing after ``timeout`` seconds (the message
                names how many and the first).
            CodecError: a hash is malformed.
        """
        wanted = [hash_to_cid(e) if isinstance(e, str) else e for e in entries]
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                missing = [c for c in wanted if c not in self.db.log]
                if not missing:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    raise ReplicationTimeoutError(
                        f"{self.address}: {len(missing)} of {len(wanted)} entries still missing after "
                        f"{timeout:.1f} s (first: {missing[0]})"
                    )
                self._changed.wait(min(left, 1.0))

    def wait_for_peers(self, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Return the topic's peers once there are at least ``count`` (polls ``pubsub/peers``).

        Raises:
            ReplicationTimeoutError: fewer peers after ``timeout`` seconds.
            IpfsError: the node failed.
        """
        deadline = time.monotonic() + timeout
        while True:
            peers = self.client.pubsub_peers(self.address)
            if len(peers) >= count:
                return peers
            if time.monotonic() > deadline or self._stop.is_set():
                raise ReplicationTimeoutError(
                    f"{self.address}: {len(peers)} peer(s) on the topic after {timeout:.1f} s, wanted {count}"
                )
            self._stop.wait(0.1)

    # ------------------------------------------------------------------ writing

    def add(self, value: IPLDKind) -> OrbitEntry:
        """``events``: append ``value``, store its blocks on the node and publish the entry.

        Raises:
            DatabaseError: not an ``events`` database, or this sync is closed.
            IdentityError: opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
            IpfsError: the node did not store the blocks (nothing was appended).
        """
        return self._write(lambda: self.db.add(value))

    def put(self, key: IPLDKind, value: IPLDKind | None = None) -> OrbitEntry:
        """``keyvalue``: ``put(key, value)``; ``documents``: ``put(doc)``; stored and published.

        Raises:
            DatabaseError: wrong database type, a document without its key field, or closed.
            IdentityError: opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
            IpfsError: the node did not store the blocks (nothing was appended).
        """
        return self._write(lambda: self.db.put(key, value))

    def delete(self, key: IPLDKind) -> OrbitEntry:
        """``keyvalue`` / ``documents``: delete ``key``; stored and published.

        Raises:
            DatabaseError: wrong database type, no such document, or closed.
            IdentityError: opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
            IpfsError: the node did not store the blocks (nothing was appended).
        """
        return self._write(lambda: self.db.delete(key))

    def _write(self, append: Callable[[], OrbitEntry]) -> OrbitEntry:
        with self._changed:
            if self._stop.is_set():
                raise DatabaseError(f"{self.address}: the sync is closed")
            entry = append()
            self._changed.notify_all()
        self._publish(entry.block)
        return entry

    def announce(self) -> int:
        """Publish every head's entry bytes now (as OrbitDB sends its heads to a peer that joins).

        Returns:
            How many heads were published.
        """
        with self._lock:
            blocks = [h.block for h in self.db.log.heads]
        return sum(self._publish(b) for b in blocks)

    def _publish(self, block: bytes) -> bool:
        try:
            self.client.pubsub_pub(self.address, block)
        except IpfsError as e:
            self._count("publish_failures")
            _log.debug("%s: publish failed: %s", self.address, e)
            return False
        self._count("published")
        return True

    # ------------------------------------------------------------------ receiving

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def _reject(self, error: Exception, what: str) -> None:
        with self._lock:
            self._rejections[type(error).__name__] += 1
        _log.info("%s: refused %s: %s", self.address, what, error)

    def _on_message(self, message: PubsubMessage) -> None:
        """Check one message as an entry of this database; queue it for fetching and joining."""
        self._count("received")
        data = message.data
        limit = self.options.limits.max_entry_bytes
        if len(data) > limit:
            self._reject(
                ReplicationError(f"{len(data)} bytes is over {limit}"), f"a message from {message.sender}"
            )
            return
        cid = CID.for_block(data)
        with self._lock:
            known = cid in self.db.log or cid in self._pending
            if known and self._rounds is not None:  # a peer announced a head we hold: maybe ours
                ours = [h.cid for h in self.db.log.heads]
                self._rounds.heard(
                    message.sender, [cid], time.monotonic(), ours=ours, held=[cid], neighbor=False
                )
        if known:
            self._count("duplicates")
            return
        try:
            OrbitEntry.from_block(cid, data, log_id=self.address, limits=self.options.limits)
        except EntryRejectedError as e:
            self._reject(e, f"a message from {message.sender}")
            return
        self._pending[cid] = _Pending(data)

    def _links(self, block: bytes) -> tuple[list[CID], CID | None]:
        """The ``next`` + ``refs`` and identity of an entry block, read leniently (the join checks all)."""
        try:
            body = decode(block)
        except CodecError:
            return [], None
        if type(body) is not dict:
            return [], None
        links: list[CID] = []
        limits = self.options.limits
        for name, limit in (("next", limits.max_next), ("refs", limits.max_refs)):
            value = body.get(name)
            if type(value) is list:
                for text in value[:limit]:
                    try:
                        links.append(hash_to_cid(text))
                    except CodecError:
                        continue
        try:
            identity = hash_to_cid(body.get("identity"))
        except CodecError:
            identity = None
        return links, identity

    def _collect(self, head: CID) -> None:
        """Fetch the head's missing history and identity blocks into the overlay, outside the lock.

        Raises:
            BlockNotFoundError: some blocks did not arrive within the block timeout.
            ReplicationError: the missing history is longer than ``max_fetch``.
            _Stopped: the sync is closing.
        """
        cache, backing = self._store.cache, self._store.backing
        frontier, seen, fetched = {head}, set(), 0
        while frontier:
            if self._stop.is_set():
                raise _Stopped
            wanted = [c for c in frontier if c not in cache]
            if wanted:
                cache.update(backing.get_many(wanted))
            missing = sorted(c for c in frontier if c not in cache)
            if missing:
                raise BlockNotFoundError(
                    missing[0], f"entry block not found: {missing[0]} ({len(missing)} missing)"
                )
            seen |= frontier
            links: set[CID] = set()
            identities: set[CID] = set()
            for cid in frontier:
                parents, identity = self._links(cache[cid])
                links.update(parents)
                if identity is not None:
                    identities.add(identity)
            wanted = [c for c in identities - self._identities if c not in cache]
            if wanted:
                cache.update(backing.get_many(wanted))
                missing = sorted(c for c in wanted if c not in cache)
                if missing:
                    raise BlockNotFoundError(missing[0], f"identity block not found: {missing[0]}")
            with self._lock:
                frontier = {c for c in links - seen if c not in self.db.log}
            fetched += len(frontier)
            if fetched > self.options.max_fetch:
                raise ReplicationError(
                    f"head {head} names more than {self.options.max_fetch} missing entries"
                )

    def _resolve(self, head: CID, pending: _Pending) -> None:
        """Fetch and join one head; reschedule it if blocks are missing, drop it if it is refused."""
        cache = self._store.cache
        if pending.block is not None:
            cache[head] = pending.block
        try:
            self._collect(head)
            with self._changed:
                admitted = self.db.log.join_heads([head])  # [] if it came meanwhile
                self._counts["admitted"] += len(admitted)
                for entry in admitted:
                    self._identities.add(entry.identity_cid)
                self._changed.notify_all()
        except BlockNotFoundError as e:
            pending.attempts += 1
            delays = self.options.retry_delays
            if pending.attempts > len(delays):
                self._count("unavailable")
                _log.info("%s: gave up head %s: %s", self.address, head, e)
                self._forget(head)
            else:
                self._count("retries")
                pending.due = time.monotonic() + delays[pending.attempts - 1]
            return
        except (EntryRejectedError, ReplicationError) as e:
            self._reject(e, f"head {head}")
            self._forget(head)
            return
        self._forget(head)
        for entry in admitted:
            cache.pop(entry.cid, None)
            cache.pop(entry.identity_cid, None)
        if pending.block is not None:
            try:  # the node now holds the whole log: peers may fetch this head from it too
                self._store.backing.put(head, pending.block)
            except OrbitError as e:
                _log.debug("%s: could not store head %s on the node: %s", self.address, head, e)

    def _forget(self, head: CID) -> None:
        self._pending.pop(head, None)
        if not self._pending:  # nothing waits for the fetched blocks any more
            self._store.cache.clear()

    def _receive_loop(self) -> None:
        try:
            self._subscription.run(self._receive_step)
        finally:
            self._finish()

    def _receive_step(self, subscription: PubsubSubscription) -> None:
        """Receive once; an ``IpfsError`` (the node ended the stream) goes up: the keeper subscribes again."""
        try:
            self._receive_once(subscription)
        except _Stopped:
            return  # the stop flag is set: the keeper returns
        except IpfsError:
            raise
        except Exception:  # never let the thread die silently
            if self._stop.is_set():
                return
            _log.exception("%s: receiver failed; going on", self.address)
            self._stop.wait(self.options.resubscribe_delay)

    def _on_stream_end(self, error: IpfsError) -> None:
        if not self._stop.is_set():
            _log.info("%s: subscription ended (%s); subscribing again", self.address, error)

    def _on_resubscribed(self, reopened: bool) -> None:
        if reopened:
            self._count("resubscriptions")

    def _receive_once(self, subscription: PubsubSubscription) -> None:
        now = time.monotonic()
        due = [(cid, p) for cid, p in self._pending.items() if p.due <= now]
        wait = 0.0 if due else _POLL
        if not due and self._pending:
            wait = max(0.0, min(_POLL, min(p.due for p in self._pending.values()) - now))
        message = subscription.next(timeout=wait)
        if message is not None:
            self._on_message(message)
        for cid, pending in due:
            if self._stop.is_set():
                raise _Stopped
            self._resolve(cid, pending)
        new = [(c, p) for c, p in self._pending.items() if p.attempts == 0 and p.due <= time.monotonic()]
        for cid, pending in new:
            if self._stop.is_set():
                raise _Stopped
            self._resolve(cid, pending)

    def _round_due(self) -> bool:
        """Whether this anti-entropy round's announcement is due (not suppressed by peers' own)."""
        if self._rounds is None:
            return False
        with self._lock:
            ours = [h.cid for h in self.db.log.heads]
            return any(send.to is None for send in self._rounds.sends(time.monotonic(), ours=ours))

    def _announce_loop(self) -> None:
        peers = PeerWatch(
            lambda: self.client.pubsub_peers(self.address),
            lambda e: _log.debug("%s: pubsub/peers failed: %s", self.address, e),
        )
        while not self._stop.wait(self.options.peer_poll):
            try:
                new = peers.poll()
            except Exception:
                _log.exception("%s: peer watcher failed; going on", self.address)
                continue
            if new is None:  # the node did not answer
                continue
            if new or self._round_due():
                self.announce()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop receiving and announcing; returns within about ``close_timeout`` seconds. Idempotent.

        A fetch still under way ends within its block timeout and releases the block store then.
        """
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._subscription.close(min(0.5, self.options.close_timeout))
        if self._threads.join(self.options.close_timeout):
            self._release()

    def _finish(self) -> None:
        """Run by the receiver as it exits: release the store if close() did not wait for it."""
        if self._stop.is_set():
            self._release()

    def _release(self) -> None:
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self._subscription.close(0.5)
        if self._owns_store:
            closer = getattr(self._store.backing, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> OrbitDBSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
