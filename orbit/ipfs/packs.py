"""Packs: a database's history as a few CAR files on the node, so a reader fetches it in a few streams.

Kubo moves files fast and DAGs of small blocks slowly: ``cat`` of a 1.3 MB file takes tens of
milliseconds, on the node or from a peer over bitswap, while ``dag/export`` of the same 4,000 entries
walks the DAG one block at a time (seconds on the node, minutes from a peer; measured in
``bench/kubo.py``). So besides uploading every entry as a block (what pins, bitswap and other
programs use), the node link keeps each database's history in **packs**: CARv1 files of entry
blocks, added as UnixFS files (pinned), each covering a contiguous run of the log's admissions.

The packs form a geometric series, as in a log-structured merge: a new pack is cut once at least
:data:`MIN_PACK` entries are unpacked, and it absorbs the packs before it that are no larger than
itself (up to :data:`MAX_PACK_ENTRIES`), so a log of ``n`` entries has O(log n) packs and each entry
is rewritten O(log n) times. The heads record names them; a reader reads each with ``cat``
(bounded), checks
every block against its CID while reading the CAR, and joins the heads from them, verifying every
entry as always — a pack is only a faster way to bring blocks, never trusted.

This module holds the policy (:func:`plan`) and the record's form; :mod:`orbit.ipfs.node_link` does
the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind

__all__ = ["MAX_PACKS", "MAX_PACK_BYTES", "MAX_PACK_ENTRIES", "MIN_PACK", "Pack", "Plan", "cuts", "plan"]

MIN_PACK: Final = 128
"""Entries that must be unpacked before a new pack is cut (fewer are fetched block by block)."""
MAX_PACK_ENTRIES: Final = 100_000
"""A pack never grows past this many entries by merging (it is rewritten whole when it merges)."""
MAX_PACK_BYTES: Final = 512 << 20
"""Largest pack a reader accepts."""
MAX_PACKS: Final = 64
"""Most packs a heads record may name."""


@dataclass(frozen=True, slots=True)
class Pack:
    """One pack: the UnixFS file ``cid`` holding the entries admitted as ``first`` … ``first + count - 1``."""

    cid: CID
    first: int
    count: int

    @property
    def end(self) -> int:
        """The admission number after the pack's last entry."""
        return self.first + self.count

    def to_ipld(self) -> dict[str, IPLDKind]:
        """The pack as the heads record holds it."""
        return {"cid": self.cid, "first": self.first, "count": self.count}

    @classmethod
    def from_ipld(cls, value: Any) -> Pack | None:
        """Return the pack a record names, or None if ``value`` is not a well-formed pack."""
        if not isinstance(value, dict) or set(value) != {"cid", "first", "count"}:
            return None
        cid, first, count = value["cid"], value["first"], value["count"]
        if type(cid) is not CID or type(first) is not int or type(count) is not int:
            return None
        if first < 0 or not 0 < count <= MAX_PACK_ENTRIES:
            return None
        return cls(cid, first, count)


def cuts(first: int, end: int) -> list[tuple[int, int]]:
    """The packs ``(first, count)`` a plan's run of admissions ``first`` … ``end - 1`` is written as.

    Consecutive, none over :data:`MAX_PACK_ENTRIES` (what a reader accepts): a history written faster
    than packs were cut (a batch of 300,000 entries) becomes several packs, not one a reader refuses.

    >>> cuts(0, 250_000)
    [(0, 100000), (100000, 100000), (200000, 50000)]
    """
    return [(at, min(MAX_PACK_ENTRIES, end - at)) for at in range(first, end, MAX_PACK_ENTRIES)]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do now: pack the admissions from ``first`` to the log's end (in :func:`cuts`).

    It follows the packs in ``keep`` and replaces those in ``replaces`` (which it covers).
    """

    first: int
    keep: tuple[Pack, ...]
    replaces: tuple[Pack, ...]


def plan(packs: Sequence[Pack], admitted: int) -> Plan | None:
    """Decide whether to cut a pack, given the packs so far and how many entries the log admitted.

    Returns None while fewer than :data:`MIN_PACK` entries are unpacked. Packs that do not end where
    the next begins (a record from an older history) are replaced by the new pack.

    >>> p = plan([], 1000)
    >>> p.first, p.replaces
    (0, ())
    >>> one = Pack(CID.for_block(b"a"), 0, 1000)
    >>> plan([one], 1100) is None  # 100 new entries: not yet
    True
    >>> plan([one], 2000).first  # 1000 new: as large as the pack before, so it absorbs it
    0
    >>> plan([one], 1200).first  # 200 new: a pack of its own
    1000
    """
    keep = list(packs)
    end = 0
    for i, pack in enumerate(keep):
        if pack.first != end or pack.end > admitted:
            keep = keep[:i]
            break
        end = pack.end
    if admitted - end < MIN_PACK:
        return None
    first = end
    while keep and keep[-1].count <= admitted - first and admitted - keep[-1].first <= MAX_PACK_ENTRIES:
        first = keep.pop().first
    while len(keep) >= MAX_PACKS:  # a pathological history: fold the newest kept packs in
        first = keep.pop().first
    replaced = tuple(p for p in packs if p not in keep)
    return Plan(first, tuple(keep), replaced)
