"""Fetching what a log lacks, sans I/O: a flow that asks for blocks and verifies what it is sent.

:func:`fetch_flow` walks ``next`` and ``refs`` breadth first from a set of heads. It yields each frontier
(the CIDs it wants) and is sent the blocks found, so the caller chooses how blocks arrive: :func:`run_flow`
drives it against block stores, a replicator over a network. Nothing it does changes the log; the
:class:`Fetched` it returns is what :meth:`ipfs_log.Log.admit` admits.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Generator, Iterable, Mapping
from typing import TypeVar

from ipfs_log.access import AccessController
from ipfs_log.blockstore import BlockStore, ChainedBlockStore
from ipfs_log.cid import CID
from ipfs_log.entry import Entry, Limits
from ipfs_log.errors import EntryRejectedError
from ipfs_log.frontier import Frontier
from ipfs_log.gc import gc_paused

__all__ = ["FetchFlow", "Fetched", "Progress", "fetch_flow", "run_flow"]

Progress = Callable[[int], None]
"""Called during a join or load with the number of entries verified so far."""


class Fetched:
    """What a fetch flow found: the input of :meth:`ipfs_log.Log.admit`.

    Attributes:
        heads: the heads the flow was asked for.
        entries: entries verified by this flow (not yet admitted).
        not_found: CIDs no store held.
        failures: blocks that failed verification, by CID.
        required: CIDs the heads need (the heads and every ``next`` link); a failure among them fails
            the join.
        rounds: how many batches of blocks the flow asked for.
        under: CIDs found to lie under the log's frontier (part of its state already: never admitted).
    """

    __slots__ = ("entries", "failures", "heads", "not_found", "required", "rounds", "under")

    def __init__(
        self,
        heads: list[CID],
        entries: dict[CID, Entry] | None = None,
        not_found: list[CID] | None = None,
        failures: dict[CID, EntryRejectedError] | None = None,
        required: set[CID] | None = None,
        rounds: int = 0,
        under: set[CID] | None = None,
    ) -> None:
        self.heads = heads
        self.entries: dict[CID, Entry] = {} if entries is None else entries
        self.not_found: list[CID] = [] if not_found is None else not_found
        self.failures: dict[CID, EntryRejectedError] = {} if failures is None else failures
        self.required: set[CID] = set() if required is None else required
        self.rounds = rounds
        self.under: set[CID] = set() if under is None else under

    def __repr__(self) -> str:
        return (
            f"Fetched(heads={len(self.heads)}, entries={len(self.entries)}, not_found={len(self.not_found)}, "
            f"failures={len(self.failures)}, rounds={self.rounds})"
        )


FetchFlow = Generator[list[CID], dict[CID, bytes], Fetched]
"""A sans-I/O walk: yields the CIDs it wants next, is sent the blocks found (missing ones absent)."""

_Result = TypeVar("_Result")


def run_flow(flow: Generator[list[CID], dict[CID, bytes], _Result], *stores: BlockStore) -> _Result:
    """Drive ``flow`` against ``stores``, asking each store in turn for what the earlier ones lacked.

    Any flow of that shape is driven (a :data:`FetchFlow`, the state tree's reads); it returns what the
    flow returns.

    The cyclic garbage collector is paused while the flow decodes and verifies (many containers, none
    in a cycle), never while a store is asked for blocks: a store that waits on a network must not keep
    the collector off for the whole process.
    """
    source = ChainedBlockStore(*stores)
    try:
        with gc_paused():
            want = next(flow)
        while True:
            blocks = source.get_many(want)
            with gc_paused():
                want = flow.send(blocks)
    except StopIteration as stop:
        result: _Result = stop.value
        return result


def fetch_flow(
    heads: Iterable[CID],
    *,
    log_id: str,
    access: AccessController,
    limits: Limits,
    entries: Container[CID],
    pending: Mapping[CID, Entry],
    progress: Progress | None = None,
    frontier: Frontier | None = None,
) -> FetchFlow:
    """Return a flow that finds and verifies the entries of ``heads`` a log lacks.

    Every block is verified as an entry of the log (:meth:`Entry.from_block` with ``log_id``, ``access``
    and ``limits``) before its links are followed.

    Args:
        heads: where to start.
        log_id: the log's id.
        access: who may write to the log.
        limits: bounds on the entries.
        entries: the log's admitted entries (the walk stops at them).
        pending: entries verified earlier and not admitted yet (used without asking for them again).
        progress: called after each batch with the number of entries verified so far.
        frontier: where the log starts, if it does not hold its whole history: the walk stops at
            entries under it, walking down from it (:meth:`Frontier.walk`) as far as an entry older
            than its newest head needs to be told apart.
    """
    fetched = Fetched(list(dict.fromkeys(heads)))
    found = fetched.entries
    under = frontier.under if frontier is not None else {}
    want = [c for c in fetched.heads if c not in entries and c not in under]
    required = fetched.required
    required.update(want)
    seen: set[CID] = set(want)
    verified = 0
    batch = want
    while batch:
        resolved: list[Entry] = []
        ask: list[CID] = []
        for cid in batch:
            held = pending.get(cid)
            if held is None:
                ask.append(cid)
            else:
                resolved.append(held)
        if ask:
            fetched.rounds += 1
            blocks = yield ask
            for cid in ask:
                block = blocks.get(cid)
                if block is None:
                    fetched.not_found.append(cid)
                    continue
                try:
                    entry = Entry.from_block(cid, block, log_id=log_id, access=access, limits=limits)
                except EntryRejectedError as e:
                    fetched.failures[cid] = e
                    continue
                found[cid] = entry
                resolved.append(entry)
                verified += 1
            if progress is not None:
                progress(verified)
        if frontier is not None:
            resolved = yield from _beside(frontier, resolved, fetched, seen, log_id, access, limits)
        batch = []
        for entry in resolved:
            for link in entry.next:
                required.add(link)
                if link not in seen and link not in entries and link not in under:
                    seen.add(link)
                    batch.append(link)
            for link in entry.refs:
                if link not in seen and link not in entries and link not in under:
                    seen.add(link)
                    batch.append(link)
    return fetched


def _beside(
    frontier: Frontier,
    resolved: list[Entry],
    fetched: Fetched,
    seen: set[CID],
    log_id: str,
    access: AccessController,
    limits: Limits,
) -> Generator[list[CID], dict[CID, bytes], list[Entry]]:
    """Return the entries of ``resolved`` not under ``frontier``, walking down from it as far as needed.

    Those under it are dropped from ``fetched.entries`` and listed in ``fetched.under``: they are part
    of the state already, and their links are not followed. An entry reached only by a skip pointer
    (``refs``, not required) that may be under the frontier is dropped without a walk: if it is not
    under it, a ``next`` link reaches it again.
    """
    required = fetched.required
    for entry in resolved:
        if entry.cid not in required and frontier.may_be_under(entry.time):
            fetched.entries.pop(entry.cid, None)
            seen.discard(entry.cid)
    resolved = [e for e in resolved if e.cid in required or not frontier.may_be_under(e.time)]
    oldest = min((e.time for e in resolved if e.cid not in frontier.under), default=None)
    if oldest is not None and frontier.may_be_under(oldest):
        yield from frontier.walk(oldest, log_id=log_id, access=access, limits=limits)
    kept: list[Entry] = []
    for entry in resolved:
        if frontier.is_under(entry.cid):
            fetched.entries.pop(entry.cid, None)
            fetched.under.add(entry.cid)
        else:
            kept.append(entry)
    return kept
