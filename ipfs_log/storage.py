"""Where a log keeps its entries: the containers and the durable write a :class:`~ipfs_log.Log` uses.

A log holds its admitted entries in an :class:`Entries` map (CID → entry) and an :class:`Order` (the
entries in log order), and makes each admission durable through a :class:`LogStorage` before it changes.
By default all three are in memory (a dict, an :class:`EntryList`, and :class:`BlockStorage` putting
blocks into the log's block store); orbit's stored log implements them over its own files, so a log
can be reopened without replaying it (:meth:`ipfs_log.Log.restore`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.clock import by_sort_key
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry

__all__ = ["BlockStorage", "Entries", "EntryList", "LogStorage", "Order"]


class LogStorage(Protocol):
    """Where a log makes its admissions durable: the one write the log calls, before it changes.

    Admission is one step that the log drives: verify, then :meth:`commit` the new entries and the
    new heads, and only when that returned change the log's memory, notify subscribers and let stores
    apply. So nothing a caller can read changes before the write behind it is committed.
    """

    def commit(self, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        """Store ``entries`` (in log order) and the log's new ``heads`` durably, in one step.

        ``first`` is how many entries the log held before these (a log only grows, so it is also the
        admission number of ``entries[0]``).

        Raises:
            OrbitError: the write failed; storage is as it was before the call.
        """
        ...


class BlockStorage:
    """The default :class:`LogStorage`: each admitted entry's block is put into a block store."""

    __slots__ = ("store",)

    def __init__(self, store: BlockStore) -> None:
        self.store = store

    def commit(self, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        """Put the entries' blocks with one ``put_many`` (heads live in the log's memory only)."""
        self.store.put_many((e.cid, e.block) for e in entries)


class Order(Protocol):
    """The log's entries in log order: what :meth:`ipfs_log.Log.restore` accepts besides the default list.

    A persistent implementation can keep only the CIDs and sort keys in memory and read entries from
    its store when asked for them.
    """

    def __len__(self) -> int:
        """Return the number of entries."""
        ...

    def __iter__(self) -> Iterator[Entry]:
        """Iterate over every entry, oldest first."""
        ...

    def cid_at(self, i: int) -> CID:
        """Return the CID of the entry at position ``i`` (negative counts from the end)."""
        ...

    def sort_key_at(self, i: int) -> tuple[int, bytes, bytes]:
        """Return the sort key of the entry at position ``i`` (negative counts from the end)."""
        ...

    def span(self, lo: int, hi: int, reverse: bool) -> Iterator[Entry]:
        """Iterate over positions ``lo`` to ``hi - 1``, newest first if ``reverse``."""
        ...

    def payloads(self, lo: int, hi: int, reverse: bool) -> Iterator[tuple[CID, IPLDKind]]:
        """Like :meth:`span`, but yield ``(cid, payload)`` pairs."""
        ...

    def extend(self, entries: Sequence[Entry]) -> None:
        """Add newly admitted entries at the end (they may then need :meth:`resort`)."""
        ...

    def resort(self) -> None:
        """Restore log order after :meth:`extend` added entries that sort before the last one."""
        ...


class Entries(Protocol):
    """CID → entry for every admitted entry: what :meth:`ipfs_log.Log.restore` accepts besides a dict."""

    def __contains__(self, cid: object) -> bool:
        """Return whether the log holds the entry."""
        ...

    def __getitem__(self, cid: CID) -> Entry:
        """Return the entry; raise KeyError if the log does not hold it."""
        ...

    def __setitem__(self, cid: CID, entry: Entry) -> None:
        """Record a newly admitted entry."""
        ...

    def get(self, cid: CID) -> Entry | None:
        """Return the entry, or None."""
        ...


class EntryList(list[Entry]):
    """The default :class:`Order`: every entry in memory, a list in log order."""

    __slots__ = ()

    def cid_at(self, i: int) -> CID:
        """Return the CID of the entry at position ``i`` (negative counts from the end)."""
        return self[i].cid

    def sort_key_at(self, i: int) -> tuple[int, bytes, bytes]:
        """Return the sort key of the entry at position ``i`` (negative counts from the end)."""
        return self[i].sort_key

    def span(self, lo: int, hi: int, reverse: bool) -> Iterator[Entry]:
        """Iterate over positions ``lo`` to ``hi - 1``, newest first if ``reverse``."""
        # A copy of the range: the iterator holds, whatever is admitted while it runs.
        return reversed(self[lo:hi]) if reverse else iter(self[lo:hi])

    def payloads(self, lo: int, hi: int, reverse: bool) -> Iterator[tuple[CID, IPLDKind]]:
        """Like :meth:`span`, but yield ``(cid, payload)`` pairs."""
        return ((e.cid, e.payload) for e in self.span(lo, hi, reverse))

    def resort(self) -> None:
        """Restore log order after :meth:`extend` added entries that sort before the last one."""
        self.sort(key=by_sort_key)
