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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ipfs_log.access import AccessController
from ipfs_log.blockstore import BlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode
from ipfs_log.entry import DEFAULT_LIMITS, Entry, Limits
from ipfs_log.errors import BlockNotFoundError, CodecError
from ipfs_log.frontier import Frontier
from ipfs_log.gc import gc_paused
from ipfs_log.identity import Identity
from ipfs_log.log import Log
from ipfs_log.storage import EntryList
from orbit.errors import CommitError, StateError, TreeNodeError
from orbit.state.commits import Commit
from orbit.state.partial import PartialReplica
from orbit.state.snapshot import Snapshot
from orbit.state.tree import StateTree
from orbit.state.values import DIGEST_BYTES
from orbit.state.views import StateIndex
from stores.base import CHECKPOINT_VERSION, Store
from stores.counter import Counter
from stores.documents import Documents
from stores.keyvalue import KeyValue

__all__ = ["Bootstrap", "bootstrap", "trusted_commit"]

_PREFIX = b"\x01\x71\x12\x20"  # CIDv1 dag-cbor sha2-256: every entry's and node's CID


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
    log_id = commit.address
    heads = _entries(source, list(commit.heads), log_id, access, limits)
    if any(c in commit.heads for e in heads for c in e.next):
        raise CommitError("a head the commit names is an ancestor of another", commit.cid)
    replica = PartialReplica(source, None, None)  # every node fetched is checked as it is read
    opts = dict(options or {})
    winners: list[Entry] = []
    state: IPLDKind
    with gc_paused():
        if issubclass(store, KeyValue | Documents):
            if commit.winners is None:
                raise CommitError("the commit names no winners tree (signed by an older orbit?)", commit.cid)
            digests = [value for _, value in StateTree(replica, commit.winners).items()]
            if any(len(d) != DIGEST_BYTES for d in digests):
                raise TreeNodeError("a winners tree value is not an entry digest", commit.winners)
            winners = _entries(
                source, [CID(_PREFIX + d) for d in dict.fromkeys(digests)], log_id, access, limits
            )
            order = EntryList(sorted(winners, key=lambda e: e.sort_key))
            held = {e.cid: e for e in winners}
            scratch = Log.restore(
                identity,
                MemoryBlockStore(),
                log_id=log_id,
                access=access,
                entries=held,
                order=order,
                heads=[],
            )
            rebuilt = store(scratch, **opts)  # replays the winners: each key gets its value and sort key
            checkpoint = rebuilt.checkpoint()
            assert type(checkpoint) is dict
            state = checkpoint["state"]
        elif issubclass(store, Counter):
            state = [
                [writer, _value(replica, held)] for writer, held in StateTree(replica, commit.root).items()
            ]
        else:
            raise StateError(f"no snapshot open for {store.TYPE} databases (their state is their history)")
        checkpoint = {
            "type": store.TYPE,
            "v": CHECKPOINT_VERSION,
            "heads": list(commit.heads),
            "state": state,
        }
        _check(commit, store, checkpoint, identity, access, opts, heads)
    return Bootstrap(commit, tuple(heads), checkpoint, len(winners), replica.fetched_nodes)


def _entries(
    source: BlockStore, cids: list[CID], log_id: str, access: AccessController, limits: Limits
) -> list[Entry]:
    blocks = source.get_many(cids)
    entries: list[Entry] = []
    for cid in cids:
        block = blocks.get(cid)
        if block is None:
            raise BlockNotFoundError(cid)
        entries.append(Entry.from_block(cid, block, log_id=log_id, access=access, limits=limits))
    return entries


def _value(replica: PartialReplica, held: bytes) -> IPLDKind:
    """The value a tree item holds: inline, or the block its digest names (checked)."""
    if len(held) < DIGEST_BYTES:
        return decode(held)
    cid = CID(_PREFIX + held)
    block = replica.get(cid)
    if CID.for_block(block) != cid:
        raise TreeNodeError("a value block does not hash to the digest the tree holds", cid)
    try:
        return decode(block)
    except CodecError as e:
        raise TreeNodeError(f"a value block is not canonical DAG-CBOR ({e})", cid) from e


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
