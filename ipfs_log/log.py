"""The operation log: a grow-only set of signed entries linked into a DAG, with one total order.

A :class:`Log` is the one object in the core that grows. :meth:`Log.append` signs a new entry on top of
the current heads; :meth:`Log.join_heads` fetches what it is missing from a block store, verifies every
new entry (hash, encoding, fields, log id, signer binding, permission, signature, clock rule) and admits
it. Join is idempotent, commutative and associative: replicas that have seen the same entries hold the
same heads and the same order, ``(clock.time, writer key, CID bytes)``.

Fetching walks ``next`` and ``refs`` breadth first and asks the store for each whole frontier at once.
``refs`` are skip pointers that make the log a deterministic skip list: the entry appended at position
``n`` points back ``2**k`` places for every ``k >= 1`` with ``2**k`` dividing ``n`` (so one pointer per
entry on average), and an N-entry log arrives in at most about 2·log2(N) rounds rather than N. A join
that meets a missing block admits every entry whose history is complete, keeps the other verified
entries pending, and raises :class:`BlockNotFoundError`; calling :meth:`Log.resume` later fetches only
what is still missing.

>>> from ipfs_log import Identity, MemoryBlockStore, WriteList
>>> alice, bob = Identity.from_seed(b"a" * 32), Identity.from_seed(b"b" * 32)
>>> acl = WriteList([alice.public_key, bob.public_key])
>>> store = MemoryBlockStore()
>>> a = Log(alice, store, log_id="demo", access=acl)
>>> b = Log(bob, store, log_id="demo", access=acl)
>>> _ = a.append("a1"), b.append("b1"), a.append("a2")
>>> _ = a.join(b), b.join(a)
>>> [e.payload for e in a] == [e.payload for e in b]
True
>>> len(a.heads), len(a)
(2, 3)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Unpack

from ipfs_log.access import AccessController, WriteList
from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.clock import by_sort_key, check_clock_rule
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import DEFAULT_LIMITS, Entry, Limits
from ipfs_log.errors import (
    BlockNotFoundError,
    ClockError,
    EntryNotFoundError,
    LogError,
    PermissionDeniedError,
)
from ipfs_log.fetch import Fetched, FetchFlow, Progress, fetch_flow, run_flow
from ipfs_log.frontier import Frontier
from ipfs_log.gc import gc_paused
from ipfs_log.identity import Identity, key_to_did
from ipfs_log.ranges import Range, RangeArgs
from ipfs_log.storage import BlockStorage, Entries, EntryList, LogStorage, Order

__all__ = ["DEFAULT_MAX_REFS", "Log", "Subscriber"]

Subscriber = Callable[[Sequence[Entry]], None]
"""Called with the entries just admitted to the log (by an append or a join), in log order."""

_INVERT: Final = bytes(range(255, -1, -1))
DEFAULT_MAX_REFS: Final = 16
"""The most skip pointers an appended entry carries, unless a log is given another ``max_refs``."""


class Log:
    """A verified, mergeable operation log.

    Args:
        identity: the writer this replica appends as.
        store: where the log's blocks are written and looked up first.
        log_id: the log's id (the database address); entries of other logs are rejected.
        access: who may write; by default only ``identity``.
        limits: bounds on entries from outside.
        max_refs: the most skip pointers an appended entry carries (distances 2, 4, …, 2**max_refs).
        storage: where admissions are made durable before the log changes; by default the blocks are
            put into ``store``.
    """

    def __init__(
        self,
        identity: Identity,
        store: BlockStore,
        *,
        log_id: str,
        access: AccessController | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_refs: int = DEFAULT_MAX_REFS,
        storage: LogStorage | None = None,
    ) -> None:
        self.identity = identity
        self.store = store
        self.storage: LogStorage = storage if storage is not None else BlockStorage(store)
        self.id = log_id
        self.access: AccessController = access or WriteList([identity.public_key])
        self.limits = limits
        self.max_refs = min(max_refs, limits.max_refs)
        self._entries: Entries = {}
        self._order: Order = EntryList()
        self._heads: dict[CID, Entry] = {}
        # CIDs named in some entry's ``next``, kept only for a log loaded with a length limit: in a
        # complete log an entry is admitted after its parents, so no admitted entry can name it.
        self._referenced: set[CID] | None = None
        self._pending: dict[CID, Entry] = {}
        self._missing: set[CID] = set()
        self._subscribers: list[Subscriber] = []
        self._frontier: Frontier | None = None  # where the log starts, if not at its first entries

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, cid: object) -> bool:
        return cid in self._entries

    def __iter__(self) -> Iterator[Entry]:
        """Iterate over the entries in log order, oldest first (those admitted when it began)."""
        n = len(self._order)
        return self._order.span(0, n, False) if n else iter(())

    def __repr__(self) -> str:
        return f"Log({self.id!r}, {len(self)} entries, {len(self._heads)} heads)"

    @property
    def heads(self) -> list[Entry]:
        """The entries no other entry names in ``next``, in log order."""
        heads = list(self._heads.values())
        if len(heads) > 1:
            heads.sort(key=by_sort_key)
        return heads

    @property
    def head_cids(self) -> list[CID]:
        """The CIDs of :attr:`heads`."""
        return [e.cid for e in self.heads]

    @property
    def missing(self) -> frozenset[CID]:
        """Blocks a join needed and could not find; :meth:`resume` asks for them again."""
        return frozenset(self._missing)

    @property
    def frontier(self) -> Frontier | None:
        """Where the log starts when it does not hold its history (see :meth:`start_at`), else None."""
        return self._frontier

    @property
    def count(self) -> int:
        """How many entries are reachable from the heads: ``len(self)`` plus those under the frontier."""
        frontier = self._frontier
        if frontier is None:
            return len(self._order)
        return len(self._order) + frontier.count - len(frontier.heads)

    @property
    def pending(self) -> int:
        """How many verified entries wait for a missing ancestor before they can be admitted."""
        return len(self._pending)

    def get(self, cid: CID) -> Entry:
        """Return the entry with this CID.

        Raises:
            EntryNotFoundError: the log holds no such entry.
        """
        try:
            return self._entries[cid]
        except KeyError:
            raise EntryNotFoundError(cid) from None

    def values(self) -> list[Entry]:
        """Return all entries in log order, oldest first."""
        return list(self)

    def iter(self, **bounds: Unpack[RangeArgs]) -> Iterator[Entry]:
        """Iterate over a range of the log, oldest first unless reversed.

        Args:
            **bounds: the range, as the fields of a :class:`~ipfs_log.Range` (``gt``, ``gte``, ``lt``,
                ``lte``, ``amount``, ``reverse``); none given: every entry.

        Raises:
            EntryNotFoundError: a bound names an entry the log does not hold.
        """
        where = Range(**bounds)
        lo, hi = where.positions(len(self._order), self._index)
        return self._order.span(lo, hi, where.reverse) if lo < hi else iter(())

    def payloads(self, **bounds: Unpack[RangeArgs]) -> Iterator[tuple[CID, IPLDKind]]:
        """Iterate over ``(cid, payload)`` of a range of the log, as :meth:`iter` selects it.

        For readers that need only the operations: a persisted log reads them without building
        :class:`Entry` objects.

        Raises:
            EntryNotFoundError: a bound names an entry the log does not hold.
        """
        where = Range(**bounds)
        lo, hi = where.positions(len(self._order), self._index)
        return self._order.payloads(lo, hi, where.reverse) if lo < hi else iter(())

    def _index(self, cid: CID) -> int:
        target = self.get(cid).sort_key
        order = self._order
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if order.sort_key_at(mid) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every batch of newly admitted entries; return an unsubscribe."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    # ------------------------------------------------------------------ writing

    def append(self, payload: IPLDKind) -> Entry:
        """Sign ``payload`` into a new entry on top of the current heads, store it, admit it.

        Raises:
            PermissionDeniedError: this log's identity may not write to it; nothing was signed.
            CodecError: the payload is not an IPLD value.
            OrbitError: the storage commit failed; the log is as it was.
        """
        return self.append_many((payload,))[0]

    def append_many(self, payloads: Iterable[IPLDKind]) -> list[Entry]:
        """Append many payloads as a chain of entries, committed to storage in one step.

        Nothing is admitted unless every payload encodes and the storage committed every entry.

        Raises:
            PermissionDeniedError: this log's identity may not write to it; nothing was signed.
            CodecError: a payload is not an IPLD value.
            EntryTooLargeError: an entry would be over ``limits.max_entry_bytes``; nothing was stored.
            OrbitError: the storage commit failed; the log is as it was.
        """
        key = self.identity.public_key
        if not self.access.can_write(key):
            raise PermissionDeniedError(f"{key_to_did(key)} may not write to log {self.id!r}", None, key)
        if isinstance(payloads, (list, tuple)) and len(payloads) > 1:  # not Sequence: ABC checks are slow
            with gc_paused():
                return self._append_many(payloads)
        return self._append_many(payloads)

    def _append_many(self, payloads: Iterable[IPLDKind]) -> list[Entry]:
        identity, log_id, order, create = self.identity, self.id, self._order, Entry.create
        limit, max_refs = self.limits.max_entry_bytes, self.max_refs
        base = len(order)
        heads = self.heads
        next_cids = [e.cid for e in heads]
        time = 1 + max([e.time for e in heads], default=0)
        new: list[Entry] = []
        n = base
        for payload in payloads:
            refs: list[CID] = []
            distance = 2
            while not n % distance and distance <= n and len(refs) < max_refs:
                i = n - distance
                refs.append(order.cid_at(i) if i < base else new[i - base].cid)
                distance <<= 1
            if refs and refs[0] in next_cids:
                refs = [r for r in refs if r not in next_cids]
            # over the limit, every replica would refuse it: refused before it is signed
            entry = create(identity, log_id, payload, time=time, next=next_cids, refs=refs, max_bytes=limit)
            new.append(entry)
            next_cids = [entry.cid]
            time += 1
            n += 1
        if not new:
            return new
        last = new[-1]
        self.storage.commit(new, [last.cid], base)  # durable before visible: raises, nothing changed
        entries = self._entries
        for entry in new:
            entries[entry.cid] = entry
        if self._referenced is not None:
            self._referenced.update(c for e in new for c in e.next)
        self._heads = {last.cid: last}
        order.extend(new)
        self._notify(new)
        return new

    def _notify(self, entries: Sequence[Entry]) -> None:
        # Every subscriber hears of every admission, even when one of them raises; the first error
        # is re-raised afterwards (the admission itself is committed by then).
        error: BaseException | None = None
        for subscriber in list(self._subscribers):
            try:
                subscriber(entries)
            except Exception as e:
                error = error or e
        if error is not None:
            raise error

    # ------------------------------------------------------------------ joining

    def join(self, other: Log, *, progress: Progress | None = None) -> list[Entry]:
        """Merge ``other``'s entries into this log, fetching blocks from ``other.store``.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            EntryRejectedError: an entry failed verification; nothing from this join was admitted.
            BlockNotFoundError: a needed block is missing; what was complete was admitted.
        """
        return self.join_heads(other.head_cids, source=other.store, progress=progress)

    def resume(self, source: BlockStore | None = None) -> list[Entry]:
        """Fetch the blocks an earlier join was missing and admit what is now complete.

        Raises:
            EntryRejectedError: an entry failed verification.
            BlockNotFoundError: blocks are still missing.
        """
        return self.join_heads(list(self._missing), source=source)

    def join_heads(
        self,
        heads: Iterable[CID],
        *,
        source: BlockStore | None = None,
        progress: Progress | None = None,
    ) -> list[Entry]:
        """Fetch, verify and admit everything reachable from ``heads`` that this log lacks.

        Blocks are looked up in this log's store first, then in ``source``. It is :meth:`fetch` driven
        by :func:`~ipfs_log.fetch.run_flow` against those stores, then :meth:`admit`.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            EntryRejectedError: an entry failed verification (its subclass says how); nothing from
                this join was admitted, and verified entries stay pending for a later join.
            BlockNotFoundError: a block named by a head or a ``next`` link could not be found; every
                entry whose history is complete was admitted, the rest wait for :meth:`resume`.
            OrbitError: the storage commit failed; the log is as it was (verified entries stay
                pending, so the same join can be retried).
        """
        stores = [self.store] if source is None or source is self.store else [self.store, source]
        return self.admit(run_flow(self.fetch(heads, progress=progress), *stores))  # each pauses the GC

    def fetch(self, heads: Iterable[CID], *, progress: Progress | None = None) -> FetchFlow:
        """Return a sans-I/O flow that finds and verifies what this log lacks of ``heads``.

        The flow walks ``next`` and ``refs`` breadth first: it yields each frontier (the CIDs it wants)
        and is sent the blocks found (missing ones left out); every block is verified as an entry of
        this log before it is used. It changes nothing in the log, so it can run while the log is in
        use (e.g. fetching over a network outside the lock that guards the log); :meth:`admit` then
        admits its result. Driven by :func:`~ipfs_log.fetch.run_flow`, or by any caller that fetches
        concurrently (see :func:`~ipfs_log.fetch.fetch_flow`).
        """
        return fetch_flow(
            heads,
            log_id=self.id,
            access=self.access,
            limits=self.limits,
            entries=self._entries,
            pending=self._pending,
            progress=progress,
            frontier=self._frontier,
        )

    def admit(self, fetched: Fetched) -> list[Entry]:
        """Admit what a :meth:`fetch` flow verified: commit to storage, then change the log.

        Entries whose history is complete are committed with the new heads through the log's
        storage in one step; only then do the log's entries, heads and order change and subscribers
        hear of them. Verified entries whose parents are missing stay pending.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            EntryRejectedError: a required entry failed verification; nothing was admitted.
            ClockError: an entry breaks the clock rule; nothing was admitted.
            BlockNotFoundError: a required block is missing; what was complete was admitted.
            OrbitError: the storage commit failed; the log is as it was.
        """
        with gc_paused():  # the admitted entries' indexes (stores, views) grow by many containers
            return self._admit_fetched(fetched)

    def _admit_fetched(self, fetched: Fetched) -> list[Entry]:
        entries, pending = self._entries, self._pending
        for cid, entry in fetched.entries.items():
            if cid not in entries:
                pending[cid] = entry
        required = fetched.required
        for cid, error in fetched.failures.items():
            if cid in required:
                raise error
        # Every pending entry, not just those seen now: one kept from an earlier join that hit a
        # missing parent is admitted below once that parent arrives, and its clock is checkable only now.
        self._check_clocks(list(pending))
        admitted = self._admit()
        missing = self._missing
        missing.difference_update(e.cid for e in admitted)
        missing.update(c for c in fetched.not_found if c in required and c not in entries)
        if admitted:
            self._notify(admitted)
        if missing and any(c in missing for c in fetched.not_found):
            first = min(missing)
            raise BlockNotFoundError(
                first,
                f"block not found: {first} ({len(missing)} missing; {len(admitted)} entries "
                f"admitted, {len(pending)} verified entries wait for log.resume())",
            )
        return admitted

    def _check_clocks(self, cids: Iterable[CID]) -> None:
        entries, pending = self._entries, self._pending
        under = self._frontier.under if self._frontier is not None else {}
        for cid in cids:
            entry = pending.get(cid)
            if entry is None or not entry.next:
                continue
            times: list[int] = []
            for c in entry.next:
                parent = entries.get(c) or pending.get(c)
                time = parent.time if parent is not None else under.get(c)
                if time is not None:
                    times.append(time)
            if len(times) == len(entry.next):
                try:
                    check_clock_rule(entry.time, times, cid)
                except ClockError:
                    del pending[cid]
                    raise

    def _admit(self) -> list[Entry]:
        # Parents sort before their children (the clock rule), so one pass in log order finds every
        # pending entry whose history is complete. They and the new heads are committed to storage
        # before any state changes; a failed commit leaves them pending.
        entries, pending = self._entries, self._pending
        under = self._frontier.under if self._frontier is not None else {}
        admitted: list[Entry] = []
        admitting: set[CID] = set()
        for entry in sorted(pending.values(), key=by_sort_key):
            if entry.cid in entries or entry.cid in under:  # admitted meanwhile, or part of the state
                del pending[entry.cid]
            elif all(c in entries or c in admitting or c in under for c in entry.next):
                admitted.append(entry)
                admitting.add(entry.cid)
        if not admitted:
            return admitted
        referenced = self._referenced
        named = {c for e in admitted for c in e.next}
        heads = dict(self._heads)
        for link in named:
            heads.pop(link, None)
        for entry in admitted:
            cid = entry.cid
            if cid not in named and (referenced is None or cid not in referenced):
                heads[cid] = entry
        order = self._order
        self.storage.commit(admitted, [e.cid for e in sorted(heads.values(), key=by_sort_key)], len(order))
        for entry in admitted:
            entries[entry.cid] = entry
            del pending[entry.cid]
        if referenced is not None:
            referenced.update(named)
        self._heads = heads
        unsorted = len(order) > 0 and admitted[0].sort_key < order.sort_key_at(-1)
        order.extend(admitted)
        if unsorted:
            order.resort()
        return admitted

    # ------------------------------------------------------------------ loading

    @classmethod
    def restore(
        cls,
        identity: Identity,
        store: BlockStore,
        *,
        log_id: str,
        entries: Entries,
        order: Order,
        heads: Iterable[Entry],
        access: AccessController | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_refs: int = DEFAULT_MAX_REFS,
        storage: LogStorage | None = None,
        frontier: Frontier | None = None,
    ) -> Log:
        """Rebuild a log from state its caller already verified: nothing is fetched or checked.

        For a store that verified every entry before writing it (orbit's local store), so reopening a
        log costs neither a walk nor a signature check. The containers are used as given, and may be
        lazy views that read entries from ``store`` on demand: ``entries`` maps each admitted CID to its
        entry, ``order`` holds the entries in log order, and ``heads`` are the entries no other names
        in ``next``. The log must be complete (every entry's ancestors are in it), or start at
        ``frontier`` (see :meth:`start_at`) and hold everything after it.
        """
        log = cls(
            identity, store, log_id=log_id, access=access, limits=limits, max_refs=max_refs, storage=storage
        )
        log._entries, log._order = entries, order
        log._heads = {e.cid: e for e in heads}
        log._frontier = frontier
        return log

    @classmethod
    def start_at(
        cls,
        identity: Identity,
        store: BlockStore,
        frontier: Frontier,
        heads: Iterable[Entry],
        *,
        log_id: str,
        access: AccessController | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_refs: int = DEFAULT_MAX_REFS,
        storage: LogStorage | None = None,
    ) -> Log:
        """Start a log at ``frontier``: it holds the frontier's ``heads``, not their ancestors.

        For a log whose state up to those heads comes from elsewhere (a trusted commit's state tree,
        or a compaction): the heads are committed to ``storage`` and become the log's heads; an append
        gets a clock above theirs, and a join admits their descendants and entries concurrent with them,
        never an entry under them (see :mod:`ipfs_log.frontier`). The caller has verified ``heads``
        (e.g. with :meth:`Entry.from_block`).

        Raises:
            LogError: ``heads`` are not the frontier's, or one names another in ``next`` (not heads).
            OrbitError: the storage commit failed; nothing was stored.
        """
        held = sorted({e.cid: e for e in heads}.values(), key=by_sort_key)
        if {e.cid for e in held} != frontier.heads:
            raise LogError(f"the heads given are not the frontier's ({len(held)} for {len(frontier.heads)})")
        if any(c in frontier.heads for e in held for c in e.next):
            raise LogError(f"a frontier head of log {log_id!r} names another: they are not heads")
        log = cls(
            identity, store, log_id=log_id, access=access, limits=limits, max_refs=max_refs, storage=storage
        )
        log.storage.commit(held, [e.cid for e in held], 0)
        for entry in held:
            log._entries[entry.cid] = entry
        log._order.extend(held)
        log._heads = {e.cid: e for e in held}
        log._frontier = frontier
        return log

    def compacted(self, frontier: Frontier, entries: Entries, order: Order) -> None:
        """Take up a compaction the log's storage committed: it starts at ``frontier`` from now on.

        ``frontier`` is complete (it lists every entry under it) and its heads are held; ``entries``
        and ``order`` are the log's entries after the compaction (those not under the frontier), as
        read back from storage. The heads do not change; pending entries under the frontier are
        dropped when next admitted (as a join drops them).

        Raises:
            LogError: the frontier is not complete, or a head of it is not in ``entries``.
        """
        if not frontier.complete or any(c not in entries for c in frontier.heads):
            raise LogError(f"log {self.id!r} cannot start at a frontier it does not hold whole")
        self._entries, self._order, self._frontier = entries, order, frontier

    @classmethod
    def load(
        cls,
        identity: Identity,
        store: BlockStore,
        heads: Iterable[CID],
        *,
        log_id: str,
        access: AccessController | None = None,
        limit: int | None = None,
        progress: Progress | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_refs: int = DEFAULT_MAX_REFS,
    ) -> Log:
        """Open a log from its heads in ``store``, verifying every entry it reads.

        Args:
            identity: the writer this replica appends as.
            store: the block store holding the log.
            heads: the log's heads.
            log_id: the log id.
            access: who may write; by default only ``identity``.
            limits: bounds on entries read.
            max_refs: skip pointers per appended entry.
            limit: load only the newest ``limit`` entries (by the log's total order).
            progress: called with the number of entries verified so far.

        Raises:
            EntryRejectedError: a stored entry failed verification.
            BlockNotFoundError: a needed block is missing from the store.
        """
        log = cls(identity, store, log_id=log_id, access=access, limits=limits, max_refs=max_refs)
        if limit is None:
            log.join_heads(heads, progress=progress)
            return log
        with gc_paused():
            log._load_newest(list(heads), limit, progress)
        return log

    def _load_newest(self, heads: list[CID], limit: int, progress: Progress | None) -> None:
        # Walk from the heads popping the newest entry each time: every entry is newer than all of
        # its ancestors, so the first ``limit`` pops are the newest ``limit`` entries.
        heap: list[tuple[int, bytes, Entry]] = []
        seen: set[CID] = set(heads)
        loaded: list[Entry] = []

        def fetch(cids: list[CID]) -> None:
            blocks = self.store.get_many(cids)
            for cid in cids:
                if cid not in blocks:
                    raise BlockNotFoundError(cid)
                e = Entry.from_block(cid, blocks[cid], log_id=self.id, access=self.access, limits=self.limits)
                inverted = (e.key + bytes(cid)).translate(_INVERT)
                heapq.heappush(heap, (-e.time, inverted, e))

        fetch(heads)
        while heap and len(loaded) < limit:
            entry = heapq.heappop(heap)[2]
            loaded.append(entry)
            if progress is not None:
                progress(len(loaded))
            parents = [c for c in entry.next if c not in seen]
            seen.update(parents)
            if parents and len(loaded) < limit:
                fetch(parents)
        by_cid = {e.cid: e for e in loaded}
        for entry in loaded:
            times = [by_cid[c].time for c in entry.next if c in by_cid]
            if times and len(times) == len(entry.next):
                check_clock_rule(entry.time, times, entry.cid)
        loaded.reverse()
        self._entries = by_cid
        self._order = EntryList(loaded)
        self._referenced = {c for e in loaded for c in e.next}
        self._heads = {e.cid: e for e in loaded if e.cid not in self._referenced}
