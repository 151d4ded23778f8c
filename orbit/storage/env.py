"""The LMDB environment of a directory: its lock, its transactions, and its error mapping.

Every operation on the environment runs under one re-entrant lock (:attr:`Environment.lock`), which the
:class:`orbit.OrbitDB` of the directory shares for its databases: a writer's transaction is never seen
by a reader, and re-mapping never closes a transaction in use. Write transactions are opened, filled
and committed inside one call (:meth:`Environment.write`); a failure aborts them, so the store is as it
was before the call.

Errors are mapped here and nowhere else: :func:`guarded` turns ``lmdb.Error`` and ``OSError`` raised
by a storage operation into :class:`~orbit.errors.BlockStoreError` (:class:`~orbit.errors.StorageFullError`
when the map or the disk is full), naming the operation and the path.

Durability: a write that returned is in the operating system's page cache, so it survives a kill of
the process (SIGKILL included): a journal record is whole or fails its checksum, and LMDB commits by
writing the data pages, then the meta page that points at them, so a reader only ever sees the last
complete meta page. With ``sync=False`` (the default) an operating-system crash or power loss may lose
the writes of the last seconds; with ``sync=True`` every journal record and every commit is flushed
(fdatasync) before the write returns.

Small commits of a log's entries go through the write-behind journal (:mod:`orbit.storage.journal`):
:meth:`Environment.journal` makes one durable with a single appended record, and the pending records
reach LMDB in one transaction when enough are waiting, before any read (:meth:`Environment.reader`),
inside the next write (:meth:`Environment.write`), and at close; opening the environment replays what
LMDB lacks. So every read sees every commit, and LMDB's state only ever moves forward in commit order.

Memory: pages read through LMDB's map count in the process's resident set until the map goes away,
and a read fault maps its neighbours too, so the environment re-opens its map once
:data:`MAPPED_LIMIT` of file pages are resident (checked every :data:`CHECK_EVERY` transactions or
:data:`REMAP_BYTES` read).
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar

import lmdb

from ipfs_log.lazy import lazy_logger
from orbit.errors import BlockStoreError, StorageFullError
from orbit.storage.journal import APPLIED_KEY, Commit, Journal
from orbit.storage.layout import DATABASES, U64

__all__ = ["DEFAULT_MAP_SIZE", "Environment", "guarded"]

DEFAULT_MAP_SIZE: Final = 1 << 38
REMAP_BYTES: Final = 8 << 20
"""Look at the resident file pages after reading about this many bytes."""
MAPPED_LIMIT: Final = 64 << 20
"""Re-map when the process's resident file-backed pages (``/proc/self/statm``) exceed this."""
CHECK_EVERY: Final = 256
"""Look at the resident file pages every this many transactions, besides every :data:`REMAP_BYTES`."""
_PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
JOURNAL_FILE: Final = "journal"
JOURNAL_FLUSH: Final = 512
"""Apply the journal to LMDB once this many records wait (or :data:`JOURNAL_FLUSH_BYTES`)."""
JOURNAL_FLUSH_BYTES: Final = 4 << 20
JOURNAL_LIMIT_BYTES: Final = 32 << 20
"""Past this many bytes waiting (LMDB failing to take them), a commit first applies them or fails."""
_log = lazy_logger("orbit")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _mapped_file_bytes() -> float:
    """The process's resident shared (file-backed) memory, or infinity where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[2]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return float("inf")


class Environment:
    """An LMDB environment with the named databases of :mod:`orbit.storage.layout`.

    Args:
        path: the directory of the environment (created if absent).
        sync: flush every commit to disk (survives power loss; slower). Default: survive a process kill.
        map_size: the largest the store may grow to, in bytes.

    Raises:
        BlockStoreError: the environment cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = False, map_size: int = DEFAULT_MAP_SIZE):
        self.path = Path(path)
        self.sync = sync
        self.map_size = map_size
        self.lock = threading.RLock()
        """Held by every operation on the environment; shared by the directory's databases."""
        self.db: dict[bytes, Any] = {}
        self._env: Any = None
        self._rtxn: Any = None
        self._read_bytes = 0
        self._calls = 0
        self.closed = False
        self._journal: Journal | None = None
        self._pending: list[tuple[int, Commit]] = []
        self._pending_bytes = 0
        self._generation = 0
        self._map("open the store", self._open)
        try:
            self._map("replay the journal", self._recover)
        except BaseException:
            if self._env is not None:
                self._env.close()
            raise

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        env = lmdb.open(
            str(self.path), map_size=self.map_size, max_dbs=len(DATABASES) + 1, sync=self.sync,
            metasync=self.sync, readahead=False, max_spare_txns=4,
        )  # fmt: skip
        try:
            self.db = {name: env.open_db(name) for name in DATABASES}
        except BaseException:
            env.close()
            raise
        self._env = env

    def _map(self, op: str, fn: Callable[[], _R]) -> _R:
        try:
            return fn()
        except (lmdb.Error, OSError) as e:
            raise self.error(op, e) from e

    def error(self, op: str, e: BaseException) -> BlockStoreError:
        """Return the :class:`BlockStoreError` for ``e``, raised by the operation ``op``."""
        full = isinstance(e, lmdb.MapFullError) or (isinstance(e, OSError) and e.errno == errno.ENOSPC)
        cls = StorageFullError if full else BlockStoreError
        return cls(f"{op} failed: {type(e).__name__}: {e}", self.path)

    # ------------------------------------------------------------------ transactions

    def _live(self) -> Any:
        """Return the open LMDB environment, re-opening it after a failed re-map (lock held)."""
        if self.closed:
            raise BlockStoreError("the store is closed", self.path)
        if self._env is None:
            self._open()
        return self._env

    def _tick(self) -> bool:
        """Count a transaction; return whether the map should be re-opened now."""
        self._calls += 1
        return (self._read_bytes > REMAP_BYTES or not self._calls % CHECK_EVERY) and self._remap_due()

    def _remap_due(self) -> bool:
        self._read_bytes = 0
        return _mapped_file_bytes() > MAPPED_LIMIT

    def remap(self) -> None:
        """Close and re-open the environment (no transaction may be open), dropping its mapped pages.

        If re-opening fails the environment stays closed, and the next operation tries again.
        """
        self.drop_reader()
        env, self._env = self._env, None
        if env is not None:
            env.close()
        self._open()

    def reader(self) -> Any:
        """Return a read transaction on the last committed state (the lock must be held).

        The journal's pending records are applied first, so a read sees every commit.
        """
        if self._pending:
            self.flush()
        if self._rtxn is not None:
            if not self._tick():
                return self._rtxn
            self.remap()
        self._rtxn = self._live().begin()
        return self._rtxn

    def drop_reader(self) -> None:
        """End the cached read transaction (it is renewed at the next read)."""
        rtxn, self._rtxn = self._rtxn, None
        if rtxn is not None:
            rtxn.abort()

    def drop_reader_quietly(self) -> None:
        """End the cached read transaction after an error, ignoring a failure to do so."""
        try:
            self.drop_reader()
        except (lmdb.Error, OSError):
            self._rtxn = None

    def note_read(self, nbytes: int) -> None:
        """Count ``nbytes`` read through the map (to decide when to re-map)."""
        self._read_bytes += nbytes

    def remap_soon(self) -> None:
        """Make the next transaction look at the resident pages (after a long walk)."""
        self._read_bytes = REMAP_BYTES + 1

    def write(self, fn: Callable[[Any], _R]) -> _R:
        """Run ``fn`` with a write transaction and commit it (the lock must be held).

        ``fn`` looks up database handles in :attr:`db` itself: opening the transaction may re-map the
        environment, which replaces them. The journal's pending records are applied first, in the same
        transaction.

        When this returns, the write survives a process kill. If ``fn`` or the commit raises, the
        transaction is aborted: nothing of it was kept (pending records stay in the journal).
        """
        self.drop_reader()
        if self._tick():
            self.remap()
        txn = self._live().begin(write=True)
        pending = self._pending
        try:
            if pending:
                self._apply(txn, pending)
            result = fn(txn)
        except BaseException:
            txn.abort()
            raise
        txn.commit()  # on failure LMDB has aborted the transaction itself
        if pending:
            self._applied()
        return result

    # ------------------------------------------------------------------ the journal

    def _recover(self) -> None:
        """Open the journal and apply the records LMDB lacks (at open, before anything else)."""
        journal = Journal(self.path / JOURNAL_FILE, sync=self.sync)
        try:
            txn = self._live().begin()
            try:
                raw = txn.get(APPLIED_KEY, db=self.db[b"heads"])
            finally:
                txn.abort()
            applied = U64.unpack(raw)[0] if raw is not None and len(raw) == U64.size else 0
            records = list(journal.records())
            self._generation = max([applied, *(g for g, _ in records)])
            self._pending = [(g, Commit.decode(p)) for g, p in records if g > applied]
            self._journal = journal
            if self._pending:
                self.flush()
            else:
                journal.reset()
        except BaseException:
            self._journal = None
            self._pending = []
            journal.close()
            raise

    def _apply(self, txn: Any, pending: list[tuple[int, Commit]]) -> None:
        db = self.db
        for _, commit in pending:
            commit.apply(txn, db)
        txn.put(APPLIED_KEY, U64.pack(pending[-1][0]), db=db[b"heads"])

    def _applied(self) -> None:
        """Forget the pending records (LMDB committed them) and empty the file."""
        self._pending = []
        self._pending_bytes = 0
        journal = self._journal
        if journal is not None:
            try:
                journal.reset()
            except OSError as e:  # harmless: replay skips records LMDB marks as applied
                _log.warning("journal %s not emptied: %s", journal.path, e)

    def journal(self, commit: Commit) -> None:
        """Make a commit durable as one journal record; LMDB takes it at the next flush (lock held).

        Raises:
            OSError: the record could not be written (nothing of it was kept).
            lmdb.Error: too much waits for LMDB, which failed to take it (nothing was written).
        """
        journal = self._journal
        if journal is None:
            raise BlockStoreError("the store is closed", self.path)
        if self._pending_bytes > JOURNAL_LIMIT_BYTES:
            self.flush()
        generation = self._generation + 1
        payload = commit.encode()
        journal.append(generation, payload)
        self._generation = generation
        self._pending.append((generation, commit))
        self._pending_bytes += len(payload)
        if len(self._pending) >= JOURNAL_FLUSH or self._pending_bytes >= JOURNAL_FLUSH_BYTES:
            try:
                self.flush()
            except (lmdb.Error, OSError, BlockStoreError) as e:  # the commit is durable: retried later
                _log.warning("journal of %s not applied yet: %s", self.path, e)

    def flush(self) -> None:
        """Apply the journal's pending records to LMDB in one transaction (lock held).

        Raises:
            lmdb.Error, OSError: the transaction failed; the records stay pending.
        """
        if self._pending:
            self.write(lambda txn: None)

    def close(self) -> None:
        """Flush to disk and close. Idempotent.

        Raises:
            BlockStoreError: the flush failed (the environment is closed anyway).
        """
        with self.lock:
            if self.closed:
                return
            unapplied: BlockStoreError | None = None
            try:  # what the journal holds is replayed at the next open if this fails
                self._map("apply the journal", self.flush)
            except BlockStoreError as e:
                unapplied = e
            self.closed = True
            env, self._env = self._env, None
            journal, self._journal = self._journal, None
            try:
                if env is not None:
                    self.drop_reader()
                    self._map("flush the store", lambda: env.sync(True))
            finally:
                if env is not None:
                    env.close()
                if journal is not None:
                    journal.close()
            if unapplied is not None:
                raise unapplied


class _HasEnv(Protocol):
    @property
    def env(self) -> Environment: ...


_S = TypeVar("_S", bound=_HasEnv)


def guarded(op: str) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """Run a storage method under the environment's lock, mapping LMDB and OS errors.

    ``op`` names the operation in the error message (``"read block"``, ``"record entries"``...).
    """

    def decorate(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def run(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            env = self.env
            with env.lock:
                try:
                    return method(self, *args, **kwargs)
                except (lmdb.Error, OSError) as e:
                    env.drop_reader_quietly()
                    raise env.error(op, e) from e

        return run

    return decorate
