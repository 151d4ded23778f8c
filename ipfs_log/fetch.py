"""Fetching what a log lacks, sans I/O: a flow that asks for blocks and verifies what it is sent.

:func:`fetch_flow` walks ``next`` and ``refs`` breadth first from a set of heads. It yields each frontier
(the CIDs it wants) and is sent the blocks found, so the caller chooses how blocks arrive: :func:`run_flow`
drives it against block stores, a replicator over a network. Nothing it does changes the log; the
:class:`Fetched` it returns is what :meth:`ipfs_log.Log.admit` admits.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Generator, Iterable, Mapping
from dataclasses import dataclass, field

from ipfs_log.access import AccessController
from ipfs_log.blockstore import BlockStore, ChainedBlockStore
from ipfs_log.cid import CID
from ipfs_log.entry import Entry, Limits
from ipfs_log.errors import EntryRejectedError
from ipfs_log.gc import gc_paused

__all__ = ["FetchFlow", "Fetched", "Progress", "fetch_flow", "run_flow"]

Progress = Callable[[int], None]
"""Called during a join or load with the number of entries verified so far."""


@dataclass(slots=True)
class Fetched:
    """What a fetch flow found: the input of :meth:`ipfs_log.Log.admit`."""

    heads: list[CID]
    """The heads the flow was asked for."""
    entries: dict[CID, Entry] = field(default_factory=dict)
    """Entries verified by this flow (not yet admitted)."""
    not_found: list[CID] = field(default_factory=list)
    """CIDs no store held."""
    failures: dict[CID, EntryRejectedError] = field(default_factory=dict)
    """Blocks that failed verification, by CID."""
    required: set[CID] = field(default_factory=set)
    """CIDs the heads need (the heads and every ``next`` link); a failure among them fails the join."""
    rounds: int = 0
    """How many batches of blocks the flow asked for."""


FetchFlow = Generator[list[CID], dict[CID, bytes], Fetched]
"""A sans-I/O walk: yields the CIDs it wants next, is sent the blocks found (missing ones absent)."""


def run_flow(flow: FetchFlow, *stores: BlockStore) -> Fetched:
    """Drive ``flow`` against ``stores``, asking each store in turn for what the earlier ones lacked.

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
        fetched: Fetched = stop.value
        return fetched


def fetch_flow(
    heads: Iterable[CID],
    *,
    log_id: str,
    access: AccessController,
    limits: Limits,
    entries: Container[CID],
    pending: Mapping[CID, Entry],
    progress: Progress | None = None,
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
    """
    fetched = Fetched(list(dict.fromkeys(heads)))
    found = fetched.entries
    want = [c for c in fetched.heads if c not in entries]
    required = fetched.required
    required.update(want)
    seen: set[CID] = set(want)
    verified = 0
    frontier = want
    while frontier:
        resolved: list[Entry] = []
        ask: list[CID] = []
        for cid in frontier:
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
        frontier = []
        for entry in resolved:
            for link in entry.next:
                required.add(link)
                if link not in seen and link not in entries:
                    seen.add(link)
                    frontier.append(link)
            for link in entry.refs:
                if link not in seen and link not in entries:
                    seen.add(link)
                    frontier.append(link)
    return fetched
