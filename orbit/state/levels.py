"""Reading a whole state tree from an untrusted source a level at a time, sans I/O.

A :class:`TreeWalk` reads a tree breadth first: :attr:`TreeWalk.wanted` is the next level's node CIDs
(every link of the level before), :meth:`TreeWalk.take` is given their blocks, checks each against the
link and the gap its parent gives it (:func:`~orbit.state.nodes.decode_node`) before following its
links, and returns the level's items. A source that keeps many requests in flight (an IPFS node:
:meth:`orbit.ipfs.IpfsBlockStore.get_many`) then serves a tree of ``n`` nodes in as many rounds as the
tree is deep, not ``n``. The walk never asks for anything itself: :func:`tree_flow` is the flow form
(yields CIDs, is sent blocks), driven by :func:`ipfs_log.fetch.run_flow`; a caller with more to fetch
(the entries a level names) asks for both in one round.

>>> from ipfs_log.blockstore import MemoryBlockStore
>>> from ipfs_log.fetch import run_flow
>>> from orbit.state.tree import StateTree
>>> tree = StateTree(MemoryBlockStore())
>>> for i in range(300):
...     tree.put(b"k%03d" % i, b"v")
>>> items = run_flow(tree_flow(tree.root()), tree.store)
>>> len(items), items[0], items == list(tree.items())
(300, (b'k000', b'v'), True)
"""

from __future__ import annotations

from collections.abc import Generator, Mapping

from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import TreeNodeError
from orbit.state.nodes import EMPTY_ROOT, Slot, decode_node

__all__ = ["TreeFlow", "TreeWalk", "tree_flow"]

TreeFlow = Generator[list[CID], dict[CID, bytes], list[tuple[bytes, bytes]]]
"""A sans-I/O read of a tree: yields a level's CIDs, is sent their blocks, returns the items in key order."""


class TreeWalk:
    """A breadth-first read of the tree under ``root``, every node checked as it is taken.

    Args:
        root: the tree's root CID (the empty root reads as no items, without a request).
    """

    __slots__ = ("_level", "nodes")

    def __init__(self, root: CID) -> None:
        self._level: list[tuple[CID, bytes | None, bytes | None, Slot | None]] = (
            [] if root == EMPTY_ROOT else [(root, None, None, None)]
        )
        self.nodes = 0
        """Nodes taken (and checked) so far."""

    @property
    def done(self) -> bool:
        """Whether every node of the tree has been taken."""
        return not self._level

    @property
    def wanted(self) -> list[CID]:
        """The CIDs of the next level's nodes (empty once done)."""
        return [cid for cid, _, _, _ in self._level]

    def take(self, blocks: Mapping[CID, bytes]) -> list[tuple[bytes, bytes]]:
        """Check the next level's nodes among ``blocks`` and move to the level below.

        Nothing is kept of a level that fails: the walk stays where it was.

        Returns:
            The items the level's nodes hold, ``(key, value)``, in no particular order.

        Raises:
            TreeNodeError: a node is not what its parent's link and gap name (the message says why).
            BlockNotFoundError: a node of the level is not among ``blocks``.
        """
        items: list[tuple[bytes, bytes]] = []
        below: list[tuple[CID, bytes | None, bytes | None, Slot | None]] = []
        for cid, lo, hi, parent in self._level:
            block = blocks.get(cid)
            if block is None:
                raise BlockNotFoundError(cid)
            node = decode_node(cid, block, lo=lo, hi=hi, slot=parent)
            if node.layer < 0:  # (a root's CID is not EMPTY_ROOT's here, so the node is inside)
                raise TreeNodeError("the empty node inside a tree", cid)
            keys = node.keys
            items.extend(zip(keys, node.values, strict=True))
            for i, kid in enumerate(node.kids):
                if kid is not None:
                    below.append(
                        (kid, keys[i - 1] if i else lo, keys[i] if i < len(keys) else hi, node.slots[i])
                    )
        self.nodes += len(self._level)
        self._level = below
        return items


def tree_flow(root: CID) -> TreeFlow:
    """Return a flow that reads every item of the tree under ``root``, a level per request.

    Raises (from the flow):
        TreeNodeError: a node served is not what its parent names.
        BlockNotFoundError: a node is not served.
    """
    walk = TreeWalk(root)
    items: list[tuple[bytes, bytes]] = []
    while not walk.done:
        blocks = yield walk.wanted
        items.extend(walk.take(blocks))
    items.sort()
    return items
