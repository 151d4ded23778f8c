"""A local block store in front of a remote one (an IPFS node): write-through, read-through.

- **Writes** are acknowledged once they are durable locally: a block is recorded in the upload journal,
  written to the local store, and then sent to the node. If the node is down, slow or refuses, the
  write still returns; the block stays in the journal and is uploaded later (by a background thread
  every ``retry_interval`` seconds, on the next write after that, or by :meth:`CachedBlockStore.flush`).
  The journal is recorded *before* the local write, so a crash between the two can only leave an extra
  upload, never a block that is held locally but never reaches the node.
- **Reads** try the local store first; a local hit never touches the network. A miss is fetched from the
  node (verified against its CID by the client) and, unless ``cache_reads`` is off, kept locally.
- **Pins**: :meth:`CachedBlockStore.pin` records the heads to pin under a name (a database address);
  they are pinned on the node (by the background thread or :meth:`CachedBlockStore.flush`) once every
  pending upload has reached it, and moved as heads change. A node walks the whole DAG it pins (a long
  log: seconds), so the background thread, when nobody waits, moves a name's pin again only after
  :data:`PIN_SPACING` times as long as the last move took: a node pinning a million-entry log spends at
  most a tenth of its time on it while writes stream in. The heads are announced at once all the same,
  and a caller that waits (:meth:`CachedBlockStore.flush`, ``wait_uploaded``, closing) pins at once.

The upload journal is a small SQLite file of its own (``pending-uploads.sqlite`` in the directory
given), independent of the local store's format. SQLite in WAL mode with ``synchronous=NORMAL`` keeps
every committed record through a process kill, the same promise as the local store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError, OrbitError
from orbit.errors import BlockStoreError, IpfsBlockTooLargeError
from orbit.ipfs.client import MAX_BLOCK_BYTES

__all__ = ["JOURNAL_FILE", "CachedBlockStore", "RemoteBlockStore"]

JOURNAL_FILE: Final = "pending-uploads.sqlite"
PIN_SPACING: Final = 10.0
"""Unwaited, a name's pin moves again only after this many times its last move took (see the module)."""
_BATCH: Final = 2048
_FIRST_PAUSE: Final = 0.1
"""While a caller waits, seconds before a failed call is tried again; doubling up to :data:`_LAST_PAUSE`."""
_LAST_PAUSE: Final = 2.0


class RemoteBlockStore(BlockStore, Protocol):
    """What the cache needs of the remote store: the BlockStore protocol, per-block upload results, pins."""

    def put_each(self, blocks: Iterable[tuple[CID, bytes]]) -> dict[CID, OrbitError]:
        """Store blocks; return those that failed with their errors."""
        ...

    def pin(self, heads: Iterable[CID], previous: Iterable[CID] = ()) -> None:
        """Pin ``heads`` recursively and unpin ``previous``."""
        ...


