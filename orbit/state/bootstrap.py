"""Opening a writable store from a trusted commit: state-sized work, not history-sized.

:func:`bootstrap` turns a commit (already accepted under a trust mode, see :mod:`orbit.state.snapshot`)
and an untrusted block source into what a replica needs to start its log at the commit's heads
(:meth:`ipfs_log.Log.start_at`): the heads, verified as entries, and the store's checkpoint at them.

- keyvalue and documents: the commit's **winners tree** names, for every key ever written (deleted ones
  too), the entry whose operation decides it. Those entries are fetched and verified (signature, log,
  writer), and the index is rebuilt from them alone: it holds each key's value *and* the sort key that
  last-writer-wins compares later entries against, tombstones included, so an older write that arrives
  later cannot bring a key back. Why fetch entries rather than put sort keys in the state tree: the
  state tree (what proofs are checked against) stays as it is, and every value a replica serves is one
  a writer signed in an entry, not only in a commit.
- counter: the state tree's items are each writer's total; they become the checkpoint.

Whatever the type, the state tree (and the documents index trees) is then rebuilt from the restored
index and its root compared with the commit's: a commit whose trees do not match the blocks served is
refused. Eventlogs and tables have no snapshot open (an eventlog's state is its history).

The reads are a sans-I/O flow (:func:`bootstrap_flow`, driven by :func:`ipfs_log.fetch.run_flow`): it
asks for the tree a level at a time, and with each level for the entries (or value blocks) the level
above named, so a source that keeps requests in flight (an IPFS node) serves a state of ``n`` keys in
about as many rounds as the tree is deep rather than ``2 n`` round trips. Each node is checked against
its parent's link and gap before its links are followed, each batch of entries is verified as it comes.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ipfs_log.access import AccessController
from ipfs_log.blockstore import BlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode
from ipfs_log.entry import DEFAULT_LIMITS, Entry, Limits
from ipfs_log.errors import BlockNotFoundError, CodecError
from ipfs_log.fetch import run_flow
from ipfs_log.frontier import Frontier
from ipfs_log.identity import Identity
from ipfs_log.log import Log
from ipfs_log.storage import EntryList
from orbit.errors import CommitError, StateError, TreeNodeError
from orbit.state.commits import Commit
from orbit.state.levels import TreeWalk
from orbit.state.snapshot import Snapshot
from orbit.state.values import DIGEST_BYTES, value_from_block
from orbit.state.views import StateIndex
from stores.base import CHECKPOINT_VERSION, Store
from stores.counter import Counter
from stores.documents import Documents
from stores.keyvalue import KeyValue

__all__ = ["Bootstrap", "BootstrapFlow", "bootstrap", "bootstrap_flow", "trusted_commit"]


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What :func:`bootstrap` read: enough to start a writable replica at the commit's heads."""

    commit: Commit
    heads: tuple[Entry, ...]
    """The commit's heads, verified as entries of the log."""
    checkpoint: IPLDKind
    """The store's checkpoint at those heads (``Store(log, checkpoint=...)``)."""
    entries: int
    """Entries fetched and verified besides the heads (the winners)."""
    nodes: int
    """Tree nodes (and value blocks) fetched and checked."""
    winners: frozenset[CID] = frozenset()
    """The winning entries' CIDs (keyvalue, documents): a replica that drops history keeps their blocks."""


BootstrapFlow = Generator[list[CID], dict[CID, bytes], Bootstrap]
"""A sans-I/O bootstrap: yields the CIDs it needs next, is sent the blocks found (missing ones absent)."""


def trusted_commit(
    commits: Iterable[bytes], *, address: str, writers: Iterable[bytes | str], trust: str
) -> Commit:
    """Return the newest commit among ``commits`` that meets ``trust`` (``writer`` or ``quorum:k``).

    Raises:
        StateError: ``trust`` is not one of those.
        CommitError: no commit (or group of ``k`` commits by distinct writers naming the same root)
            about ``address`` by a writer is among them.
    """
    return Snapshot(MemoryBlockStore(), address=address, writers=writers, trust=trust).accept(commits)


