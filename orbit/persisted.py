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
transaction committed before the append or join returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, TypeVar

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode_unchecked_links
from ipfs_log.entry import Entry
from ipfs_log.errors import CodecError
from ipfs_log.identity import Identity
from ipfs_log.log import Log, gc_paused
from orbit.blockstore.local import LocalBlockStore
from orbit.errors import StorageCorruptError

__all__ = ["LogBlocks", "StoredEntries", "StoredOrder", "open_log"]

_T = TypeVar("_T")
_RECORD: Final = 76  # time (8, big-endian) + writer key (32) + CID (36)
_CHUNK: Final = 512


class LogBlocks:
    """The block store a persisted log sees: reads go to the local store; writes wait for the record.

    The log calls ``put_many`` with the blocks of entries it is about to admit, and then tells its
    subscribers, the first of which (installed by :func:`open_log`) writes those entries, their order
    keys and the new heads in one committed transaction. So ``put``/``put_many`` have nothing to do.
    """

    __slots__ = ("local",)

    def __init__(self, local: LocalBlockStore) -> None:
        self.local = local

    def get(self, cid: CID) -> bytes:
        """Return the block's bytes, checked against its CID.

        Raises:
            BlockNotFoundError: the store does not hold it.
            StorageCorruptError: the stored bytes do not hash to ``cid``.
        """
        return self.local.get(cid)

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``.

        Raises:
            StorageCorruptError: a stored block does not hash to its CID.
        """
        return self.local.get_many(cids)

    def put(self, cid: CID, block: bytes) -> None:
        """Nothing to do: the entry is written when the log admits it."""

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Nothing to do: the entries are written when the log admits them."""

    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        return self.local.has(cid)


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