class _Journal:
    """Pending uploads and wanted pins, in a SQLite file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pending (cid BLOB PRIMARY KEY, block BLOB NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, error TEXT)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pins (name TEXT PRIMARY KEY, heads BLOB NOT NULL, pinned BLOB)"
            )
        except (sqlite3.Error, OSError) as e:
            raise BlockStoreError(f"cannot open the upload journal: {e}", path) from e

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                raise BlockStoreError(f"upload journal failed: {e}", self.path) from e

    def add(self, blocks: list[tuple[CID, bytes]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pending (cid, block) VALUES (?, ?)", [(bytes(c), b) for c, b in blocks]
            )

    def remove(self, cids: Iterable[CID]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM pending WHERE cid = ?", [(bytes(c),) for c in cids])

    def failed(self, errors: dict[CID, OrbitError]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE pending SET attempts = attempts + 1, error = ? WHERE cid = ?",
                [(str(e)[:500], bytes(c)) for c, e in errors.items()],
            )

    def take(self, limit: int, after: bytes = b"") -> list[tuple[CID, bytes]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT cid, block FROM pending WHERE cid > ? ORDER BY cid LIMIT ?", (after, limit)
            ).fetchall()
        return [(CID(cid), bytes(block)) for cid, block in rows]

    def holds_any(self, cids: list[CID]) -> bool:
        with self._tx() as db:
            return any(
                db.execute("SELECT 1 FROM pending WHERE cid = ?", (bytes(c),)).fetchone() is not None
                for c in cids
            )

    def count(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def errors(self) -> dict[CID, str]:
        with self._tx() as db:
            rows = db.execute("SELECT cid, error FROM pending WHERE error IS NOT NULL").fetchall()
        return {CID(cid): str(error) for cid, error in rows}

    def want_pins(self, name: str, heads: list[CID]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO pins (name, heads) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET heads = excluded.heads",
                (name, _pack(heads)),
            )

    def pins(self) -> list[tuple[str, list[CID], list[CID]]]:
        with self._tx() as db:
            rows = db.execute("SELECT name, heads, pinned FROM pins").fetchall()
        return [(name, _unpack(heads), _unpack(pinned or b"")) for name, heads, pinned in rows]

    def pinned(self, name: str, heads: list[CID]) -> None:
        with self._tx() as db:
            db.execute("UPDATE pins SET pinned = ? WHERE name = ?", (_pack(heads), name))

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()


def _pack(cids: list[CID]) -> bytes:
    return b"".join(len(c).to_bytes(1, "big") + bytes(c) for c in cids)


def _unpack(data: bytes) -> list[CID]:
    out, pos = [], 0
    while pos < len(data):
        size = data[pos]
        out.append(CID(data[pos + 1 : pos + 1 + size]))
        pos += 1 + size
    return out


class CachedBlockStore:
    """A local block store in front of a remote one; implements the ``BlockStore`` protocol.

    Args:
        local: the store that acknowledges writes and serves reads first (e.g. ``LocalBlockStore``).
        remote: the node's store (e.g. :class:`~orbit.ipfs.blockstore.IpfsBlockStore`).
        directory: where the upload journal lives (``pending-uploads.sqlite``).
        retry_interval: seconds before the first retry after a failure (doubling with each failure in a
            row, up to five minutes); also the background period.
        background: run a daemon thread that retries pending uploads and pins every ``retry_interval``.
        cache_reads: keep blocks fetched from the node in the local store.
        announce: called with ``(name, heads)`` from the uploading thread once a name's heads have
            reached the node, before they are pinned (e.g. to publish them); an :class:`OrbitError` it
            raises is retried.
        pin: pin the heads given to :meth:`pin` on the node; with False they are only announced.

    Raises:
        BlockStoreError: the journal cannot be opened.
    """

    def __init__(
        self,
        local: BlockStore,
        remote: RemoteBlockStore,
        directory: str | os.PathLike[str],
        *,
        retry_interval: float = 5.0,
        background: bool = True,
        cache_reads: bool = True,
        announce: Callable[[str, list[CID]], None] | None = None,
        pin: bool = True,
    ) -> None:
        self.local = local
        self.announce = announce
        self.pin_remote = pin
        self.remote = remote
        self.retry_interval = retry_interval
        self.cache_reads = cache_reads
        self._journal = _Journal(Path(directory) / JOURNAL_FILE)
        self._flush_lock = threading.Lock()
        self._retry_at = 0.0  # monotonic time before which uploads are not attempted (after a failure)
        self._failures = 0  # failures in a row (the backoff doubles with each)
        self._has_pending = self._journal.count() > 0
        self._pins_dirty = self.pins_pending
        self.last_error: OrbitError | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Waiters (wait_uploaded) and the background thread meet here: each background pass has a number;
        # a waiter wants a pass that began after it did to end with everything on the node.
        self._passes = threading.Condition()
        self._pass = 0  # the number of the last pass begun
        self._clean_pass = 0  # the last pass that ended with nothing pending and every pin in place
        self._failed_pass = 0  # the last pass in which a call failed
        self._waiters = 0
        self._wanted = 0  # the latest pass a waiter wants to end clean
        self._announced: dict[str, list[CID]] = {}  # name -> the heads last announced
        self._pin_after: dict[str, float] = {}  # name -> monotonic time before which it is not re-pinned
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._background, name="orbit-uploads", daemon=True)
            self._thread.start()

    # -- reads ----------------------------------------------------------------------------------------------

    def get(self, cid: CID) -> bytes:
        """Return the block from the local store, or else from the node (then kept locally).

        Raises:
            BlockNotFoundError: neither holds it (the node did not produce it in time).
            IpfsBlockMismatchError: the node's bytes do not hash to ``cid`` (nothing is cached).
            OrbitError: the local store or the node failed.
        """
        try:
            return self.local.get(cid)
        except BlockNotFoundError:
            pass
        block = self.remote.get(cid)
        if self.cache_reads:
            self.local.put(cid, block)
        return block

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held locally, and fetch the others from the node concurrently.

        Raises:
            IpfsBlockMismatchError: a fetched block does not hash to its CID (nothing is cached).
            OrbitError: the local store or the node failed.
        """
        wanted = list(cids)
        found = self.local.get_many(wanted)
        missing = [cid for cid in wanted if cid not in found]
        if missing:
            fetched = self.remote.get_many(missing)
            if fetched and self.cache_reads:
                self.local.put_many(fetched.items())
            found.update(fetched)
        return found

    def has(self, cid: CID) -> bool:
        """Return whether the local store or the node holds the block.

        Raises:
            OrbitError: the local store or the node failed.
        """
        return self.local.has(cid) or self.remote.has(cid)

    # -- writes ---------------------------------------------------------------------------------------------

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block locally (durably) and upload it, or queue the upload if the node fails.

        Raises:
            IpfsBlockTooLargeError: the block is over 2 MiB (nothing is stored).
            BlockStoreError: the journal or the local store failed (the write is not acknowledged).
        """
        self.put_many(((cid, block),))

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks locally (durably) and upload them; failed uploads are queued and retried.

        Raises:
            IpfsBlockTooLargeError: a block is over 2 MiB (nothing is stored).
            BlockStoreError: the journal or the local store failed (the write is not acknowledged).
        """
        items = _uploadable(blocks)
        if not items:
            return
        self._journal.add(items)  # first: a crash after this can only cause an extra upload
        self._has_pending = True
        self.local.put_many(items)
        if time.monotonic() >= self._retry_at and self._upload(items):
            self._has_pending = self._journal.count() > 0
            if self._has_pending:
                self._wake.set()  # older uploads are waiting: let the background thread send them

    def _failed(self) -> None:
        """Back off after a failure: ``retry_interval``, doubling with each failure in a row (to 5 min)."""
        self._failures += 1
        delay = min(self.retry_interval * 2 ** min(self._failures - 1, 16), max(self.retry_interval, 300.0))
        self._retry_at = time.monotonic() + delay

    def queue_upload(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Record blocks for upload (durably) and let the background thread send them.

        For blocks the caller writes to the local store itself, *after* this returns (so a crash in
        between can only cause an extra upload). Nothing is sent in the caller's thread.

        Raises:
            IpfsBlockTooLargeError: a block is over 2 MiB (nothing is recorded).
            BlockStoreError: the journal failed.
        """
        items = _uploadable(blocks)
        if not items:
            return
        self._journal.add(items)
        self._has_pending = True
        self._wake.set()

    def _upload(self, items: list[tuple[CID, bytes]]) -> bool:
        """Send blocks to the node; drop the uploaded ones from the journal. True if all were sent."""
        failures = self.remote.put_each(items)
        sent = [cid for cid, _ in items if cid not in failures]
        if sent:
            self._journal.remove(sent)
        if failures:
            self._journal.failed(failures)
            self.last_error = next(iter(failures.values()))
            self._failed()
            return False
        return True

    def flush(self) -> int:
        """Upload every pending block now, then bring the pins up to date.

        Stops at the first batch that fails (the node is down or refusing) and leaves the rest queued.

        Returns:
            The number of uploads still pending (0 when the node has everything).

        Raises:
            BlockStoreError: the journal failed.
        """
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self, urgent: bool = True) -> int:
        after = b""
        while True:
            batch = self._journal.take(_BATCH, after)
            if not batch:
                break
            if not self._upload(batch):
                return self._journal.count()
            after = bytes(batch[-1][0])
        remaining = self._journal.count()
        self._has_pending = remaining > 0
        if not remaining:
            self._retry_at = 0.0
            self._sync_pins(urgent)
            if not self._pins_dirty:
                self._failures = 0
        return remaining

    @property
    def backing_off(self) -> bool:
        """True while uploads wait out the retry interval after a failure."""
        return time.monotonic() < self._retry_at

    def wait_uploaded(self, timeout: float, *, retry: bool = True) -> bool:
        """Wait, at most ``timeout`` seconds, until nothing is pending and every pin is on the node.

        It tries at once, whatever the backoff after earlier failures. With ``retry`` (the default), a
        failed call is tried again after a short pause (0.1 s, doubling to 2 s) until the deadline, so
        one slow or refused call does not make the wait give up while the node recovers. Without it,
        the wait returns False as soon as a call fails (what closing wants: a down node must not hold
        up ``close``).

        With the background thread, the calls are made there and this only waits: it returns by the
        deadline even when a call in flight takes longer (a pin walking a long log). Without it, the
        calls are made here, and the last may run past the deadline by its own bound.

        Returns:
            True if everything reached the node in time; False at once once the store is closed.

        Raises:
            BlockStoreError: the journal failed.
        """
        deadline = time.monotonic() + timeout
        if self._stop.is_set():
            return False  # closed
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._wait_here(deadline, retry)
        with self._passes:
            wanted = self._pass + 1  # a pass that begins after this call
            self._wanted = max(self._wanted, wanted)
            self._waiters += 1
            try:
                self._wake.set()
                while self._clean_pass < wanted:
                    left = deadline - time.monotonic()
                    if (
                        left <= 0
                        or (not retry and self._failed_pass >= wanted)
                        or self._stop.is_set()  # closing: the thread notifies as it stops
                        or not thread.is_alive()
                    ):
                        return False
                    self._passes.wait(left)
                return True
            finally:
                self._waiters -= 1

    def _wait_here(self, deadline: float, retry: bool) -> bool:
        """:meth:`wait_uploaded` making the calls in this thread (no background thread)."""
        pause = _FIRST_PAUSE
        while True:
            failures = self._failures
            if self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    with contextlib.suppress(OrbitError):  # recorded in last_error
                        if self._flush_locked() == 0 and not self._pins_dirty:
                            return True
                finally:
                    self._flush_lock.release()
            failed = self._failures > failures
            left = deadline - time.monotonic()
            if left <= 0 or (failed and not retry):
                return False
            if failed:
                time.sleep(min(pause, left))
                pause = min(2 * pause, _LAST_PAUSE)
            else:  # a pin deferred behind a write that landed meanwhile: soon
                time.sleep(min(0.05, left))

    @property
    def pins_pending(self) -> bool:
        """True while some name's wanted pins (or announcements) have not reached the node.

        Raises:
            BlockStoreError: the journal failed.
        """
        return any(heads != pinned for _, heads, pinned in self._journal.pins())

    def pending(self) -> int:
        """Return how many blocks wait to be uploaded.

        Raises:
            BlockStoreError: the journal failed.
        """
        return self._journal.count()

    def pending_errors(self) -> dict[CID, str]:
        """Return the last upload error of each pending block that failed at least once.

        Raises:
            BlockStoreError: the journal failed.
        """
        return self._journal.errors()

    # -- pins -----------------------------------------------------------------------------------------------

    def pin(self, name: str, heads: Iterable[CID]) -> None:
        """Keep ``heads`` (and everything they link to) pinned on the node under ``name``.

        Recorded in the journal at once; the background thread (or :meth:`flush`) pins them once every
        pending upload has reached the node, and unpins the heads pinned before under ``name``.

        Raises:
            BlockStoreError: the journal failed.
        """
        self._journal.want_pins(name, list(dict.fromkeys(heads)))
        self._pins_dirty = True
        self._wake.set()

    def pinned(self, name: str) -> list[CID]:
        """Return the heads the node has pinned under ``name`` (as far as this store knows).

        Raises:
            BlockStoreError: the journal failed.
        """
        return next((pinned for n, _, pinned in self._journal.pins() if n == name), [])

    def wanted(self, name: str) -> list[CID]:
        """Return the heads last asked to be pinned under ``name`` (pinned or not yet).

        Raises:
            BlockStoreError: the journal failed.
        """
        return next((heads for n, heads, _ in self._journal.pins() if n == name), [])

    def _sync_pins(self, urgent: bool) -> None:
        """Announce and pin each name's wanted heads; unless ``urgent``, a pin waits out its spacing."""
        while self._pins_dirty:  # a pin asked for during a pass sets it again: pass again
            self._pins_dirty = False
            later = False
            for name, heads, pinned in self._journal.pins():
                if heads == pinned:
                    continue
                if self._journal.holds_any(heads):  # written since the uploads drained: next time
                    later = True
                    continue
                try:
                    if self.announce is not None and self._announced.get(name) != heads:
                        self.announce(name, heads)  # first: a node that cannot pin still learns the heads
                        self._announced[name] = heads
                    if self.pin_remote:
                        if not urgent and time.monotonic() < self._pin_after.get(name, 0.0):
                            later = True  # announced; pinned once the spacing has passed
                            continue
                        started = time.monotonic()
                        self.remote.pin(heads, previous=pinned)
                        ended = time.monotonic()
                        self._pin_after[name] = ended + PIN_SPACING * (ended - started)
                except OrbitError as e:
                    self.last_error = e
                    self._failed()
                    self._pins_dirty = True
                    return
                self._journal.pinned(name, heads)
            if later:
                self._pins_dirty = True
                return

    # -- background retries ---------------------------------------------------------------------------------

    def _background(self) -> None:
        try:
            self._background_passes()
        finally:  # stopped (or failed): a waiter learns it now, not at its deadline
            with self._passes:
                self._passes.notify_all()

    def _background_passes(self) -> None:
        pause = _FIRST_PAUSE  # between passes while a caller waits, after a failed one
        while not self._stop.is_set():
            if self._awaited():  # a caller waits: pass now, or after a short pause if the last failed
                delay = pause if self._failed_pass == self._pass else 0.0
            else:
                backoff = self._retry_at - time.monotonic()
                delay = backoff if backoff > 0 else self.retry_interval
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self._awaited() and (
                time.monotonic() < self._retry_at or not (self._has_pending or self._pins_dirty)
            ):
                continue  # after a failure, wait out the retry interval even when woken by writes
            self._run_pass()
            pause = min(2 * pause, _LAST_PAUSE) if self._failed_pass == self._pass else _FIRST_PAUSE

    def _awaited(self) -> bool:
        """Whether a caller of :meth:`wait_uploaded` waits for a pass that has not yet ended clean."""
        with self._passes:
            return self._waiters > 0 and self._wanted > self._clean_pass

    def _run_pass(self) -> None:
        """One background pass: upload what is pending, bring the pins up to date; tell the waiters."""
        with self._passes:
            self._pass += 1
            number = self._pass
        failures = self._failures
        clean = failed = False
        try:
            with self._flush_lock:
                clean = self._flush_locked(urgent=self._awaited()) == 0 and not self._pins_dirty
        except OrbitError:  # the journal failed (a call that fails is recorded in last_error)
            failed = True
        finally:
            with self._passes:
                if clean:
                    self._clean_pass = number
                elif failed or self._failures > failures:  # else a pin waits behind a write: again
                    self._failed_pass = number
                self._passes.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread and close the journal, waiting at most ``timeout`` seconds in all.

        The local and remote stores belong to the caller and stay open. Pending uploads stay in the
        journal for the next :class:`CachedBlockStore` on the same directory.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        left = max(0.0, deadline - time.monotonic())
        if self._flush_lock.acquire(timeout=left):  # else a slow call still runs: leave it the journal
            try:
                self._journal.close()
            finally:
                self._flush_lock.release()

    def __enter__(self) -> CachedBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CachedBlockStore({self.local!r} in front of {self.remote!r})"


def _uploadable(blocks: Iterable[tuple[CID, bytes]]) -> list[tuple[CID, bytes]]:
    """The blocks, once each, checked against the node's size limit.

    Raises:
        IpfsBlockTooLargeError: a block is over :data:`~orbit.ipfs.client.MAX_BLOCK_BYTES`.
    """
    items = list(dict(blocks).items())
    for cid, block in items:
        if len(block) > MAX_BLOCK_BYTES:
            raise IpfsBlockTooLargeError(
                f"block of {len(block)} bytes is over the {MAX_BLOCK_BYTES}-byte bitswap limit",
                "block/put",
                cid,
            )
    return items