def bootstrap(
    commit: Commit,
    source: BlockStore,
    store: type[Store],
    *,
    identity: Identity,
    access: AccessController,
    options: Mapping[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Bootstrap:
    """Read the state ``commit`` vouches for from ``source`` and check it against the commit.

    Drives :func:`bootstrap_flow` against ``source`` (:func:`ipfs_log.fetch.run_flow`): one
    ``get_many`` per level of the tree.

    Args:
        commit: a commit accepted under the caller's trust mode.
        source: where blocks come from (untrusted: every block is checked).
        store: the store class of the database.
        identity: the replica's identity (for the scratch log the index is rebuilt over).
        access: the database's write list (heads and winners must be by its writers).
        options: the store's options (the documents key field and indexes).
        limits: bounds on entries read.

    Raises:
        StateError: the store type has no snapshot open.
        CommitError: the commit names no winners tree where one is needed, its heads name each other,
            or the state rebuilt from the blocks served does not have its roots.
        TreeNodeError: a tree node or value block from the source is not what its parent names.
        EntryRejectedError: a head or a winning entry is not a valid entry by a writer.
        BlockNotFoundError: the source lacks a block.
    """
    flow = bootstrap_flow(commit, store, identity=identity, access=access, options=options, limits=limits)
    return run_flow(flow, source)


def bootstrap_flow(
    commit: Commit,
    store: type[Store],
    *,
    identity: Identity,
    access: AccessController,
    options: Mapping[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> BootstrapFlow:
    """Return a flow that reads and checks the state ``commit`` vouches for (sans I/O; see :func:`bootstrap`).

    The flow asks for the heads, then for the tree a level at a time (:class:`~orbit.state.levels.TreeWalk`),
    each request also naming the winning entries (or value blocks) the level before named; it checks
    every block before it follows a link out of it, and verifies each batch of entries as it arrives.
    Nothing is kept outside the flow: what it returns is all the caller stores.

    Raises (from the flow): as :func:`bootstrap`.
    """
    opts = dict(options or {})
    if not issubclass(store, KeyValue | Documents | Counter):
        raise StateError(f"no snapshot open for {store.TYPE} databases (their state is their history)")
    if issubclass(store, KeyValue | Documents) and commit.winners is None:
        raise CommitError("the commit names no winners tree (signed by an older orbit?)", commit.cid)
    log_id = commit.address
    wanted = list(commit.heads)
    blocks = (yield wanted) if wanted else {}
    heads = _verified(wanted, blocks, log_id, access, limits)
    if any(c in commit.heads for e in heads for c in e.next):
        raise CommitError("a head the commit names is an ancestor of another", commit.cid)
    state: IPLDKind
    if issubclass(store, KeyValue | Documents):
        assert commit.winners is not None
        walk = TreeWalk(commit.winners)
        held: dict[CID, Entry] = {}
        seen: set[CID] = set()
        named: list[CID] = []  # the winners the last level named, asked for with the next level
        while not walk.done or named:
            blocks = yield walk.wanted + named
            held.update((e.cid, e) for e in _verified(named, blocks, log_id, access, limits))
            named = []
            for _, digest in walk.take(blocks):
                if len(digest) != DIGEST_BYTES:
                    raise TreeNodeError("a winners tree value is not an entry digest", commit.winners)
                cid = CID.for_digest(digest)
                if cid not in seen:
                    seen.add(cid)
                    named.append(cid)
        scratch = Log.restore(
            identity,
            MemoryBlockStore(),
            log_id=log_id,
            access=access,
            entries=held,
            order=EntryList(sorted(held.values(), key=lambda e: e.sort_key)),
            heads=[],
        )
        rebuilt = store(scratch, **opts)  # replays the winners: each key gets its value and sort key
        checkpoint = rebuilt.checkpoint()
        assert type(checkpoint) is dict
        state = checkpoint["state"]
        fetched = (len(held), walk.nodes, frozenset(held))
    else:
        walk = TreeWalk(commit.root)
        totals: list[tuple[bytes, IPLDKind | CID]] = []
        values: dict[CID, IPLDKind] = {}
        asked: list[CID] = []  # value blocks the last level named
        while not walk.done or asked:
            blocks = yield walk.wanted + asked
            values.update((cid, _value_block(cid, blocks)) for cid in asked)
            asked = []
            for writer, total in walk.take(blocks):
                if len(total) < DIGEST_BYTES:
                    totals.append((writer, _inline(total, commit.root)))
                else:
                    cid = CID.for_digest(total)
                    totals.append((writer, cid))
                    if cid not in values:
                        values[cid] = None
                        asked.append(cid)
        totals.sort(key=lambda item: item[0])
        state = [[w, values[t] if type(t) is CID else t] for w, t in totals]
        fetched = (0, walk.nodes + len(values), frozenset())
    checkpoint = {
        "type": store.TYPE,
        "v": CHECKPOINT_VERSION,
        "heads": list(commit.heads),
        "state": state,
    }
    _check(commit, store, checkpoint, identity, access, opts, heads)
    return Bootstrap(commit, tuple(heads), checkpoint, *fetched)


def _verified(
    cids: list[CID], blocks: Mapping[CID, bytes], log_id: str, access: AccessController, limits: Limits
) -> list[Entry]:
    """The entries ``cids`` name, each verified (hash, signature, log, writer) from ``blocks``."""
    entries: list[Entry] = []
    for cid in cids:
        block = blocks.get(cid)
        if block is None:
            raise BlockNotFoundError(cid)
        entries.append(Entry.from_block(cid, block, log_id=log_id, access=access, limits=limits))
    return entries


def _inline(held: bytes, root: CID) -> IPLDKind:
    """A value held in the tree itself."""
    try:
        return decode(held)
    except CodecError as e:
        raise TreeNodeError(f"a value the tree holds is not canonical DAG-CBOR ({e})", root) from e


def _value_block(cid: CID, blocks: Mapping[CID, bytes]) -> IPLDKind:
    """The value a tree item holds as a digest: the block it names, checked."""
    block = blocks.get(cid)
    if block is None:
        raise BlockNotFoundError(cid)
    return value_from_block(cid, block)


def _check(
    commit: Commit,
    store: type[Store],
    checkpoint: IPLDKind,
    identity: Identity,
    access: AccessController,
    options: dict[str, Any],
    heads: list[Entry],
) -> None:
    """Restore the checkpoint over the heads and compare the rebuilt trees' roots with the commit's."""
    log = Log.start_at(
        identity,
        MemoryBlockStore(),
        Frontier(heads, count=commit.count),
        heads,
        log_id=commit.address,
        access=access,
    )
    try:
        restored = store(log, checkpoint=checkpoint, **options)
    except (ValueError, TypeError) as e:  # InvalidCheckpointError: a counter total that is not one
        raise CommitError(f"the state the blocks hold is not a {store.TYPE} state: {e}", commit.cid) from e
    index = StateIndex(restored)
    if index.root() != commit.root:
        raise CommitError(f"the state the blocks hold has root {index.root()}, not {commit.root}", commit.cid)
    if dict(commit.indexes) != index.index_roots():
        raise CommitError("the documents index trees are not those the commit names", commit.cid)
    if commit.winners is not None and index.winners_root() != commit.winners:
        raise CommitError("the winners rebuilt are not those the commit names", commit.cid)