class StoredOrder:
    """A stored log's entries in log order (an :class:`ipfs_log.log.Order`), read on demand.

    Only the packed 76-byte order records live in memory. Entries admitted in this session are written
    by the log's first subscriber before anyone reads them, so every position reads from the store.
    """

    def __init__(self, local: LocalBlockStore, number: int, records: bytearray, reader: _Reader) -> None:
        self._local = local
        self._number = number
        self._records = records
        self._reader = reader
        self._sorted = len(records) // _RECORD  # positions before this are in log order

    def __len__(self) -> int:
        return len(self._records) // _RECORD

    def _offset(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("log position out of range")
        return i * _RECORD

    def cid_at(self, i: int) -> CID:
        """Return the CID at position ``i``."""
        o = self._offset(i)
        return CID(self._records[o + 40 : o + _RECORD])

    def sort_key_at(self, i: int) -> tuple[int, bytes, bytes]:
        """Return ``(time, writer key, CID bytes)`` at position ``i``, without reading the entry."""
        o = self._offset(i)
        r = self._records
        return int.from_bytes(r[o : o + 8], "big"), bytes(r[o + 8 : o + 40]), bytes(r[o + 40 : o + _RECORD])

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
        # Each chunk is one sequential cursor walk over the stored entries, decoded with GC paused.
        starts = range(lo, hi, _CHUNK)
        for start in reversed(starts) if reverse else starts:
            end = min(start + _CHUNK, hi)
            records = bytes(self._records[start * _RECORD : end * _RECORD])
            with gc_paused():
                values = self._local.read_run(self._number, records)
                chunk = [
                    decode(CID(records[i * _RECORD + 40 : (i + 1) * _RECORD]), value)
                    for i, value in enumerate(values)
                ]
            yield from reversed(chunk) if reverse else chunk

    def _payload(self, cid: CID, value: bytes) -> tuple[CID, IPLDKind]:
        try:
            return cid, decode_unchecked_links(value[4 + int.from_bytes(value[:4], "big") :])
        except CodecError as e:
            raise StorageCorruptError(
                f"stored entry's payload does not decode: {e}", self._local.path, cid
            ) from e

    def extend(self, entries: Sequence[Entry]) -> None:
        """Add the order records of newly admitted entries (themselves in log order) at the end."""
        if not entries:
            return
        added = b"".join(e.time.to_bytes(8, "big") + e.key + e.cid for e in entries)
        in_order = self._sorted == len(self) and (
            not self._records or added[:_RECORD] > self._records[-_RECORD:]
        )
        self._records += added
        if in_order:
            self._sorted = len(self)

    def resort(self) -> None:
        """Move records added out of order into place (insertion for a few, a full sort for many)."""
        records, n = self._records, len(self)
        tail = [bytes(records[i * _RECORD : (i + 1) * _RECORD]) for i in range(self._sorted, n)]
        del records[self._sorted * _RECORD :]
        if len(tail) <= 64:
            for record in tail:
                lo, hi = 0, len(records) // _RECORD
                while lo < hi:
                    mid = (lo + hi) // 2
                    if records[mid * _RECORD : (mid + 1) * _RECORD] < record:
                        lo = mid + 1
                    else:
                        hi = mid
                records[lo * _RECORD : lo * _RECORD] = record
        else:
            merged = sorted([bytes(records[i : i + _RECORD]) for i in range(0, len(records), _RECORD)] + tail)
            records[:] = b"".join(merged)
        self._sorted = len(self)


class StoredEntries:
    """CID → entry for a stored log (an :class:`ipfs_log.log.Entries`), through the ``where`` index.

    Entries the log admits are held here only until the log's first subscriber has stored them
    (:meth:`stored`), so membership is exact in between.
    """

    def __init__(self, local: LocalBlockStore, number: int, reader: _Reader) -> None:
        self._local = local
        self._prefix = number.to_bytes(4, "big")
        self._reader = reader
        self._unstored: dict[CID, Entry] = {}

    def __contains__(self, cid: object) -> bool:
        if not isinstance(cid, CID):
            return False
        if cid in self._unstored:
            return True
        key = self._local.entry_key(cid)
        return key is not None and key[:4] == self._prefix

    def __getitem__(self, cid: CID) -> Entry:
        entry = self.get(cid)
        if entry is None:
            raise KeyError(cid)
        return entry

    def get(self, cid: CID) -> Entry | None:
        """Return the entry, or None if the log does not hold it."""
        entry = self._unstored.get(cid)
        if entry is None and cid in self:
            entry = self._reader.entry(cid)
        return entry

    def __setitem__(self, cid: CID, entry: Entry) -> None:
        """Hold a newly admitted entry until the log's first subscriber has stored it."""
        self._unstored[cid] = entry

    def stored(self) -> None:
        """Forget the held entries: they are in the store now."""
        self._unstored.clear()


def open_log(
    local: LocalBlockStore,
    identity: Identity,
    *,
    log_id: str,
    access: AccessController,
    since: int | None = None,
) -> tuple[Log, list[Entry]]:
    """Open (or create) the log ``log_id`` in ``local``, recording every admitted batch durably.

    Args:
        local: the local block store.
        identity: the writer the log appends as.
        log_id: the log's id (its database's address).
        access: who may write.
        since: an admission number, e.g. the one a checkpoint was taken at.

    Returns:
        The log, and (in log order) the entries it admitted as number ``since`` or later: what a
        checkpoint taken at ``since`` does not cover.

    Raises:
        StorageCorruptError: a stored head or index record is damaged.
        BlockStoreError: the store cannot be read or written.
    """
    number = local.log_number(log_id)
    assert number is not None
    reader = _Reader(local, log_id)
    records, late = local.order(number, since)
    order = StoredOrder(local, number, records, reader)
    entries = StoredEntries(local, number, reader)
    head_cids = local.heads(number)
    if bool(head_cids) != bool(len(order)):
        raise StorageCorruptError(f"order index of log {log_id!r} does not match its heads", local.path)
    heads = [reader.entry(c) for c in head_cids]
    if any(c not in entries for c in head_cids):
        raise StorageCorruptError(f"a head of log {log_id!r} is not in its order index", local.path)
    log = Log.restore(
        identity, LogBlocks(local), log_id=log_id, access=access, entries=entries, order=order, heads=heads
    )

    def record(admitted: Sequence[Entry]) -> None:
        local.record(number, admitted, log.head_cids, len(log) - len(admitted))
        entries.stored()

    log.subscribe(record)
    return log, [order[i] for i in late]
