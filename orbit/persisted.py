"""Logs kept in the local block store: written durably on every admit, reopened without a replay.

Opening a stored log reads its heads and its order index (one small key per entry, in log order) and
hands :meth:`ipfs_log.Log.restore` *lazy* containers: an entry is read from the store, hash-checked and
decoded only when something asks for it, and dropped afterwards. So reopening costs a cursor walk over
the order index, not a decode and a signature check per entry, and iterating a million-entry log holds
one entry at a time. Entries admitted in this session stay in memory, as in an ordinary log.

Every batch of entries the log admits (an append or a join) is recorded, with the log's new heads, in
one transaction committed before the append or join returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, cast, overload

import cbrrr

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.entry import Entry
from ipfs_log.identity import Identity
from ipfs_log.log import Log
from orbit.blockstore.local import LocalBlockStore, OrderIndex
from orbit.errors import StorageCorruptError

__all__ = ["LogBlocks", "open_log"]

_FIELDS: Final = frozenset(("v", "id", "clock", "next", "refs", "payload", "key", "sig"))
_decode: Callable[..., Any] = cbrrr.decode_dag_cbor


class LogBlocks:
    """The block store a persisted log sees: reads go to the local store, writes wait for the commit.

    ``put_many`` stages blocks into the store's open transaction; the log's subscriber then records
    the admitted entries and the new heads and commits everything at once.
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
        """Stage a block; it is committed with the entries the log admits next.

        Raises:
            BlockStoreError: the write failed.
        """
        self.local.stage(((cid, block),))

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Stage blocks; they are committed with the entries the log admits next.

        Raises:
            BlockStoreError: the write failed.
        """
        self.local.stage(blocks)

    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        return self.local.has(cid)


class _Reader:
    """Reads stored entries back: hash checked by the store, decoded, fields checked, no signature."""

    __slots__ = ("local", "log_id")

    def __init__(self, local: LocalBlockStore, log_id: str) -> None:
        self.local = local
        self.log_id = log_id

    def entry(self, cid: CID) -> Entry:
        return self._decode(cid, self.local.get(cid))

    def entries(self, cids: Sequence[CID]) -> list[Entry]:
        blocks = self.local.get_many(cids)
        decode = self._decode
        try:
            return [decode(cid, blocks[cid]) for cid in cids]
        except KeyError as e:
            raise StorageCorruptError(
                "block of a stored entry is missing", self.local.path, e.args[0]
            ) from None

    def _decode(self, cid: CID, block: bytes) -> Entry:
        try:
            body = _decode(block, cid_ctor=CID)
            clock = body["clock"]
            t, k = clock["time"], body["key"]
            entry = Entry(
                cid, block, body["id"], t, k, tuple(body["next"]), tuple(body["refs"]), body["payload"],
                body["sig"], (t, k, bytes(cid)),
            )  # fmt: skip
            ok = body["id"] == self.log_id and type(t) is int and len(body) == 8
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise StorageCorruptError(f"stored entry does not decode: {e}", self.local.path, cid) from e
        if not ok:
            raise StorageCorruptError(
                f"stored block is not an entry of log {self.log_id!r}", self.local.path, cid
            )
        return entry


_CHUNK: Final = 256


class _LazyOrder:
    """The log's entries in order: stored ones by CID (read on access), new ones as objects."""

    def __init__(self, index: OrderIndex, reader: _Reader) -> None:
        self._cids = index.cids
        self._keys = index.keys
        self._live: dict[int, Entry] = {}
        self._reader = reader

    def __len__(self) -> int:
        return len(self._cids)

    def _at(self, i: int) -> Entry:
        live = self._live.get(i)
        if live is not None:
            return live
        return self._reader.entry(self._cids[i])

    def _iter(self, positions: range) -> Iterator[Entry]:
        live, cids, read = self._live, self._cids, self._reader.entries
        for start in range(0, len(positions), _CHUNK):
            chunk = positions[start : start + _CHUNK]
            if live and any(i in live for i in chunk):
                yield from (self._at(i) for i in chunk)
            else:
                yield from read([cids[i] for i in chunk])

    @overload
    def __getitem__(self, i: int) -> Entry: ...
    @overload
    def __getitem__(self, i: slice) -> _Slice: ...
    def __getitem__(self, i: int | slice) -> Entry | _Slice:
        if isinstance(i, slice):
            return _Slice(self, range(len(self._cids))[i])
        n = len(self._cids)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("log position out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[Entry]:
        return self._iter(range(len(self._cids)))

    def __reversed__(self) -> Iterator[Entry]:
        return self._iter(range(len(self._cids) - 1, -1, -1))

    def append(self, entry: Entry) -> None:
        self.extend((entry,))

    def extend(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            self._live[len(self._cids)] = e
            self._cids.append(e.cid)
            self._keys.append(e.time.to_bytes(8, "big") + e.key + e.cid)

    def sort(self, *, key: object = None, reverse: bool = False) -> None:
        """Sort by the log's total order (the only order a log uses); ``key`` is ignored."""
        by_cid = {e.cid: e for e in self._live.values()}
        pairs = sorted(zip(self._keys, self._cids, strict=True), reverse=reverse)
        self._keys = [k for k, _ in pairs]
        self._cids = [c for _, c in pairs]
        self._live = {pos: by_cid[c] for pos, c in enumerate(self._cids) if c in by_cid}


class _Slice:
    """A lazy range of a :class:`_LazyOrder`."""

    __slots__ = ("_order", "_range")

    def __init__(self, order: _LazyOrder, positions: range) -> None:
        self._order = order
        self._range = positions

    def __len__(self) -> int:
        return len(self._range)

    def __iter__(self) -> Iterator[Entry]:
        return self._order._iter(self._range)

    def __getitem__(self, i: int) -> Entry:
        return self._order._at(self._range[i])


class _LazyEntries:
    """CID -> entry for every admitted entry: membership from a set, entries read on access."""

    def __init__(self, members: set[CID], reader: _Reader) -> None:
        self._members = members
        self._live: dict[CID, Entry] = {}
        self._reader = reader

    def __contains__(self, cid: object) -> bool:
        return cid in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[CID]:
        return iter(self._members)

    def __getitem__(self, cid: CID) -> Entry:
        live = self._live.get(cid)
        if live is not None:
            return live
        if cid not in self._members:
            raise KeyError(cid)
        return self._reader.entry(cid)

    def get(self, cid: CID, default: Entry | None = None) -> Entry | None:
        return self[cid] if cid in self._members else default

    def __setitem__(self, cid: CID, entry: Entry) -> None:
        self._members.add(cid)
        self._live[cid] = entry


class _LazyReferenced:
    """The CIDs named in some admitted entry's ``next``, without reading a stored entry.

    In a complete stored log every entry that is not a head is named by another one, so the stored
    part is "stored and not a stored head"; what is admitted later is kept explicitly.
    """

    def __init__(self, stored: set[CID], stored_heads: frozenset[CID]) -> None:
        self._stored = stored
        self._stored_heads = stored_heads
        self._added: set[CID] = set()

    def __contains__(self, cid: object) -> bool:
        return cid in self._added or (cid in self._stored and cid not in self._stored_heads)

    def add(self, cid: CID) -> None:
        self._added.add(cid)

    def update(self, cids: Iterable[CID]) -> None:
        self._added.update(cids)


def open_log(
    local: LocalBlockStore,
    identity: Identity,
    *,
    log_id: str,
    access: AccessController,
) -> Log:
    """Open (or create) the log ``log_id`` in ``local``, recording every admitted batch durably.

    Raises:
        StorageCorruptError: a stored head or index record is damaged.
        BlockStoreError: the store cannot be read or written.
    """
    number = local.log_number(log_id)
    assert number is not None
    blocks = LogBlocks(local)
    head_cids = local.heads(number)
    if not head_cids:
        log = Log(identity, blocks, log_id=log_id, access=access)
    else:
        reader = _Reader(local, log_id)
        index = local.order(number)
        members = set(index.cids)
        if len(members) != len(index.cids) or not members.issuperset(head_cids):
            raise StorageCorruptError(f"order index of log {log_id!r} does not match its heads", local.path)
        heads = [reader.entry(c) for c in head_cids]
        log = Log.restore(
            identity,
            blocks,
            log_id=log_id,
            access=access,
            entries=cast(dict[CID, Entry], _LazyEntries(members, reader)),
            order=cast(list[Entry], _LazyOrder(index, reader)),
            heads=heads,
            referenced=cast(set[CID], _LazyReferenced(members, frozenset(head_cids))),
        )

    def record(entries: Sequence[Entry]) -> None:
        local.record(number, entries, log.head_cids)

    log.subscribe(record)
    return log
