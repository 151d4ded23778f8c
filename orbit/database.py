"""Open databases: a typed, thread-safe facade over a store, its log and its storage.

:meth:`orbit.OrbitDB.open` returns one of :class:`KeyValueDatabase`, :class:`EventLogDatabase`,
:class:`CounterDatabase` or :class:`DocumentsDatabase` (type checkers see which, from ``type=``). Each
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

After :meth:`Database.close` (or the OrbitDB's), every read and write raises
:class:`~orbit.errors.DatabaseClosedError`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar

from ipfs_log.blockstore import BlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.log import Log, Progress, gc_paused, run_flow
from orbit.address import Manifest
from orbit.car import read_car, write_car
from orbit.errors import BlockStoreError, CarError, DatabaseClosedError, DatabaseError, ReplicationError
from stores.base import Store, UpdateCallback
from stores.counter import Counter, CounterBatch
from stores.documents import Document, Documents, DocumentsBatch, DocumentsOptions
from stores.eventlog import Event, EventLog, EventLogBatch
from stores.keyvalue import KeyValue, KeyValueBatch

if TYPE_CHECKING:
    from orbit.db import OrbitDB
    from orbit.replicator import ReplicationStatus, Replicator

__all__ = [
    "DATABASE_TYPES",
    "CounterDatabase",
    "Database",
    "DocumentsDatabase",
    "EventLogDatabase",
    "KeyValueDatabase",
]

_log = logging.getLogger("orbit")
S = TypeVar("S", bound=Store)
_D = TypeVar("_D", bound="Database[Any]")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(method: Callable[Concatenate[_D, _P], _R]) -> Callable[Concatenate[_D, _P], _R]:
    """Run a database method under the directory's lock, after checking the database is open."""

    @functools.wraps(method)
    def run(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            self._check_open()
            return method(self, *args, **kwargs)

    return run


class Database(Generic[S]):
    """An open database: its store (reads and writes), its address, joins and CAR export/import.

    Not created directly: :meth:`orbit.OrbitDB.open` returns the subclass for the store type.
    """

    def __init__(
        self, orbit: OrbitDB, manifest: Manifest, store: S, lognum: int, checkpointed: int = 0
    ) -> None:
        self.orbit = orbit
        self.manifest = manifest
        self.store: S = store
        """The store itself (not guarded by the lock: prefer the database's own methods)."""
        self._lognum = lognum
        self._lock = orbit.lock
        self.replicator: Replicator | None = None
        """The database's replicator, when its OrbitDB replicates through an IPFS node."""
        self._closed = False
        self._saved_at = checkpointed  # how many admitted entries the saved checkpoint covers
        store.guard = self._lock
        store.closed_error = DatabaseClosedError
        store.subscribe(self._maybe_save_checkpoint)

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

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"database {self.address} is closed")

    # ------------------------------------------------------------------ log

    @_locked
    def heads(self) -> list[CID]:
        """Return the CIDs of the log's heads, in log order."""
        return self.store.log.head_cids

    @_locked
    def entry_count(self) -> int:
        """Return how many entries the log holds."""
        return len(self.store.log)

    @_locked
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
        self._check_open()
        log = self.store.log
        if source is None and self.orbit.ipfs is not None:
            source = self.orbit.ipfs.store  # what this directory lacks comes from the IPFS node
        stores: list[BlockStore] = [self.orbit.blocks] if source is None else [self.orbit.blocks, source]
        with gc_paused():  # decoding builds many containers, none in a cycle
            fetched = run_flow(log.fetch(list(heads), progress=progress), *stores)
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
        self._check_open()
        if other.address != self.address:
            raise DatabaseError(f"cannot sync {self.address} from another database {other.address}")
        heads = other.heads()
        return self.join_heads(heads, source=other.orbit.blocks)

    def export_car(self, path: str | os.PathLike[str]) -> int:
        """Write the manifest and every entry to a CARv1 file whose roots are the log's heads.

        The entries are those held when the export began (it reads under the lock).

        Returns:
            The number of blocks written.

        Raises:
            DatabaseClosedError: the database is closed.
            BlockStoreError: the file cannot be written.
        """
        with self._lock:  # streamed: one entry in memory at a time, written under the lock
            self._check_open()
            log = self.store.log
            blocks = itertools.chain(
                [(self.manifest.cid, self.manifest.block)], ((e.cid, e.block) for e in log)
            )
            try:
                return write_car(path, log.head_cids, blocks)
            except CarError as e:
                raise BlockStoreError(f"cannot write the CAR file: {e}", path) from e

    def import_car(self, path: str | os.PathLike[str] | bytes) -> list[Entry]:
        """Merge the entries of a CAR file (untrusted: every entry is verified by the log's join).

        Args:
            path: the file, or its contents as bytes.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: the database is closed.
            CarError: the file is not a well-formed CARv1 file.
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: the file lacks blocks its heads need; what was complete was admitted.
            BlockStoreError: the file cannot be read.
        """
        self._check_open()
        try:
            data = path if isinstance(path, bytes) else Path(path).read_bytes()
        except OSError as e:
            raise BlockStoreError(f"cannot read the CAR file: {e}", path) from e
        roots, blocks = read_car(data)
        source = MemoryBlockStore()
        source.put_many(blocks.items())
        heads = [r for r in roots if r != self.manifest.cid]
        return self.join_heads(heads, source=source)

    # ------------------------------------------------------------------ replication

    def _replicator(self) -> Replicator:
        self._check_open()
        if self.replicator is None:
            raise ReplicationError(f"{self.address} is not replicated (open it in an OrbitDB with ipfs=...)")
        return self.replicator

    def wait_for(self, heads: Iterable[CID], timeout: float) -> None:
        """Return as soon as this replica holds every one of ``heads`` (e.g. another replica's heads).

        Raises:
            ReplicationTimeoutError: not within ``timeout`` seconds.
            ReplicationError: the database is not replicated.
            DatabaseClosedError: the database is closed.
        """
        self._replicator().wait_for(heads, timeout)

    def wait_synced(self, timeout: float, peer: str | None = None) -> None:
        """Return once this replica holds the last heads announced by ``peer`` (or every peer seen).

        Raises:
            ReplicationTimeoutError: not within ``timeout`` seconds, or no peer was heard from.
            ReplicationError: the database is not replicated.
            DatabaseClosedError: the database is closed.
        """
        self._replicator().wait_synced(timeout, peer)

    def replication_status(self) -> ReplicationStatus:
        """Return the replicator's peers, their heads, pending and missing entries, and counters.

        Raises:
            ReplicationError: the database is not replicated.
        """
        return self._replicator().status()

    # ------------------------------------------------------------------ checkpoints and closing

    def _maybe_save_checkpoint(self, update: object) -> None:
        # Runs after the entries were committed and applied: a failure here must not turn a durable
        # write into an error, so it is logged, and the next threshold (or close) tries again.
        admitted = len(self.store.log)  # a stored log only grows: its length counts its admissions
        if admitted - self._saved_at >= max(self.orbit.checkpoint_every, admitted // 2):
            try:
                self.save_checkpoint()
            except BlockStoreError as e:
                _log.warning("checkpoint of %s not saved: %s", self.address, e)

    @_locked
    def save_checkpoint(self) -> None:
        """Store a checkpoint of the index at the log's current state (done by :meth:`close`).

        Raises:
            DatabaseClosedError: the database is closed.
            BlockStoreError: the write failed; the previous checkpoint stays.
        """
        admitted = len(self.store.log)
        self.orbit._checkpoints.save(self._lognum, self.address, admitted, self.store.checkpoint())
        self._saved_at = admitted

    def close(self) -> None:
        """Save a checkpoint and close the database. Idempotent.

        Raises:
            BlockStoreError: the checkpoint could not be written (the database is closed anyway; the
                next open catches up from the previous checkpoint).
        """
        with self._lock:
            if self._closed:
                return
            replicator, self.replicator = self.replicator, None
        if replicator is not None:  # outside the lock: its threads may be waiting for it
            replicator.close()
        with self._lock:
            if self._closed:
                return
            try:
                if not self.orbit.closed and len(self.store.log) != self._saved_at:
                    self.save_checkpoint()
            finally:
                self._closed = True
                self.store.close()
                self.orbit._forget(self)

    def _drop(self) -> None:
        """Close without saving a checkpoint (the database is being dropped)."""
        with self._lock:
            self._closed = True
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class KeyValueDatabase(Database[KeyValue]):
    """A keyvalue database: a map of string keys to IPLD values, last writer wins per key."""

    @_locked
    def get(self, key: str, default: IPLDKind = None) -> IPLDKind:
        """Return the value under ``key``, or ``default``."""
        return self.store.get(key, default)

    @_locked
    def __getitem__(self, key: str) -> IPLDKind:
        """Return the value under ``key``; raise :class:`~stores.KeyNotFoundError` if none."""
        return self.store[key]

    @_locked
    def __contains__(self, key: object) -> bool:
        return key in self.store

    @_locked
    def __len__(self) -> int:
        return len(self.store)

    @_locked
    def __iter__(self) -> Iterator[str]:
        """Iterate over a copy of the keys."""
        return iter(list(self.store))

    @_locked
    def keys(self) -> list[str]:
        """Return the keys."""
        return list(self.store.keys())

    @_locked
    def items(self) -> list[tuple[str, IPLDKind]]:
        """Return the ``(key, value)`` pairs."""
        return list(self.store.items())

    @_locked
    def all(self) -> dict[str, IPLDKind]:
        """Return the whole map as a new dict."""
        return self.store.all()

    def put(self, key: str, value: IPLDKind) -> CID:
        """Set ``key`` to ``value``; return the entry's CID once committed."""
        return self.store.put(key, value)

    def delete(self, key: str) -> CID:
        """Delete ``key``; return the entry's CID once committed."""
        return self.store.delete(key)

    def __setitem__(self, key: str, value: IPLDKind) -> None:
        self.store.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.store.delete(key)

    @_locked
    def batch(self) -> KeyValueBatch:
        """Return a batch of puts and deletes, appended together when it commits."""
        return self.store.batch()


class EventLogDatabase(Database[EventLog]):
    """An eventlog database: an append-only sequence of events in the log's order."""

    @_locked
    def get(self, cid: CID, default: IPLDKind = None) -> IPLDKind:
        """Return the value of the event ``cid``, or ``default``."""
        return self.store.get(cid, default)

    @_locked
    def __getitem__(self, cid: CID) -> IPLDKind:
        """Return the value of the event ``cid``; raise :class:`~stores.KeyNotFoundError` if none."""
        return self.store[cid]

    @_locked
    def __contains__(self, cid: object) -> bool:
        return cid in self.store

    @_locked
    def __len__(self) -> int:
        return len(self.store)

    def __iter__(self) -> Iterator[Event]:
        """Iterate over the events held when the iteration began, oldest first."""
        return self.iter()

    @_locked
    def iter(
        self,
        *,
        gt: CID | None = None,
        gte: CID | None = None,
        lt: CID | None = None,
        lte: CID | None = None,
        amount: int | None = None,
        reverse: bool = False,
    ) -> Iterator[Event]:
        """Iterate over a range of events (see :meth:`stores.EventLog.iter`), read in chunks."""
        return self.store.iter(gt=gt, gte=gte, lt=lt, lte=lte, amount=amount, reverse=reverse)

    def all(self) -> list[Event]:
        """Return every event, oldest first."""
        return list(self.iter())

    def add(self, value: IPLDKind) -> CID:
        """Append an event; return its CID once committed."""
        return self.store.add(value)

    @_locked
    def batch(self) -> EventLogBatch:
        """Return a batch of events, appended together when it commits."""
        return self.store.batch()


class CounterDatabase(Database[Counter]):
    """A counter database: a PN-counter, the sum of every writer's increments."""

    @property
    def value(self) -> int:
        """The counter's value."""
        with self._lock:
            self._check_open()
            return self.store.value

    @property
    def totals(self) -> dict[bytes, int]:
        """Each writer's net contribution, by public key (a new dict)."""
        with self._lock:
            self._check_open()
            return self.store.totals

    def inc(self, n: int = 1) -> CID:
        """Add ``n``; return the entry's CID once committed."""
        return self.store.inc(n)

    def dec(self, n: int = 1) -> CID:
        """Subtract ``n``; return the entry's CID once committed."""
        return self.store.dec(n)

    @_locked
    def batch(self) -> CounterBatch:
        """Return a batch of increments, appended together when it commits."""
        return self.store.batch()


class DocumentsDatabase(Database[Documents]):
    """A documents database: JSON-like documents by key, with indexed fields for queries."""

    @property
    def options(self) -> DocumentsOptions:
        """The key field and indexed fields."""
        return self.store.options

    @_locked
    def get(self, key: str, default: Document | None = None) -> Document | None:
        """Return the document under ``key``, or ``default``."""
        return self.store.get(key, default)

    @_locked
    def __getitem__(self, key: str) -> Document:
        """Return the document under ``key``; raise :class:`~stores.DocumentNotFoundError` if none."""
        return self.store[key]

    @_locked
    def __contains__(self, key: object) -> bool:
        return key in self.store

    @_locked
    def __len__(self) -> int:
        return len(self.store)

    @_locked
    def __iter__(self) -> Iterator[str]:
        """Iterate over a copy of the keys."""
        return iter(list(self.store))

    @_locked
    def keys(self) -> list[str]:
        """Return the keys."""
        return list(self.store.keys())

    @_locked
    def items(self) -> list[tuple[str, Document]]:
        """Return the ``(key, document)`` pairs."""
        return list(self.store.items())

    @_locked
    def all(self) -> dict[str, Document]:
        """Return every document by key, as a new dict."""
        return self.store.all()

    @_locked
    def query(self, predicate: Callable[[Document], bool]) -> list[Document]:
        """Return the documents for which ``predicate`` is true (it runs under the lock)."""
        return self.store.query(predicate)

    @_locked
    def find(self, /, **fields: IPLDKind) -> list[Document]:
        """Return the documents whose indexed ``fields`` have the given values."""
        return self.store.find(**fields)

    @_locked
    def create_index(self, field: str) -> None:
        """Index ``field`` for :meth:`find`."""
        self.store.create_index(field)

    def put(self, doc: Document) -> CID:
        """Store a document under its key field; return the entry's CID once committed."""
        return self.store.put(doc)

    def put_many(self, docs: Iterable[Document]) -> CID | None:
        """Store many documents as one ``PUTALL`` entry; return its CID (None if ``docs`` is empty)."""
        return self.store.put_many(docs)

    def delete(self, key: str) -> CID:
        """Delete the document under ``key``; return the entry's CID once committed."""
        return self.store.delete(key)

    @_locked
    def batch(self) -> DocumentsBatch:
        """Return a batch of document writes, appended together when it commits."""
        return self.store.batch()


DATABASE_TYPES: dict[str, type[Database[Any]]] = {
    "eventlog": EventLogDatabase,
    "keyvalue": KeyValueDatabase,
    "counter": CounterDatabase,
    "documents": DocumentsDatabase,
}
"""The database class for each store type."""
