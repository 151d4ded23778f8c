"""Logs kept in the local block store: written durably on every admit, reopened without a replay.

Opening a stored log reads its heads and its order index (76 bytes per entry: time, writer key, CID,
packed into one ``bytearray``) and hands :meth:`ipfs_log.Log.restore` two views over the store:

- :class:`StoredOrder`, the log's entries in order: iterating it is one sequential cursor walk over the
  blocks, which are hash-checked and decoded in chunks (no signature check: the log verified every entry
  before it was stored) and dropped once the caller moves on;
- :class:`StoredEntries`, membership and lookup by CID through the store's ``where`` index.

So reopening costs a walk over small keys, not a decode and a signature check per entry, and a
million-entry log keeps about 76 MB of order records in memory, not a million entry objects.

Every batch of entries the log admits (an append or a join) is written, with the log's new heads, in one
transaction committed before the log changes (:class:`StoredLog` is the log's
:class:`~ipfs_log.storage.LogStorage`): durable before visible.

Iterators over a stored log stay valid while the log grows: positions before an iterator's end do not
move when entries are appended, and when a join inserts entries in the middle (a re-sort), every live
iterator is first handed a copy of the records it has left to read.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode_unchecked_links
from ipfs_log.entry import Entry
from ipfs_log.errors import CodecError
from ipfs_log.frontier import Frontier
from ipfs_log.gc import gc_paused
from ipfs_log.identity import Identity
from ipfs_log.log import Log
from ipfs_log.storage import LogStorage
from orbit.errors import StorageCorruptError
from orbit.storage.blocks import LocalBlockStore
from orbit.storage.layout import RECORD, record, record_cid, record_sort_key
from orbit.storage.logs import LogRecords

__all__ = ["StoredEntries", "StoredLog", "StoredOrder", "admitted_since", "open_log", "reread"]

_T = TypeVar("_T")
_CHUNK: Final = 512


class StoredLog:
    """A stored log's :class:`~ipfs_log.storage.LogStorage`: commits each admission before the log changes."""

    __slots__ = ("lognum", "records")

    def __init__(self, records: LogRecords, lognum: int) -> None:
        self.records = records
        self.lognum = lognum

    def commit(self, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        """Write the entries, their order keys and the new heads in one transaction.

        Raises:
            BlockStoreError: the write failed; nothing of it was kept.
        """
        self.records.commit(self.lognum, entries, heads, first)


class _Reader:
    """Turns stored blocks back into entries: fields checked, no signature (verified before storing)."""

    __slots__ = ("local", "log_id")

    def __init__(self, local: LocalBlockStore, log_id: str) -> None:
        self.local = local
        self.log_id = log_id

    def entry(self, cid: CID) -> Entry:
        return self.decode_block(cid, self.local.get(cid))

    def decode(self, cid: CID, value: bytes) -> Entry:
        """Decode a stored ``entries`` value: the payload offset (4 bytes), then the block."""
        return self.decode_block(cid, value[4:])

    def decode_block(self, cid: CID, block: bytes) -> Entry:
        # The store checked that ``block`` hashes to ``cid``, and the log admitted ``cid`` only after
        # verifying every field and the signature: these bytes are that verified entry, so only the
        # log id is compared (a block of another log filed under this one would be a corrupt index).
        try:
            body: Any = decode_unchecked_links(block)
            time, key = body["clock"]["time"], body["key"]
            if body["id"] != self.log_id:
                raise StorageCorruptError(
                    f"stored block is not an entry of log {self.log_id!r}", self.local.path, cid
                )
            return Entry(
                cid, block, self.log_id, time, key, tuple(body["next"]), tuple(body["refs"]),
                body["payload"], body["sig"], (time, key, bytes(cid)),
            )  # fmt: skip
        except (CodecError, TypeError, KeyError) as e:
            raise StorageCorruptError(f"stored entry does not decode: {e}", self.local.path, cid) from e


class _Cursor:
    """Where a live iterator reads its records from: the order's own, or a copy after a re-sort."""

    __slots__ = ("__weakref__", "hi", "lo", "offset", "records")

    def __init__(self, records: bytes | bytearray, lo: int, hi: int) -> None:
        self.records = records
        self.offset = 0  # position of records[0]
        self.lo = lo
        self.hi = hi

    def read(self, start: int, end: int) -> bytes:
        o = self.offset
        return bytes(self.records[(start - o) * RECORD : (end - o) * RECORD])


class StoredOrder:
    """A stored log's entries in log order (an :class:`ipfs_log.storage.Order`), read on demand.

    Only the packed 76-byte order records live in memory; every position reads from the store, where
    the entries were committed before the log added their records here.
    """

    def __init__(self, records: LogRecords, lognum: int, packed: bytearray, reader: _Reader) -> None:
        self._store = records
        self._lognum = lognum
        self._records = packed
        self._reader = reader
        self._sorted = len(packed) // RECORD  # positions before this are in log order
        self._cursors: weakref.WeakSet[_Cursor] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self._records) // RECORD

    def _index(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("log position out of range")
        return i

    def cid_at(self, i: int) -> CID:
        """Return the CID at position ``i``."""
        return record_cid(self._records, self._index(i))

    def sort_key_at(self, i: int) -> tuple[int, bytes, bytes]:
        """Return ``(time, writer key, CID bytes)`` at position ``i``, without reading the entry."""
        return record_sort_key(self._records, self._index(i))

    def __getitem__(self, i: int) -> Entry:
        return self._reader.entry(self.cid_at(i))

    def __iter__(self) -> Iterator[Entry]:
        return self.span(0, len(self), False)

    def span(self, lo: int, hi: int, reverse: bool) -> Iterator[Entry]:
        """Iterate over positions ``lo`` to ``hi - 1`` (newest first if ``reverse``), a chunk at a time."""
        return self._walk(lo, hi, reverse, self._reader.decode)

    def payloads(self, lo: int, hi: int, reverse: bool) -> Iterator[tuple[CID, IPLDKind]]:
        """Like :meth:`span`, but decode only each entry's payload (its offset is stored with it)."""
        return self._walk(lo, hi, reverse, self._payload)

    def _walk(self, lo: int, hi: int, reverse: bool, decode: Callable[[CID, bytes], _T]) -> Iterator[_T]:
        cursor = _Cursor(self._records, lo, hi)
        self._cursors.add(cursor)
        return self._chunks(cursor, reverse, decode)

    def _chunks(self, cursor: _Cursor, reverse: bool, decode: Callable[[CID, bytes], _T]) -> Iterator[_T]:
        # Each chunk is one sequential cursor walk over the stored entries, decoded with GC paused.
        starts = range(cursor.lo, cursor.hi, _CHUNK)
        for start in reversed(starts) if reverse else starts:
            end = min(start + _CHUNK, cursor.hi)
            records = cursor.read(start, end)
            with gc_paused():
                values = self._store.read_run(self._lognum, records)
                chunk = [decode(record_cid(records, i), value) for i, value in enumerate(values)]
            yield from reversed(chunk) if reverse else chunk

    def _payload(self, cid: CID, value: bytes) -> tuple[CID, IPLDKind]:
        try:
            return cid, decode_unchecked_links(value[4 + int.from_bytes(value[:4], "big") :])
        except CodecError as e:
            raise StorageCorruptError(
                f"stored entry's payload does not decode: {e}", self._store.env.path, cid
            ) from e

    def extend(self, entries: Sequence[Entry]) -> None:
        """Add the order records of newly admitted entries (themselves in log order) at the end."""
        if not entries:
            return
        added = b"".join(map(record, entries))
        in_order = self._sorted == len(self) and (
            not self._records or added[:RECORD] > self._records[-RECORD:]
        )
        self._records += added
        if in_order:
            self._sorted = len(self)

    def resort(self) -> None:
        """Move records added out of order into place (insertion for a few, a full sort for many)."""
        records, n = self._records, len(self)
        for cursor in list(self._cursors):  # positions are about to move: live iterators keep a copy
            if cursor.records is records:
                cursor.records = bytes(records[cursor.lo * RECORD : cursor.hi * RECORD])
                cursor.offset = cursor.lo
        tail = [bytes(records[i * RECORD : (i + 1) * RECORD]) for i in range(self._sorted, n)]
        del records[self._sorted * RECORD :]
        if len(tail) <= 64:
            for rec in tail:
                lo, hi = 0, len(records) // RECORD
                while lo < hi:
                    mid = (lo + hi) // 2
                    if records[mid * RECORD : (mid + 1) * RECORD] < rec:
                        lo = mid + 1
                    else:
                        hi = mid
                records[lo * RECORD : lo * RECORD] = rec
        else:
            merged = sorted([bytes(records[i : i + RECORD]) for i in range(0, len(records), RECORD)] + tail)
            records[:] = b"".join(merged)
        self._sorted = len(self)


class StoredEntries:
    """CID → entry for a stored log (an :class:`ipfs_log.storage.Entries`), through the ``where`` index.

    Membership is read from the store, where an entry is committed before the log admits it.
    """

    def __init__(self, records: LogRecords, lognum: int, reader: _Reader) -> None:
        self._store = records
        self._prefix = lognum.to_bytes(4, "big")
        self._reader = reader

    def __contains__(self, cid: object) -> bool:
        if not isinstance(cid, CID):
            return False
        key = self._store.entry_key(cid)
        return key is not None and key[:4] == self._prefix

    def __getitem__(self, cid: CID) -> Entry:
        entry = self.get(cid)
        if entry is None:
            raise KeyError(cid)
        return entry

    def get(self, cid: CID) -> Entry | None:
        """Return the entry, or None if the log does not hold it."""
        return self._reader.entry(cid) if cid in self else None

    def __setitem__(self, cid: CID, entry: Entry) -> None:
        """Nothing to keep: the entry was committed to the store before the log admitted it."""


def open_log(
    local: LocalBlockStore,
    records: LogRecords,
    identity: Identity,
    *,
    log_id: str,
    access: AccessController,
    since: int | None = None,
    commit_through: Callable[[LogStorage], LogStorage] | None = None,
    frontier: Frontier | None = None,
) -> tuple[Log, list[Entry]]:
    """Open (or create) the log ``log_id`` stored in ``local``, committing every admission durably.

    Args:
        local: the block store of the environment (the log reads blocks through it).
        records: the stored logs of the same environment.
        identity: the writer the log appends as.
        log_id: the log's id (its database's address).
        access: who may write.
        since: an admission number, e.g. the one a checkpoint was taken at.
        commit_through: wraps the log's storage (e.g. to journal committed entries for upload).
        frontier: where the log starts, if it was opened from a commit (its first records are the
            frontier's heads).

    Returns:
        The log, and (in log order) the entries it admitted as number ``since`` or later: what a
        checkpoint taken at ``since`` does not cover.

    Raises:
        StorageCorruptError: a stored head or index record is damaged.
        BlockStoreError: the store cannot be read or written.
    """
    lognum = records.number(log_id)
    assert lognum is not None
    reader = _Reader(local, log_id)
    packed, late = records.order(lognum, since)
    order = StoredOrder(records, lognum, packed, reader)
    entries = StoredEntries(records, lognum, reader)
    head_cids = records.heads(lognum)
    if bool(head_cids) != bool(len(order)):
        raise StorageCorruptError(f"order index of log {log_id!r} does not match its heads", local.path)
    heads = [reader.entry(c) for c in head_cids]
    if any(c not in entries for c in head_cids):
        raise StorageCorruptError(f"a head of log {log_id!r} is not in its order index", local.path)
    storage: LogStorage = StoredLog(records, lognum)
    if commit_through is not None:
        storage = commit_through(storage)
    log = Log.restore(
        identity, local, log_id=log_id, access=access, entries=entries, order=order, heads=heads,
        storage=storage, frontier=frontier,
    )  # fmt: skip
    return log, [order[i] for i in late]


def reread(local: LocalBlockStore, records: LogRecords, log_id: str) -> tuple[StoredEntries, StoredOrder]:
    """Read a stored log's entries and order again (after a compaction rewrote them).

    Raises:
        StorageCorruptError: the order index is damaged.
        BlockStoreError: the store cannot be read.
    """
    lognum = records.number(log_id, create=False)
    assert lognum is not None
    reader = _Reader(local, log_id)
    packed, _ = records.order(lognum)
    return StoredEntries(records, lognum, reader), StoredOrder(records, lognum, packed, reader)


def admitted_since(log: Log, records: LogRecords, since: int) -> list[Entry]:
    """Return the entries of a stored ``log`` admitted as number ``since`` or later, in admission order.

    Raises:
        StorageCorruptError: the order index is damaged.
        BlockStoreError: the store cannot be read.
    """
    lognum = records.number(log.id, create=False)
    if lognum is None:
        return []
    packed, late = records.order(lognum, since)
    return [log.get(record_cid(packed, i)) for i in late]
