"""A range of a log: which entries a read selects, in the log's total order.

Every ranged read (:meth:`ipfs_log.Log.iter`, :meth:`ipfs_log.Log.payloads`, :meth:`stores.EventLog.iter`
and the eventlog database's ``iter``) takes the same keywords, ``gt``, ``gte``, ``lt``, ``lte``, ``amount``
and ``reverse``: the fields of :class:`Range`, which says what they mean. :class:`RangeArgs` types them as
keyword arguments.

>>> Range(amount=2, reverse=True).positions(10, index=lambda cid: 0)
(8, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from ipfs_log.cid import CID
from ipfs_log.frozen import Frozen, frozen_init

__all__ = ["Range", "RangeArgs"]


class Range(Frozen):
    """A range of a log's entries, in log order.

    Bounds name entries by CID; each must be an entry of the log. With no field set, the range is the
    whole log, oldest first.
    """

    __match_args__ = ("gt", "gte", "lt", "lte", "amount", "reverse")
    __slots__ = __match_args__
    gt: CID | None
    """Start after this entry."""
    gte: CID | None
    """Start at this entry."""
    lt: CID | None
    """Stop before this entry."""
    lte: CID | None
    """Stop after this entry."""
    amount: int | None
    """Select at most this many entries, counted from the start of the iteration (0 or less: none)."""
    reverse: bool
    """Newest first; ``reverse=True, amount=n`` selects the newest ``n``."""

    def __init__(
        self,
        gt: CID | None = None,
        gte: CID | None = None,
        lt: CID | None = None,
        lte: CID | None = None,
        amount: int | None = None,
        reverse: bool = False,
    ) -> None:
        frozen_init(self, gt, gte, lt, lte, amount, reverse)

    def positions(self, length: int, index: Callable[[CID], int]) -> tuple[int, int]:
        """Return the positions ``lo, hi`` (``lo`` included, ``hi`` not) the range selects.

        Args:
            length: how many entries the log holds.
            index: the position of an entry of the log, given its CID.

        Raises:
            EntryNotFoundError: ``index`` raises it for a bound the log does not hold.
        """
        lo, hi = 0, length
        if self.gt is not None:
            lo = index(self.gt) + 1
        if self.gte is not None:
            lo = max(lo, index(self.gte))
        if self.lt is not None:
            hi = index(self.lt)
        if self.lte is not None:
            hi = min(hi, index(self.lte) + 1)
        amount = self.amount
        if amount is not None:
            if amount <= 0:
                return 0, 0
            if self.reverse:
                lo = max(lo, hi - amount)
            else:
                hi = min(hi, lo + amount)
        return lo, hi


class RangeArgs(TypedDict, total=False):
    """The fields of a :class:`Range` as keyword arguments (``**bounds: Unpack[RangeArgs]``)."""

    gt: CID | None
    gte: CID | None
    lt: CID | None
    lte: CID | None
    amount: int | None
    reverse: bool
