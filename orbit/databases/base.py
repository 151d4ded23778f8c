"""An open database: a typed, thread-safe facade over a store, its log and its storage.

:meth:`orbit.OrbitDB.open` returns a subclass for the store type (see :mod:`orbit.databases`). Each
method takes the directory's lock (one re-entrant lock per :class:`~orbit.OrbitDB`, shared with its
storage), so a database can be shared between threads, e.g. the application and a replicator:

- writes, joins and checkpoint saves are serialised, and a write is visible to readers only once it is
  committed (durable before visible);
- reads see a consistent state; methods that return iterators over an in-memory index (``keys``,
  ``items``, iterating a keyvalue or documents database) iterate over a copy taken under the lock, and
  iterating an eventlog reads the stored log in chunks, each under the lock, over the entries held when
  the iteration began;
- subscriber callbacks run in the writing thread, under the lock: they may read the database, but must
  not wait for another thread that uses it.

A database knows nothing of what opened it: the facade hands it a :class:`DatabaseContext` (its lock,
block stores, checkpoint sink, directory and close callback). After :meth:`Database.close` (or the
OrbitDB's), every read and write raises :class:`~orbit.errors.DatabaseClosedError`.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar

from ipfs_log.blockstore import BlockStore, ChainedBlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.errors import CodecError, OrbitError
from ipfs_log.fetch import Progress, run_flow
from ipfs_log.frozen import Frozen, frozen_init
from ipfs_log.lazy import lazy_logger
from ipfs_log.log import Log
from orbit.address import Manifest
from orbit.car import read_car, write_car
from orbit.errors import (
    BlockStoreError,
    CarError,
    CommitError,
    DatabaseClosedError,
    DatabaseError,
    ReplicationError,
)
from orbit.files import write_atomically
from stores.base import Store, Update, UpdateCallback

if TYPE_CHECKING:  # the verifiable state is imported when first used (see Database._parts)
    from orbit.databases.compaction import Compaction, Compactor
    from orbit.state import BufferedNodes, Commit, LatestCommits, RangeProof, ReadProof, StateIndex

__all__ = ["Database", "DatabaseContext", "OpenReport", "ReplicatorHandle", "StateSink", "locked"]

_log = lazy_logger("orbit")
S = TypeVar("S", bound=Store)
_D = TypeVar("_D", bound="Database[Any]")
_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")


def locked(method: Callable[Concatenate[_D, _P], _R]) -> Callable[Concatenate[_D, _P], _R]:
    """Run a database method under the directory's lock, after checking the database is open."""

    @functools.wraps(method)
    def run(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            self.check_open()
            return method(self, *args, **kwargs)

    return run


def _reporting(items: Iterator[_T], progress: Progress) -> Iterator[_T]:
    """``items``, calling ``progress(n)`` after the ``n``-th was consumed."""
    for n, item in enumerate(items, 1):
        yield item
        progress(n)


class ReplicatorHandle(Protocol):
    """What a database needs of the replicator that keeps it in sync (see :mod:`orbit.replication`)."""

    def wait_for(self, heads: Iterable[CID], timeout: float) -> None:
        """Return once the replica holds every one of ``heads``."""

    def wait_synced(self, timeout: float, peer: str | None = None) -> None:
        """Return once the replica holds the last heads announced by ``peer`` (or every peer)."""

    def status(self) -> Any:
        """Return the replication status."""

    def wait_heard(self, timeout: float) -> list[str]:
        """Return the peers heard from, waiting up to ``timeout`` seconds for a first one."""

    def announce(self) -> None:
        """Announce the heads (and the newest commit) on the topic soon, without waiting."""

    def close(self) -> None:
        """Stop, bounded."""


class StateSink(Protocol):
    """Where a database linked to an IPFS node writes its state tree (e.g. the node link's uploads).

    It stands in for the local block store as the tree's backing store (nodes written through it are
    also journaled for upload), and is told of each commit signed, under the database's lock: it must
    not wait on the network.
    """

    def get(self, cid: CID) -> bytes:
        """Return a block from the local store (``BlockNotFoundError`` if absent)."""

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks locally and journal them for upload."""

    def publish(self, commit: Commit, base: CID | None) -> None:
        """Journal ``commit`` for upload and keep its tree on the node.

        ``base`` is the root the tree was opened from in this session (None: built here, so every node
        went through :meth:`put_many`): nodes under it that the node may lack are uploaded too.
        """


class OpenReport(Frozen):
    """What opening a database by address through an IPFS node reached (:attr:`Database.reached`)."""

    __match_args__ = ("entries", "peers", "synced", "waited")
    __slots__ = __match_args__
    entries: int
    """Entries the log held when the open returned."""
    peers: int
    """Peers heard from on the database's topic during the open."""
    synced: bool
    """Whether the log held every head those peers announced when the open returned (else the rest
    keeps coming in the background: see ``replication_status()``)."""
    waited: float
    """Seconds the open waited for peers."""

    def __init__(self, entries: int, peers: int, synced: bool, waited: float) -> None:
        frozen_init(self, entries, peers, synced, waited)


class DatabaseContext(Frozen):
    """What a database is given by the facade that opens it: narrow objects, no back-reference.

    Attributes:
        lock: the directory's re-entrant lock (shared with its storage and the store).
        blocks: the directory's block store (committed entries are read from it).
        directory: where the database may keep derived files (e.g. a table's SQLite view).
        save_checkpoint: stores a checkpoint ``(admitted, state)`` of this database's index.
        admitted_since: the entries admitted as number ``n`` or later, in admission order.
        on_close: called once the database closed (the facade forgets it).
        on_drop: called once the database was dropped (the facade deletes its log).
        remote: where blocks this directory lacks come from by default (the IPFS node), if anywhere.
        checkpoint_every: save a checkpoint after this many new entries (or half the log, if more).
        checkpointed: how many admitted entries the saved checkpoint covers.
        state_sink: where the state tree and commits go besides the local store (an IPFS node's
            uploads), if anywhere.
    """

    __match_args__ = (
        "lock",
        "blocks",
        "directory",
        "save_checkpoint",
        "admitted_since",
        "on_close",
        "on_drop",
        "remote",
        "checkpoint_every",
        "checkpointed",
        "state_sink",
    )
    __slots__ = __match_args__
    lock: AbstractContextManager[Any]
    blocks: BlockStore
    directory: Path
    save_checkpoint: Callable[[int, IPLDKind], None]
    admitted_since: Callable[[int], Sequence[Entry]]
    on_close: Callable[[Database[Any]], None]
    on_drop: Callable[[Database[Any]], None]
    remote: BlockStore | None
    checkpoint_every: int
    checkpointed: int
    state_sink: StateSink | None

    def __init__(
        self,
        lock: AbstractContextManager[Any],
        blocks: BlockStore,
        directory: Path,
        save_checkpoint: Callable[[int, IPLDKind], None],
        admitted_since: Callable[[int], Sequence[Entry]],
        on_close: Callable[[Database[Any]], None],
        on_drop: Callable[[Database[Any]], None],
        remote: BlockStore | None = None,
        checkpoint_every: int = 10_000,
        checkpointed: int = 0,
        state_sink: StateSink | None = None,
    ) -> None:
        frozen_init(
            self, lock, blocks, directory, save_checkpoint, admitted_since, on_close, on_drop, remote,
            checkpoint_every, checkpointed, state_sink,
        )  # fmt: skip


class _StateParts:
    """A database's verifiable state: its tree's nodes and index, the last own and heard commits."""

    __slots__ = ("base", "heard", "index", "last_commit", "nodes")

    def __init__(self, nodes: BufferedNodes) -> None:
        self.nodes = nodes
        self.last_commit: Commit | None = None
        self.index: StateIndex
        self.base: CID | None = None
        self.heard: LatestCommits


class Database(Generic[S]):
    """An open database: its store (reads and writes), its address, joins and CAR export/import.

    Not created directly: :meth:`orbit.OrbitDB.open` returns the subclass for the store type.
    Subclasses name their store class (``STORE``) and may adapt the manifest and the store's options
    (:meth:`manifest_meta`, :meth:`store_options`); :func:`orbit.databases.register` makes a subclass
    the class of its store type.
    """

    STORE: ClassVar[type[Store]]
    """The store class this database type wraps (its ``TYPE`` is the manifest's type)."""

    def __init__(self, manifest: Manifest, store: S, context: DatabaseContext) -> None:
        self.manifest = manifest
        self.store: S = store
        """The store itself (not guarded by the lock: prefer the database's own methods)."""
        self._context = context
        self.lock = context.lock
        """The directory's re-entrant lock: hold it to read :attr:`log` or :attr:`store` directly."""
        self._replicator: ReplicatorHandle | None = None
        self._reached: OpenReport | None = None
        self._closed = False
        self._saved_at = context.checkpointed  # how many admitted entries the saved checkpoint covers
        store.subscribe(self._maybe_save_checkpoint)
        self._verifiable: _StateParts | None = None  # made on first use (see _parts)
        self.commit_every: int | None = None
        """Sign a commit after this many new entries (None: only at checkpoints and when asked)."""
        store.subscribe(self._follow_state)

    @classmethod
    def manifest_meta(cls, options: dict[str, Any], meta: IPLDKind) -> IPLDKind:
        """Return the manifest's ``meta`` for a database created with ``options`` (default: ``meta``)."""
        return meta

    @classmethod
    def store_options(cls, manifest: Manifest, options: dict[str, Any]) -> dict[str, Any]:
        """Return the store's constructor options for ``manifest`` (default: ``options`` as given)."""
        return options

    @property
    def reached(self) -> OpenReport | None:
        """What the open reached, when it opened by address through an IPFS node (else None)."""
        return self._reached

    def note_reached(self, report: OpenReport) -> None:
        """Record what the open reached (called once, by the facade that opened the database)."""
        self._reached = report

    @property
    def replicator(self) -> ReplicatorHandle | None:
        """The database's replicator, when its OrbitDB replicates through an IPFS node."""
        return self._replicator

    def start_replication(self, start: Callable[[Self], ReplicatorHandle]) -> ReplicatorHandle:
        """Start keeping this database in sync: ``start(self)`` returns the running replicator.

        Called once, by the facade that opened the database; :meth:`close` stops the replicator.

        Raises:
            DatabaseClosedError: the database is closed.
            ReplicationError: the database is replicated already.
        """
        with self.lock:
            self.check_open()
            if self._replicator is not None:
                raise ReplicationError(f"{self.address} is replicated already")
        replicator = start(self)  # outside the lock: it may fetch and admit
        with self.lock:
            self._replicator = replicator
        return replicator

    # ------------------------------------------------------------------ identity

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest CID>``."""
        return self.manifest.address

    @property
    def name(self) -> str:
        """The database's name."""
        return self.manifest.name

    @property
    def store_type(self) -> str:
        """The store type (``"eventlog"``, ``"keyvalue"``, ...)."""
        return self.manifest.type

    @property
    def closed(self) -> bool:
        """True once the database (or its OrbitDB) was closed."""
        return self._closed

    @property
    def log(self) -> Log:
        """The database's log (not guarded by the lock: read it from one thread, or under ``orbit.lock``)."""
        return self.store.log

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, {len(self.store.log)} entries)"

    def check_open(self) -> None:
        """Raise :class:`~orbit.errors.DatabaseClosedError` if the database is closed."""
        if self._closed:
            raise DatabaseClosedError(f"database {self.address} is closed")

    # ------------------------------------------------------------------ log

    @locked
    def heads(self) -> list[CID]:
        """Return the CIDs of the log's heads, in log order."""
        return self.store.log.head_cids

    @locked
    def entry_count(self) -> int:
        """Return how many entries the log holds."""
        return len(self.store.log)

    @locked
    def holds(self, heads: Iterable[CID]) -> bool:
        """Return whether the log holds every one of ``heads`` (admitted, not merely pending).

        An entry under the frontier of a log opened from a commit or compacted counts as held: its
        operation is part of the state the log started from.
        """
        log = self.store.log
        start = log.frontier
        return all(h in log or (start is not None and start.is_under(h)) for h in heads)

    @locked
    def subscribe(self, callback: UpdateCallback) -> Callable[[], None]:
        """Call ``callback`` with an :class:`~stores.Update` after each batch of applied entries.

        Callbacks run in the writing thread, under the database's lock.

        Returns:
            A function that unsubscribes ``callback``.
        """
        return self.store.subscribe(callback)

    def join_heads(
        self, heads: Iterable[CID], *, source: BlockStore | None = None, progress: Progress | None = None
    ) -> list[Entry]:
        """Fetch, verify and admit what is reachable from ``heads``, reading blocks from ``source``.

        Blocks are fetched and verified without holding the database's lock (so a slow source does not
        stall readers and writers); the verified entries are then admitted under it.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: the database is closed.
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: a block is missing; what was complete was admitted.
            BlockStoreError: the local store failed; nothing was admitted.
        """
        self.check_open()
        log = self.store.log
        if source is None:
            source = self._context.remote  # what this directory lacks comes from the IPFS node
        blocks = self._context.blocks
        stores: list[BlockStore] = [blocks] if source is None else [blocks, source]
        fetched = run_flow(log.fetch(list(heads), progress=progress), *stores)  # pauses the GC to verify
        return self.store.admit(fetched)

    def sync_from(self, other: Database[Any]) -> list[Entry]:
        """Fetch, verify and merge everything ``other`` (another OrbitDB's copy) has that this lacks.

        ``other``'s heads are read under its lock (so their blocks are committed), and its blocks are
        read through its store: the two databases' locks are never held together.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: either database is closed.
            DatabaseError: ``other`` is another database (another address).
            EntryRejectedError: an entry from ``other`` failed verification; nothing was admitted.
        """
        self.check_open()
        if other.address != self.address:
            raise DatabaseError(f"cannot sync {self.address} from another database {other.address}")
        heads = other.heads()
        return self.join_heads(heads, source=other._context.blocks)

    def export_car(
        self, path: str | os.PathLike[str], *, progress: Progress | None = None, state: bool = False
    ) -> int:
        """Write the manifest and every entry to a CARv1 file whose roots are the log's heads.

        The entries are those held when the export began (it reads under the lock).

        Args:
            path: the file to write (replaced once complete).
            progress: called with the number of entries written so far, after each one.
            state: also write a signed commit of the current state (as the last root) and the blocks
                of its trees, so a reader can open the state from the file alone
                (:meth:`orbit.state.Snapshot.from_car`).

        Returns:
            The number of blocks written.

        Raises:
            DatabaseClosedError: the database is closed.
            BlockStoreError: the file cannot be written.
        """
        with self.lock:  # streamed: one entry in memory at a time, written under the lock
            self.check_open()
            log = self.store.log
            entries: Iterator[tuple[CID, bytes]] = ((e.cid, e.block) for e in log)
            if progress is not None:
                entries = _reporting(entries, progress)
            blocks = itertools.chain([(self.manifest.cid, self.manifest.block)], entries)
            roots = log.head_cids
            if state:
                commit = self._current_commit()
                roots = [*roots, commit.cid]
                blocks = itertools.chain(blocks, [(commit.cid, commit.block)], self._state.blocks())
            try:
                return write_car(path, roots, blocks)
            except CarError as e:
                raise BlockStoreError(f"cannot write the CAR file: {e}", path) from e

    def import_car(
        self, path: str | os.PathLike[str] | bytes, *, progress: Progress | None = None
    ) -> list[Entry]:
        """Merge the entries of a CAR file (untrusted: every entry is verified by the log's join).

        Args:
            path: the file, or its contents as bytes.
            progress: called with the number of entries verified so far.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: the database is closed.
            CarError: the file is not a well-formed CARv1 file.
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: the file lacks blocks its heads need; what was complete was admitted.
            BlockStoreError: the file cannot be read.
        """
        self.check_open()
        try:
            data = path if isinstance(path, bytes) else Path(path).read_bytes()
        except OSError as e:
            raise BlockStoreError(f"cannot read the CAR file: {e}", path) from e
        roots, blocks = read_car(data)
        source = MemoryBlockStore()
        source.put_many(blocks.items())
        heads = [r for r in roots if r != self.manifest.cid and not self._is_commit(blocks.get(r))]
        return self.join_heads(heads, source=source, progress=progress)

    def _is_commit(self, block: bytes | None) -> bool:
        """Whether a CAR root's block is a commit of this database by a writer (not a head to join)."""
        from orbit.state import Commit

        if block is None:
            return False
        writers: list[bytes | str] = ["*"] if self.manifest.write == "*" else list(self.manifest.write)
        try:
            Commit.from_block(block, writers=writers, address=self.address)
        except CommitError:
            return False
        return True

    # ------------------------------------------------------------------ replication

    def _replicating(self) -> ReplicatorHandle:
        self.check_open()
        if self._replicator is None:
            raise ReplicationError(f"{self.address} is not replicated (open it in an OrbitDB with ipfs=...)")
        return self._replicator

    def wait_for(self, heads: Iterable[CID | str] | CID | str, timeout: float) -> None:
        """Return as soon as this replica holds every one of ``heads`` (e.g. another replica's heads).

        Heads may be CIDs or their text (``bafy…``, as printed by another process); one head may be
        given alone.

        Raises:
            TypeError: a head is neither a CID nor a str (bytes, a number, an entry...).
            ReplicationTimeoutError: not within ``timeout`` seconds.
            ReplicationError: the database is not replicated.
            DatabaseError: a head's text is not the text of an entry's CID.
            DatabaseClosedError: the database is closed.
        """
        wanted = [_head(heads)] if isinstance(heads, str | CID) else [_head(h) for h in heads]
        self._replicating().wait_for(wanted, timeout)

    def wait_synced(self, timeout: float, peer: str | None = None) -> None:
        """Return once this replica holds the last heads announced by ``peer`` (or every peer seen).

        Raises:
            ReplicationTimeoutError: not within ``timeout`` seconds, or no peer was heard from.
            ReplicationError: the database is not replicated.
            DatabaseClosedError: the database is closed.
        """
        self._replicating().wait_synced(timeout, peer)

    def replication_status(self) -> Any:
        """Return the replicator's peers, their heads, pending and missing entries, and counters.

        Returns:
            A :class:`~orbit.replication.ReplicationStatus`.

        Raises:
            ReplicationError: the database is not replicated.
        """
        return self._replicating().status()

    # ------------------------------------------------------------------ verifiable state

    def _parts(self) -> _StateParts:
        """The verifiable state's parts, made on first use: a command that only reads never loads them.

        The tree starts from the commit saved with the last checkpoint if it is of the log's current
        state, else it is built from the index when first used.
        """
        parts = self._verifiable
        if parts is None:
            with self.lock:
                parts = self._verifiable
                if parts is None:
                    from orbit.state import BufferedNodes, LatestCommits, StateIndex

                    sink = self._context.state_sink  # beside the checkpoint (and journaled for a node)
                    nodes = BufferedNodes(self._context.blocks if sink is None else sink)
                    parts = _StateParts(nodes)
                    parts.last_commit = self._saved_commit()
                    start = None if parts.last_commit is None else parts.last_commit.root
                    parts.index = StateIndex(self.store, nodes, start)
                    parts.base = start  # nodes under it were written before this session
                    write = self.manifest.write
                    writers: list[bytes | str] = ["*"] if write == "*" else list(write)
                    parts.heard = LatestCommits(self.manifest.address, writers)
                    self._verifiable = parts  # whole, or not at all: a failure here is retried next use
        return parts

    @property
    def _state(self) -> StateIndex:
        return self._parts().index

    @property
    def _state_nodes(self) -> BufferedNodes:
        return self._parts().nodes

    @property
    def _state_base(self) -> CID | None:
        return self._parts().base

    @_state_base.setter
    def _state_base(self, root: CID | None) -> None:
        self._parts().base = root

    @property
    def _last_commit(self) -> Commit | None:
        return self._parts().last_commit

    @_last_commit.setter
    def _last_commit(self, commit: Commit | None) -> None:
        self._parts().last_commit = commit

    @property
    def _heard(self) -> LatestCommits:
        return self._parts().heard

    def _follow_state(self, update: Update) -> None:
        if self._verifiable is None and self.commit_every is None:
            return  # not made yet: the tree is built from the index when first used
        self._state.apply(update.entries)
        every = self.commit_every
        if every is not None:  # the cadence: runs in the writing thread, under the lock
            since = self._last_commit.count if self._last_commit is not None else 0
            if self.store.log.count - since >= every:
                self.commit()

    def _state_path(self) -> Path:
        return self._context.directory / "state" / f"{self.manifest.cid.encode()}.commit"

    def _saved_commit(self) -> Commit | None:
        """The commit this replica saved with its last checkpoint, if it is of the log's current state."""
        from orbit.state import Commit

        try:
            block = self._state_path().read_bytes()
            log = self.store.log
            commit = Commit.from_block(block, writers=[log.identity.public_key], address=self.address)
        except (OSError, CommitError):
            return None  # absent, unreadable or not ours: the tree is rebuilt when first needed
        if commit.heads != tuple(sorted(set(log.head_cids))) or commit.count != log.count:
            return None  # taken at other heads (the checkpoint lagged): rebuilt when first needed
        return commit

    def _save_state(self) -> None:
        """Write the state tree's new nodes to the block store, then a commit of its root beside them."""
        if not self._state.built:
            return
        log = self.store.log
        try:
            root = self._state.root()
            self._state_nodes.persist(root)
            commit = self._last_commit
            if commit is None or commit.root != root or commit.count != log.count:
                commit = self.commit()
            path = self._state_path()
            path.parent.mkdir(exist_ok=True)
            write_atomically(path, commit.block)
        except (OSError, BlockStoreError) as e:  # derived data: the next open rebuilds the tree
            _log.warning("state tree of %s not saved: %s", self.address, e)

    def _state_options(self) -> dict[str, Any]:
        """Store options that change the state (see :meth:`verify_commit`; the documents key field)."""
        return {}

    @locked
    def state_root(self) -> CID:
        """Return the root CID of the database's state tree: the same for the same state anywhere.

        The tree is built from the index on first use, then kept in step with each admitted entry.

        Raises:
            DatabaseClosedError: the database is closed.
            StateError: the store type has no state tree (tables, for now).
        """
        return self._state.root()

    @locked
    def commit(self) -> Commit:
        """Sign a commit of the current state: ``{address, heads, root, count, prev}`` with this identity.

        Raises:
            DatabaseClosedError: the database is closed.
            StateError: the store type has no state tree.
        """
        from orbit.state import Commit

        log = self.store.log
        prev = None if self._last_commit is None else self._last_commit.cid
        root = self._state.root()
        indexes = self._state.index_roots()
        winners = self._state.winners_root()
        commit = Commit.create(
            log.identity, self.address, log.head_cids, root, log.count, prev, indexes, winners
        )
        self._last_commit = commit
        more = [r for r in (winners, *indexes.values()) if r is not None]
        self._state_nodes.persist(root, *more)  # a snapshot open reads the trees from here
        self._publish_commit(commit)
        return commit

    def _publish_commit(self, commit: Commit) -> None:
        """With an IPFS node: put the tree and the commit on it (journaled), and announce the commit."""
        sink = self._context.state_sink
        if sink is not None:
            try:  # local writes and journal records only: the uploading thread sends them
                self._state_nodes.persist(commit.root)
                sink.publish(commit, self._state_base)
                self._state_base = None  # what was under it is on the node now (or journaled)
            except (OSError, OrbitError) as e:  # derived data: the next commit publishes the tree again
                _log.warning("commit of %s not put on the node: %s", self.address, e)
        if self._replicator is not None:
            self._replicator.announce()

    @locked
    def latest_commit(self) -> Commit | None:
        """Return this replica's newest signed commit (the one its announcements carry), if any."""
        return self._last_commit

    @locked
    def commits(self) -> list[Commit]:
        """Return the newest commit of each writer known here, ordered by key: peers' and this replica's.

        Peers' commits come with their announcements, each checked (signed by a key of the write list,
        about this database) and kept if it counts more entries than its writer's last one; at most one
        per writer (see :class:`~orbit.state.LatestCommits`). They are writers' claims, never state:
        give their blocks to a :class:`~orbit.state.Snapshot` (which trusts ``writer`` or ``quorum:k``),
        or check one with :meth:`verify_commit`.
        """
        from orbit.state import LatestCommits

        record = LatestCommits(self._heard.address, self._heard.writers)
        for commit in self._heard.commits():
            record.keep(commit)
        if self._last_commit is not None:
            record.keep(self._last_commit)
        return record.commits()

    @locked
    def note_commit(self, block: bytes, pack: CID | None = None) -> Commit:
        """Check a commit from anywhere and record it as its writer's newest if it counts more entries.

        ``pack`` is the state pack a peer named with it (an untrusted hint, see :meth:`state_pack_of`).

        Returns:
            The checked commit (recorded or not).

        Raises:
            DatabaseClosedError: the database is closed.
            CommitError: it is malformed, forged, not signed by a writer, or of another database;
                nothing is recorded.
        """
        return self._heard.note(block, pack)

    @locked
    def state_pack_of(self, commit: Commit) -> CID | None:
        """Return the state pack a peer named with ``commit`` (recorded in :meth:`commits`), if any.

        It is a transport hint, unsigned: ``orbit.open(address, snapshot=commit, trust=..., pack=cid)``
        reads it with one ``cat`` and checks every block it uses against the commit's roots.
        """
        return self._heard.pack_of(commit)

    def _current_commit(self) -> Commit:
        """The last commit if it is of the current state, else a new one (under the lock)."""
        commit = self._last_commit
        if (
            commit is None
            or commit.root != self._state.root()
            or commit.count != self.store.log.count
            or dict(commit.indexes) != self._state.index_roots()
            or commit.winners != self._state.winners_root()
        ):
            commit = self.commit()
        return commit

    @locked
    def prove(self, key: object) -> ReadProof:
        """Read ``key`` with a proof against a signed commit of the current state.

        ``key`` is a str for keyvalue and documents, a writer's public key for a counter, an event's CID
        for an eventlog. A client checks the answer with :func:`orbit.state.verify` (or
        :meth:`~orbit.state.ReadProof.verify`) and the write list alone.

        Raises:
            DatabaseClosedError: the database is closed.
            StateError: the key is not of the store's kind, or the store type has no state tree.
        """
        from orbit.state import ReadProof

        tree_key, present, value = self._state.read(key)
        commit = self._current_commit()
        return ReadProof(tree_key, present, value, self._state.prove(tree_key), commit.block)

    @locked
    def prove_range(self, lo: object = None, hi: object = None) -> RangeProof:
        """Read every item with ``lo <= key < hi``, with a proof that they are all, against a commit.

        Bounds are str for keyvalue and documents, tree keys (bytes) for the other types; None is
        unbounded. The client checks the answer with :meth:`~orbit.state.RangeProof.verify`.

        Raises:
            DatabaseClosedError: the database is closed.
            StateError: a bound is of the wrong kind, or the store type has no state tree.
        """
        from orbit.state import RangeProof

        lo_key, hi_key, items, proof = self._state.range(lo, hi)
        commit = self._current_commit()
        return RangeProof(lo_key, hi_key, tuple(items), proof, commit.block)

    def verify_commit(self, commit: Commit | bytes) -> Commit:
        """Check a commit of this database: signed by a writer, and its root is the state at its heads.

        The state is recomputed from the entries reachable from the heads, each verified as a join does.
        The entries are read from this directory (and the IPFS node, if any); nothing is admitted to
        this database.

        Returns:
            The checked commit.

        Raises:
            DatabaseClosedError: the database is closed.
            CommitError: the commit is malformed, forged, by a non-writer, about another database, or
                its count or root is not the state at its heads.
            EntryRejectedError: an entry reachable from its heads failed verification.
            BlockNotFoundError: an entry reachable from its heads is not to be had.
        """
        from orbit.state import Commit, StateIndex

        self.check_open()
        block = commit.block if isinstance(commit, Commit) else commit
        writers: list[bytes | str] = ["*"] if self.manifest.write == "*" else list(self.manifest.write)
        checked = Commit.from_block(block, writers=writers, address=self.address)
        with self.lock:
            own = self.store.log
            log = Log(own.identity, MemoryBlockStore(), log_id=own.id, access=own.access)
        stores: list[BlockStore] = [self._context.blocks]
        if self._context.remote is not None:
            stores.append(self._context.remote)
        log.admit(run_flow(log.fetch(list(checked.heads)), *stores))
        replay = StateIndex(self.STORE(log, **self.store_options(self.manifest, self._state_options())))
        root = replay.root()
        if len(log) != checked.count:
            raise CommitError(
                f"{len(log)} entries at its heads, the commit says {checked.count}", checked.cid
            )
        if root != checked.root:
            raise CommitError(f"the state at its heads has root {root}, not {checked.root}", checked.cid)
        if checked.indexes:
            indexes = replay.index_roots()
            for field, index_root in checked.indexes:
                if indexes.get(field) != index_root:
                    raise CommitError(f"the index on {field!r} at its heads is not {index_root}", checked.cid)
        if checked.winners is not None and replay.winners_root() != checked.winners:
            raise CommitError(f"the winners at its heads are not {checked.winners}", checked.cid)
        return checked

    # ------------------------------------------------------------------ compaction

    compactor: Compactor | None = None
    """The stored log's side of :meth:`compact` (set by the facade that opened the database)."""

    @property
    def compacted(self) -> Compaction | None:
        """Where the log starts since it was compacted, and what that gave up (None: never compacted).

        Raises:
            StorageCorruptError: the stored record is malformed.
        """
        from orbit.databases.compaction import compaction_of

        with self.lock:
            return compaction_of(self)

    def compact(
        self, commit: Commit | bytes | Sequence[Commit | bytes], *, trust: str = "replay"
    ) -> Compaction:
        """Drop the history under a trusted commit, keeping what merging later entries needs.

        The log keeps the commit's heads and every entry not under them; the entries under them are
        deleted here, and their CIDs and clock times kept, so entries concurrent with the commit still
        merge as on a full replica, without the network. The state, its root and the log's count do
        not change; :attr:`compacted` says what can no longer be proven. The rewrite is one storage
        transaction (the write-behind journal included); when it fails, nothing changed.

        Args:
            commit: a commit of this database (a :class:`~orbit.state.Commit` or its block), or several
                for ``quorum:k``.
            trust: ``"replay"`` (the default: signed by a writer, and its root recomputed from every
                entry under its heads, :meth:`verify_commit`), ``"writer"`` (signed by a writer of the
                write list) or ``"quorum:k"`` (``k`` writers signed the same root).

        Returns:
            What the log dropped and keeps.

        Raises:
            DatabaseClosedError: the database is closed.
            CommitError: no commit meets ``trust``; its heads are not all here, its count is not the
                entries under them here, or it is not at or after where the log starts.
            StateError: ``trust`` is unknown, or the store type has no state to start from (eventlog,
                table).
            DatabaseError: the log was opened from a snapshot (what lies under it is not known here).
            TreeNodeError: a block of the commit's trees is not what the commit names.
            BlockNotFoundError: a block of the commit's trees (or, under ``replay``, an entry) is not
                to be had.
            BlockStoreError: the storage transaction failed: nothing changed.
        """
        from orbit.databases.compaction import compact

        self.check_open()
        blocks, remote = self._context.blocks, self._context.remote
        source = blocks if remote is None else ChainedBlockStore(blocks, remote)
        options = self.store_options(self.manifest, self._state_options())
        done = compact(self, commit, trust=trust, source=source, store=self.STORE, options=options)
        with self.lock:
            self._saved_at = done.kept  # the checkpoint written with it counts the entries kept
        return done

    # ------------------------------------------------------------------ checkpoints and closing

    def _maybe_save_checkpoint(self, update: object) -> None:
        # Runs after the entries were committed and applied: a failure here must not turn a durable
        # write into an error, so it is logged, and the next threshold (or close) tries again.
        admitted = len(self.store.log)  # a stored log only grows: its length counts its admissions
        if admitted - self._saved_at >= max(self._context.checkpoint_every, admitted // 2):
            try:
                self.save_checkpoint()
            except BlockStoreError as e:
                _log.warning("checkpoint of %s not saved: %s", self.address, e)

    @locked
    def save_checkpoint(self) -> None:
        """Store a checkpoint of the index at the log's current state (done by :meth:`close`).

        Raises:
            DatabaseClosedError: the database is closed.
            BlockStoreError: the write failed; the previous checkpoint stays.
        """
        admitted = len(self.store.log)
        self._context.save_checkpoint(admitted, self.store.checkpoint())
        self._saved_at = admitted
        self._save_state()

    def close(self) -> None:
        """Save a checkpoint and close the database. Idempotent.

        Raises:
            BlockStoreError: the checkpoint could not be written (the database is closed anyway; the
                next open catches up from the previous checkpoint).
        """
        with self.lock:
            if self._closed:
                return
            replicator, self._replicator = self._replicator, None
        if replicator is not None:  # outside the lock: its threads may be waiting for it
            replicator.close()
        with self.lock:
            if self._closed:
                return
            try:
                if len(self.store.log) != self._saved_at:
                    self.save_checkpoint()
            finally:
                self._closed = True
                self.store.close()
                self._context.on_close(self)

    def drop(self) -> None:
        """Close without saving a checkpoint and delete the database's log, index and derived files.

        The data stays wherever else it is (other replicas, an IPFS node); opening the address again
        starts from nothing here.

        Raises:
            BlockStoreError: the store cannot be written.
        """
        with self.lock:
            replicator, self._replicator = self._replicator, None
        if replicator is not None:
            replicator.close()
        with self.lock:
            self._closed = True
            self.store.close()
            try:
                self._state_path().unlink(missing_ok=True)
            except OSError as e:
                _log.warning("state commit of %s not deleted: %s", self.address, e)
            try:
                self._discard_derived()
            finally:  # the log goes even if a derived file could not be deleted (it is rebuilt anyway)
                self._context.on_drop(self)

    def _discard_derived(self) -> None:
        """Delete what the database derived from its log beside the store (nothing, by default)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _head(head: object) -> CID:
    """A head given as a CID or as its text, checked to name an entry (CIDv1 dag-cbor sha2-256).

    Raises:
        TypeError: it is neither a CID nor a str.
        DatabaseError: it does not name an entry.
    """
    if not isinstance(head, str | CID):
        raise TypeError(f"a head is a CID or its text, not {type(head).__name__}")
    if isinstance(head, str):
        try:
            head = CID.parse(head)
        except CodecError as e:
            raise DatabaseError(f"not a CID: {head[:80]!r}") from e
    if type(head) is not CID or not head.is_entry_cid:
        raise DatabaseError(f"not the CID of an entry: {str(head)[:80]!r}")
    return head
