"""Where a log starts when it does not hold its whole history: a frontier and what lies under it.

A log opened from a trusted commit (a snapshot) or compacted holds the commit's heads (the
**frontier**) but not their ancestors: the state those ancestors produced came from elsewhere. Entries
that arrive later are of three kinds, and a log must tell them apart to merge as a full replica does:

- descendants of the frontier: their ``next`` links end at the frontier, which the log holds;
- entries concurrent with it: new to the log, though their own ancestors may lie under the frontier;
- entries under the frontier (its ancestors): already part of the state, so never admitted again
  (a counter would count them twice).

:class:`Frontier` answers "is this CID under the frontier?" exactly. Lamport clocks bound it: an
ancestor of the frontier is older than the newest frontier head, and every path from a head down to an
entry passes only through entries with a larger time, so walking down from the heads through entries
no older than ``t`` finds every ancestor of time ``t``. The frontier remembers what it walked
(:attr:`Frontier.under`, CID → clock time), walks only as deep as an arriving entry needs, and is
told (``complete=True``) when it already holds every ancestor, as a compacted log does. The walk is a
sans-I/O flow like the log's fetch (it yields the CIDs it wants and is sent the blocks), and each
block it reads is verified as an entry of the log: its hash links it to the trusted heads.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> alice = Identity.from_seed(b"a" * 32)
>>> store = MemoryBlockStore()
>>> full = Log(alice, store, log_id="f")
>>> first, second, third = (full.append(n) for n in range(3))
>>> frontier = Frontier([third], count=3)
>>> from ipfs_log.fetch import run_flow
>>> run_flow(frontier.walk(1, log_id="f", access=full.access, limits=full.limits), store)
>>> sorted(frontier.under.values())
[1, 2]
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, MutableMapping

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.entry import Entry, Limits
from ipfs_log.errors import BlockNotFoundError, ClockError

__all__ = ["Frontier", "WalkFlow", "ancestors"]

WalkFlow = Generator[list[CID], dict[CID, bytes], None]
"""A walk down from the frontier: yields the CIDs it wants, is sent the blocks found."""


class Frontier:
    """The heads a log starts at, and the knowledge of what lies under them.

    Args:
        heads: the frontier's entries (a commit's heads), held by the log.
        count: how many entries are reachable from them, the heads included (the commit's count).
        under: ancestors already known, CID → clock time.
        complete: ``under`` holds every ancestor (a compacted log that listed them). ``under`` is then
            used as given, not copied: it may be a view over storage (nothing is added to it).
    """

    __slots__ = ("_bounds", "_complete", "count", "heads", "top", "under")

    def __init__(
        self,
        heads: Iterable[Entry],
        *,
        count: int,
        under: Mapping[CID, int] | MutableMapping[CID, int] | None = None,
        complete: bool = False,
    ) -> None:
        held = list(heads)
        self.heads: frozenset[CID] = frozenset(e.cid for e in held)
        self.count = count
        self.top = max((e.time for e in held), default=0)
        """The newest head's time: nothing at this time or later is under the frontier."""
        self.under: MutableMapping[CID, int] = (
            under if complete and isinstance(under, MutableMapping) else dict(under or {})
        )
        self._complete = complete
        # Ancestors named but not read yet, with an upper bound on their time (their child's, minus 1).
        self._bounds: dict[CID, int] = {}
        if not complete:
            for entry in held:
                self._name(entry)

    @property
    def complete(self) -> bool:
        """Whether :attr:`under` holds every ancestor of the frontier (nothing is left to walk)."""
        return self._complete or not self._bounds

    def _name(self, entry: Entry) -> None:
        bound = entry.time - 1
        for link in entry.next:
            if link not in self.under and link not in self.heads:
                held = self._bounds.get(link)
                self._bounds[link] = bound if held is None else min(bound, held)

    def is_under(self, cid: CID) -> bool:
        """Return whether ``cid`` is known to be under the frontier."""
        return cid in self.under

    def may_be_under(self, time: int) -> bool:
        """Return whether an entry of clock ``time`` not known yet could still be under the frontier."""
        if time >= self.top or self._complete:
            return False
        return any(bound >= time for bound in self._bounds.values())

    def walk(self, time: int, *, log_id: str, access: AccessController, limits: Limits) -> WalkFlow:
        """Return a flow that walks down from the frontier until every ancestor of ``time`` or later is known.

        Each block read is verified as an entry of the log (``log_id``, ``access``, ``limits``) and its
        time checked against the bound its child gives; a block no store holds raises, leaving what was
        learnt in place (a later walk resumes from there).

        Raises:
            BlockNotFoundError: an ancestor's block is not to be had: whether an entry is under the
                frontier cannot be decided (a log that dropped its history needs a source that kept it).
            EntryRejectedError: an ancestor's block is not a valid entry of the log.
        """
        while True:
            want = [cid for cid, bound in self._bounds.items() if bound >= time]
            if not want:
                return
            blocks = yield want
            for cid in want:
                block = blocks.get(cid)
                if block is None:
                    raise BlockNotFoundError(
                        cid, f"block not found: {cid} (an ancestor of the frontier of log {log_id!r})"
                    )
                entry = Entry.from_block(cid, block, log_id=log_id, access=access, limits=limits)
                bound = self._bounds.pop(cid, None)
                if bound is not None and entry.time > bound:
                    raise ClockError(f"entry {cid} is newer than its child under the frontier", cid)
                self.under[cid] = entry.time
                self._name(entry)


def ancestors(newest_first: Iterable[Entry], heads: Iterable[Entry]) -> dict[CID, int]:
    """Return the entries of ``newest_first`` under ``heads`` (their ancestors, not themselves): CID → time.

    ``newest_first`` is a log's entries, newest first (reverse log order): a child comes before its
    parents, so one pass finds every ancestor the entries hold. Ancestors not among them (under the
    log's own frontier) are not listed.

    >>> from ipfs_log import Identity, Log, MemoryBlockStore
    >>> log = Log(Identity.from_seed(b"a" * 32), MemoryBlockStore(), log_id="f")
    >>> first, second, third = (log.append(n) for n in range(3))
    >>> sorted(ancestors(reversed(list(log)), [second]).values())
    [1]
    """
    held = list(heads)
    wanted: set[CID] = {c for e in held for c in e.next}
    top = max((e.time for e in held), default=0)
    found: dict[CID, int] = {}
    for entry in newest_first:
        if not wanted:
            break
        if entry.time >= top or entry.cid not in wanted:
            continue
        wanted.discard(entry.cid)
        found[entry.cid] = entry.time
        wanted.update(entry.next)
    return found
