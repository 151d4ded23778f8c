"""Partial replicas: follow one key range of a database's state tree, and answer provable reads for it.

A :class:`PartialReplica` holds only the nodes its range reaches (the paths from the root down to every
key of the range, with their neighbours' links). To follow a new root (a commit's, checked by the
caller or by :meth:`PartialReplica.follow_commit`), it diffs the tree it holds against the new one
*within its range*: nodes the two share are skipped by CID, subtrees outside the range are never read,
so it fetches what changed in its range plus the few nodes above it, not what changed elsewhere. Every
node fetched from the source (an IPFS node, another replica: untrusted) is checked as it arrives.

>>> from orbit.state.tree import StateTree
>>> tree = StateTree()
>>> for i in range(1000):
...     tree.put(b"k%03d" % i, b"v")
>>> replica = PartialReplica(tree.store, b"k100", b"k110")
>>> len(replica.follow(tree.root())), len(replica.items())
(10, 10)
>>> tree.put(b"k105", b"w"); tree.put(b"k900", b"w")
>>> replica.follow(tree.root())
[(b'k105', b'v', b'w')]
"""

from __future__ import annotations

from collections.abc import Iterable

from ipfs_log.cid import CID
from ipfs_log.gc import gc_paused
from orbit.errors import ProofError
from orbit.state.commits import Commit
from orbit.state.diff import diff
from orbit.state.nodes import EMPTY_NODE, EMPTY_ROOT, Slot, decode_node
from orbit.state.proofs import prove
from orbit.state.tree import NodeStore, StateTree, gap_meets

__all__ = ["PartialReplica"]


class PartialReplica:
    """A replica of the keys in ``[lo, hi)`` of a state tree (None: unbounded).

    Args:
        source: where nodes it lacks are fetched from (untrusted: each is checked).
        lo: the range's first key.
        hi: the key after the range.

    Not thread-safe: its owner holds a lock.
    """

    def __init__(self, source: NodeStore, lo: bytes | None, hi: bytes | None) -> None:
        self.source = source
        self.lo = lo
        self.hi = hi
        self.root: CID = EMPTY_ROOT
        """The root it follows now."""
        self.fetched_bytes = 0
        """The bytes of every node fetched from ``source`` so far."""
        self.fetched_nodes = 0
        self._held: dict[CID, bytes] = {EMPTY_ROOT: EMPTY_NODE}

    def get(self, cid: CID) -> bytes:
        """Return a node, from those held or else fetched from the source (a node store of its own).

        Raises:
            BlockNotFoundError: neither has it.
        """
        block = self._held.get(cid)
        if block is None:
            block = self.source.get(cid)
            self.fetched_bytes += len(block)
            self.fetched_nodes += 1
            self._held[cid] = block
        return block

    def put(self, cid: CID, block: bytes) -> None:
        """Hold a node (the tree this replica builds for proofs writes none: nodes are only read)."""
        self._held[cid] = block

    def follow(self, root: CID) -> list[tuple[bytes, bytes | None, bytes | None]]:
        """Move to ``root``, fetching the nodes that changed within the range.

        Returns:
            ``(key, old value or None, new value or None)`` for each key of the range that changed.

        Raises:
            TreeNodeError: a node from the source breaks the rules (the replica stays at its root).
            BlockNotFoundError: the source lacks a node (the replica stays at its root).
        """
        with gc_paused():  # many small lists, no cycles
            changes = list(diff(self, self.root, root, self.lo, self.hi))
            self._held = self._reachable(root)
        self.root = root
        return changes

    def follow_commit(self, commit: bytes, writers: Iterable[bytes | str]) -> Commit:
        """Check a commit (signed by a writer) and follow its root.

        Raises:
            CommitError: the commit is malformed, forged or not by a writer.
            TreeNodeError: a node from the source breaks the rules.
            BlockNotFoundError: the source lacks a node.
        """
        checked = Commit.from_block(commit, writers=writers)
        self.follow(checked.root)
        return checked

    def items(self) -> list[tuple[bytes, bytes]]:
        """Return the items of the range at the followed root, in key order."""
        return list(StateTree(self, self.root).items(self.lo, self.hi))

    def prove(self, key: bytes) -> bytes:
        """Return the proof of ``key`` against the followed root (see :mod:`orbit.state.proofs`).

        Raises:
            ProofError: ``key`` is outside the range (the replica does not hold its path).
        """
        if (self.lo is not None and key < self.lo) or (self.hi is not None and key >= self.hi):
            raise ProofError(f"{key!r:.80} is outside the range this replica holds")
        return prove(StateTree(self, self.root), key)

    def _reachable(self, root: CID) -> dict[CID, bytes]:
        """The held nodes the range reaches from ``root`` (the others are dropped)."""
        kept: dict[CID, bytes] = {EMPTY_ROOT: EMPTY_NODE}
        if root == EMPTY_ROOT:
            return kept
        stack: list[tuple[CID, bytes | None, bytes | None, Slot | None]] = [(root, None, None, None)]
        while stack:
            cid, a, b, below = stack.pop()
            block = self.get(cid)
            kept[cid] = block
            node = decode_node(cid, block, lo=a, hi=b, slot=below)
            keys = node.keys
            for i, kid in enumerate(node.kids):
                ga = keys[i - 1] if i else a
                gb = keys[i] if i < len(keys) else b
                if kid is not None and gap_meets(ga, gb, self.lo, self.hi):
                    stack.append((kid, ga, gb, node.slots[i]))
        return kept
