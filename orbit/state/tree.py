"""The state tree: a Merkle search tree kept in memory, changed in place, hashed lazily.

:class:`StateTree` maps byte keys to short byte values (see :mod:`orbit.state.nodes` for the shape and the
block form). Why a Merkle search tree rather than a prolly tree: both are history-independent, but a
search tree's shape comes from each key's own hash, so a write changes the blocks on one path (plus a
split or merge along it when the key's layer is high) with no chunk-boundary cascade to re-run, the
rules a block must obey can be checked block by block against its parent, and the layering is AT
Protocol's, documented and widely deployed.

In memory the tree is a tree of **groups** (the keys of one layer within one gap, a sorted list, with
the subtrees between them): a write inserts into or splits or merges groups on its path and marks them
dirty; nothing is encoded or hashed until :meth:`StateTree.root` is asked for, which writes each dirty
group as its balanced one-key blocks, encoding only the blocks whose key, value or links changed (each
group remembers what it last wrote), and returns the root's CID. Many writes between two roots
therefore cost one hashing of the union of their paths. A tree opened from a root CID loads a group
(its blocks) from the store only when a read or write reaches it, checking each block
(:func:`~orbit.state.nodes.decode_node`), so an untrusted store can serve it. The tree is not
thread-safe: its owner holds a lock.

>>> tree = StateTree()
>>> for key in (b"b", b"a", b"c"):
...     tree.put(key, key.upper())
>>> tree.get(b"a"), tree.get(b"z")
(b'A', None)
>>> root = tree.root()
>>> other = StateTree()
>>> for key in (b"c", b"a", b"b", b"d"):
...     other.put(key, key.upper())
>>> other.delete(b"d")
True
>>> other.root() == root
True
>>> list(StateTree(tree.store, root).items())
[(b'a', b'A'), (b'b', b'B'), (b'c', b'C')]
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Final, Protocol, TypeAlias

from ipfs_log.cid import CID
from ipfs_log.codec import decode, encode
from ipfs_log.errors import BlockNotFoundError
from ipfs_log.gc import gc_paused
from orbit.errors import TreeNodeError
from orbit.state.nodes import (
    EMPTY_NODE,
    EMPTY_ROOT,
    MAX_KEY,
    MAX_VALUE,
    Slot,
    decode_node,
    layer_of,
)

BUFFER_LIMIT: Final = 4 << 20
"""Default bound of a :class:`BufferedNodes`: 4 MiB of unsaved blocks (some 30k nodes)."""

__all__ = [
    "BUFFER_LIMIT",
    "BufferedNodes",
    "MemoryNodes",
    "NodeStore",
    "StateTree",
    "block_parts",
    "gap_meets",
    "successor",
    "tree_blocks",
]


class NodeStore(Protocol):
    """Where a tree reads and writes its nodes (an :class:`ipfs_log.BlockStore` is one)."""

    def get(self, cid: CID) -> bytes:
        """Return the block stored under ``cid``; raise ``BlockNotFoundError`` if absent."""
        ...

    def put(self, cid: CID, block: bytes) -> None:
        """Store ``block`` under ``cid``."""
        ...


class MemoryNodes:
    """Nodes in a dict (the default store of a tree)."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {EMPTY_ROOT: EMPTY_NODE}

    def get(self, cid: CID) -> bytes:
        """Return the block under ``cid``.

        Raises:
            BlockNotFoundError: no such block.
        """
        try:
            return self.blocks[cid]
        except KeyError:
            raise BlockNotFoundError(cid) from None

    def put(self, cid: CID, block: bytes) -> None:
        """Store ``block`` under ``cid``."""
        self.blocks[cid] = block


class BackingStore(Protocol):
    """What :class:`BufferedNodes` writes through to (an :class:`ipfs_log.BlockStore` is one)."""

    def get(self, cid: CID) -> bytes:
        """Return the block stored under ``cid``; raise ``BlockNotFoundError`` if absent."""
        ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store many blocks at once."""
        ...


class BufferedNodes:
    """Nodes kept in memory as trees write them, and written to ``backing`` in batches.

    A tree's root is hashed often and most of its nodes are soon replaced, so writing every node would
    mostly write garbage. Instead :meth:`persist` writes, in one batch, the nodes the backing store lacks
    that are reachable from the roots it is given and from the current root of every tree using this
    buffer (a tree made over it registers itself), then forgets the rest: what it forgets is reachable
    from no live tree, so it is a node some later write replaced before it was ever saved.

    The buffer is bounded: when a tree's :meth:`StateTree.root` leaves more than ``limit`` bytes here, it
    persists at once (the trees' current roots). Nothing a saved commit references is lost as long as the
    commit's roots were persisted when it was saved or published (``persist(commit.root)``), as the
    database does; a commit of a current root needs nothing more, as those roots are always persisted.

    Args:
        backing: where the nodes go.
        limit: most bytes of unsaved blocks kept in memory after a root is hashed.
    """

    def __init__(self, backing: BackingStore, limit: int = BUFFER_LIMIT) -> None:
        self.backing = backing
        self.limit = limit
        self._new: dict[CID, bytes] = {}
        self._bytes = 0
        self._trees: weakref.WeakSet[StateTree] = weakref.WeakSet()
        self._persisting = False

    @property
    def pending_bytes(self) -> int:
        """Bytes of blocks held in memory, not yet written to the backing store."""
        return self._bytes

    def attach(self, tree: StateTree) -> None:
        """Count ``tree``'s root among the live ones at each :meth:`persist` (held weakly)."""
        self._trees.add(tree)

    def get(self, cid: CID) -> bytes:
        """Return the block under ``cid``, from memory or the backing store.

        Raises:
            BlockNotFoundError: neither holds it.
        """
        block = self._new.get(cid)
        return self.backing.get(cid) if block is None else block

    def put(self, cid: CID, block: bytes) -> None:
        """Keep ``block`` in memory until the next :meth:`persist`."""
        if cid not in self._new:
            self._bytes += len(block)
        self._new[cid] = block

    def settle(self) -> None:
        """Persist now if more than :attr:`limit` bytes are held (what a tree does after each root).

        Raises:
            BlockStoreError: the backing store could not be written (the nodes stay in memory).
        """
        if self._bytes > self.limit and not self._persisting:
            self.persist()

    def persist(self, *roots: CID) -> int:
        """Write the unsaved nodes under ``roots`` and every live tree's root, forget the others.

        The blocks of values the trees hold as digests go with them, when they were put here. Returns
        how many blocks were written.

        Raises:
            BlockStoreError: the backing store could not be written (the nodes stay in memory).
        """
        self._persisting = True
        try:
            stack = [*roots, *(tree.root() for tree in list(self._trees))]
        finally:
            self._persisting = False
        new = self._new
        wanted: dict[CID, bytes] = {}
        while stack:
            cid = stack.pop()
            block = new.get(cid)
            if block is None or cid in wanted:  # persisted before, with everything under it; or seen
                continue
            wanted[cid] = block
            links, digest = block_parts(block)
            stack.extend(links)
            if digest is not None:  # a digested value's block, if the tree's owner kept one here
                value_cid = CID.for_digest(digest)
                if value_cid in new:
                    wanted[value_cid] = new[value_cid]
        if wanted:
            self.backing.put_many(wanted.items())
        new.clear()
        self._bytes = 0
        return len(wanted)


class _Node:
    """A group in memory: the keys of one layer within one gap, with the subtrees between them.

    ``cid`` (the group's top block) is None while it is dirty (it or a descendant changed). Each key's
    block as last written is kept (``cids``, ``blocks``), and ``marks`` records what changed since: gap
    ``j`` (its subtree) as ``2 j``, the value of key ``i`` as ``2 i + 1``, so a flush visits and encodes
    only the blocks above a mark. ``cids`` is None when the keys changed (the group's shape with them):
    then every block is written anew.
    """

    __slots__ = ("blocks", "cid", "cids", "keys", "kids", "layer", "marks", "vals")

    def __init__(self, layer: int, keys: list[bytes], vals: list[bytes], kids: list[_Ref]) -> None:
        self.layer = layer
        self.keys = keys
        self.vals = vals
        self.kids = kids
        self.cid: CID | None = None
        self.cids: list[CID] | None = None
        self.blocks: list[bytes] = []
        self.marks: list[int] | None = None

    def mark(self, change: int) -> None:
        """Record a change (``2 j``: gap j's subtree; ``2 i + 1``: key i's value) and make the group dirty."""
        self.cid = None
        marks = self.marks
        if marks is None:
            self.marks = [change]
        else:
            marks.append(change)


_Ref: TypeAlias = "_Node | CID | None"


class StateTree:
    """A mutable Merkle search tree over a node store.

    Args:
        store: where nodes are read from and written to (default: a new :class:`MemoryNodes`).
        root: the root CID to start from (default: the empty tree); nodes are loaded and checked when
            first reached.
    """

    def __init__(self, store: NodeStore | None = None, root: CID | None = None) -> None:
        self.store: NodeStore = MemoryNodes() if store is None else store
        self._root: _Ref = None if root is None or root == EMPTY_ROOT else root
        if isinstance(self.store, BufferedNodes):
            self.store.attach(self)  # its root is live: persisted with the others, never forgotten

    @classmethod
    def build(cls, items: Iterable[tuple[bytes, bytes]], store: NodeStore | None = None) -> StateTree:
        """Return the tree of ``items`` given in strictly increasing key order, built in one pass.

        Raises:
            ValueError: keys are not strictly increasing, or a key or value is too long.
        """
        with gc_paused():  # one container per node, no cycles
            return cls._build(items, store)

    @classmethod
    def _build(cls, items: Iterable[tuple[bytes, bytes]], store: NodeStore | None) -> StateTree:
        tree = cls(store)
        stack: list[_Node] = []  # open nodes, layers strictly decreasing; each lacks its last kid
        prev: bytes | None = None
        for key, value in items:
            _check(key, value)
            if prev is not None and key <= prev:
                raise ValueError(f"keys are not strictly increasing at {key!r}")
            prev = key
            layer = layer_of(key)
            carry: _Ref = None
            while stack and stack[-1].layer < layer:
                node = stack.pop()
                node.kids.append(carry)
                carry = node
            if stack and stack[-1].layer == layer:
                top = stack[-1]
                top.kids.append(carry)
                top.keys.append(key)
                top.vals.append(value)
            else:
                stack.append(_Node(layer, [key], [value], [carry]))
        carry = None
        while stack:
            node = stack.pop()
            node.kids.append(carry)
            carry = node
        tree._root = carry
        return tree

    # ------------------------------------------------------------------ reading

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key``, or None.

        Raises:
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        node = self._root_node()
        if node is None:
            return None
        lo: bytes | None = None
        hi: bytes | None = None
        while True:
            keys = node.keys
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                return node.vals[i]
            kid = node.kids[i]
            if kid is None:
                return None
            if i:
                lo = keys[i - 1]
            if i < len(keys):
                hi = keys[i]
            if type(kid) is CID:
                kid = node.kids[i] = self._load(kid, lo, hi, node.layer)
            assert type(kid) is _Node
            node = kid
        return None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def items(self, lo: bytes | None = None, hi: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``(key, value)`` with ``lo <= key < hi`` (either bound may be None), in key order.

        Raises:
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        return self._walk(self._root_node(), lo, hi, None, None, None)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over the items whose key starts with ``prefix``, in key order."""
        return self.items(prefix, successor(prefix))

    def _walk(
        self,
        ref: _Ref,
        lo: bytes | None,
        hi: bytes | None,
        glo: bytes | None,
        ghi: bytes | None,
        below: int | None,
    ) -> Iterator[tuple[bytes, bytes]]:
        if ref is None:
            return
        node = self._loaded(ref, glo, ghi, below)
        keys = node.keys
        start = 0 if lo is None else bisect_left(keys, lo)
        stop = len(keys) if hi is None else bisect_left(keys, hi)
        for i in range(start, stop + 1):
            kid = node.kids[i]
            if kid is not None:
                kid_lo = keys[i - 1] if i else glo
                kid_hi = keys[i] if i < len(keys) else ghi
                if type(kid) is CID:
                    kid = node.kids[i] = self._load(kid, kid_lo, kid_hi, node.layer)
                yield from self._walk(kid, lo, hi, kid_lo, kid_hi, node.layer)
            if i < stop:
                yield keys[i], node.vals[i]

    # ------------------------------------------------------------------ writing

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` (only the nodes on its path change).

        Raises:
            ValueError: the key or value is too long.
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        if type(key) is not bytes or type(value) is not bytes or len(key) > MAX_KEY or len(value) > MAX_VALUE:
            _check(key, value)
        layer = layer_of(key)
        node = self._root_node()
        if node is None:
            self._root = _Node(layer, [key], [value], [None, None])
            return
        if layer > node.layer:
            left, right = self._split(node, key, None, None, None)
            self._root = _Node(layer, [key], [value], [left, right])
            return
        # Descend while the key belongs further down; remember the path to mark it dirty.
        path: list[tuple[_Node, int]] = []  # (group, the gap taken) above the one that changes
        lo: bytes | None = None
        hi: bytes | None = None
        while True:
            keys = node.keys
            i = bisect_left(keys, key)
            if node.layer == layer:
                if i < len(keys) and keys[i] == key:
                    if node.vals[i] == value:
                        return
                    node.vals[i] = value
                    node.mark(2 * i + 1)
                else:
                    kid_lo = keys[i - 1] if i else lo
                    kid_hi = keys[i] if i < len(keys) else hi
                    left, right = self._split(node.kids[i], key, kid_lo, kid_hi, node.layer)
                    keys.insert(i, key)
                    node.cids = None
                    node.vals.insert(i, value)
                    node.kids[i : i + 1] = [left, right]
                    node.cid = None
                break
            kid = node.kids[i]
            if i:
                lo = keys[i - 1]
            if i < len(keys):
                hi = keys[i]
            if kid is None:
                node.kids[i] = _Node(layer, [key], [value], [None, None])
                node.mark(2 * i)
                break
            if type(kid) is not _Node:
                kid = node.kids[i] = self._load(kid, lo, hi, node.layer)  # type: ignore[arg-type]
            if layer > kid.layer:
                left, right = self._split(kid, key, lo, hi, node.layer)
                node.kids[i] = _Node(layer, [key], [value], [left, right])
                node.mark(2 * i)
                break
            path.append((node, i))
            node = kid
        for parent, at in path:
            parent.mark(2 * at)

    def update(self, changes: dict[bytes, bytes | None]) -> None:
        """Apply many puts (a value) and deletes (None) at once; the same as doing them one by one.

        The keys already in the tree with a new value are found in one walk over the union of their
        paths, each node visited once for all the keys below it (a batch of writes to a tree costs its
        dirty nodes, not its keys times the depth); new keys and deletions then go one by one.

        Raises:
            ValueError: a key or value is too long.
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        puts = sorted((k, v) for k, v in changes.items() if v is not None)
        for key, value in puts:
            if (
                type(key) is not bytes
                or type(value) is not bytes
                or len(key) > MAX_KEY
                or len(value) > MAX_VALUE
            ):
                _check(key, value)
        node = self._root_node()
        rest: list[tuple[bytes, bytes]] = []
        if node is not None and puts:
            self._overwrite(node, puts, rest, None, None)
        else:
            rest = puts
        for key, value in rest:
            self.put(key, value)
        for key, gone in changes.items():
            if gone is None:
                self.delete(key)

    def _overwrite(
        self,
        node: _Node,
        items: list[tuple[bytes, bytes]],
        rest: list[tuple[bytes, bytes]],
        lo: bytes | None,
        hi: bytes | None,
    ) -> bool:
        """Set the values of ``items`` (sorted) found under ``node``; others go to ``rest``; changed?"""
        keys = node.keys
        vals = node.vals
        kids = node.kids
        changed = False
        # The node has few keys and the batch many: cut the (sorted) batch at each of the node's keys.
        below: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        start = 0
        count = len(items)
        for i in range(len(keys) + 1):
            if i < len(keys):
                key = keys[i]
                stop = bisect_left(items, (key,), start)
            else:
                stop = count
            if stop > start:
                if kids[i] is None:
                    rest.extend(items[start:stop])  # new keys: placed by put, which splits by layer
                else:
                    below.append((i, items[start:stop]))
            if i < len(keys) and stop < count and items[stop][0] == key:
                if vals[i] != items[stop][1]:
                    vals[i] = items[stop][1]
                    node.mark(2 * i + 1)
                    changed = True
                stop += 1
            start = stop
            if start == count:
                break
        for i, group in below:
            kid = kids[i]
            kid_lo = keys[i - 1] if i else lo
            kid_hi = keys[i] if i < len(keys) else hi
            if type(kid) is not _Node:
                kid = kids[i] = self._load(kid, kid_lo, kid_hi, node.layer)  # type: ignore[arg-type]
            if self._overwrite(kid, group, rest, kid_lo, kid_hi):
                node.mark(2 * i)
                changed = True
        return changed

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it was there.

        Raises:
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        ref = self._root
        if ref is None:
            return False
        layer = layer_of(key)
        path: list[tuple[_Node, int]] = []  # (node, index of the kid taken)
        lo: bytes | None = None
        hi: bytes | None = None
        below: int | None = None
        while ref is not None:
            node = self._loaded(ref, lo, hi, below)
            if path:
                parent, at = path[-1]
                parent.kids[at] = node
            else:
                self._root = node
            if layer > node.layer:
                return False
            keys = node.keys
            i = bisect_left(keys, key)
            if node.layer == layer:
                if i == len(keys) or keys[i] != key:
                    return False
                merged = self._merge(
                    node.kids[i],
                    keys[i - 1] if i else lo,
                    node.kids[i + 1],
                    keys[i + 1] if i + 1 < len(keys) else hi,
                    key,
                    node.layer,
                )
                del keys[i], node.vals[i]
                node.cids = None
                node.kids[i : i + 2] = [merged]
                node.cid = None
                replacement: _Ref = node if keys else merged
                if path:
                    parent, at = path[-1]
                    parent.kids[at] = replacement
                else:
                    self._root = replacement
                for parent, at in path:
                    parent.mark(2 * at)
                return True
            path.append((node, i))
            lo, hi, below = keys[i - 1] if i else lo, keys[i] if i < len(keys) else hi, node.layer
            ref = node.kids[i]
        return False

    # ------------------------------------------------------------------ hashing

    def root(self) -> CID:
        """Encode the dirty nodes, write them to the store, and return the root's CID.

        Raises:
            BlockStoreError: the node store could not be written (what the store raises).
        """
        ref = self._root
        if ref is None:
            return EMPTY_ROOT
        if type(ref) is CID:
            return ref
        assert type(ref) is _Node
        with gc_paused():  # many small blocks and lists, no cycles: as the log does for bulk work
            cid = self._flush(ref)
        store = self.store
        if type(store) is BufferedNodes and store.pending_bytes > store.limit:
            store.settle()
        return cid

    def _flush(self, node: _Node) -> CID:
        cid = node.cid
        if cid is not None:
            return cid
        count = len(node.keys)
        cids = node.cids
        marks = node.marks
        node.marks = None
        if cids is None:  # the keys changed (or the group is new): every block anew
            cids = node.cids = [EMPTY_ROOT] * count
            node.blocks = [b""] * count
            marks = None
        elif marks is None:  # (not reached: a group is made dirty by a mark)
            cid = node.cid = cids[(count - 1) // 2]
            return cid
        else:
            marks.sort()
        cid = node.cid = self._blocks(node, cids, node.blocks, marks, 0, count)
        return cid

    def _blocks(
        self, node: _Node, cids: list[CID], blocks: list[bytes], marks: list[int] | None, a: int, b: int
    ) -> CID:
        """Write the blocks of a group's keys ``a`` to ``b - 1`` (``a < b``) that changed; their top's CID.

        ``marks`` (sorted) are the gaps and values that changed (None: everything is new); a span with
        none keeps its blocks, unread.
        """
        count = b - a
        r = a + (count - 1) // 2
        if marks is not None:
            at = bisect_left(marks, 2 * a)
            if at == len(marks) or marks[at] > 2 * b:
                return cids[r]
        left: CID | None
        right: CID | None
        if a == r:
            kid = node.kids[a]
            left = (kid.cid or self._flush(kid)) if isinstance(kid, _Node) else kid
        else:
            left = self._blocks(node, cids, blocks, marks, a, r)
        if r + 1 == b:
            kid = node.kids[b]
            right = (kid.cid or self._flush(kid)) if isinstance(kid, _Node) else kid
        else:
            right = self._blocks(node, cids, blocks, marks, r + 1, b)
        block = encode([left, node.keys[r], node.vals[r], right, count])
        cid = cids[r] = CID.for_block(block)
        blocks[r] = block
        self.store.put(cid, block)
        return cid

    def path(self, key: bytes) -> list[bytes]:
        """Return the blocks from the root down to where ``key`` is, or would be.

        Flushes first (see :meth:`root`). The list is a proof (see :mod:`orbit.state.proofs`).

        Raises:
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        self.root()
        node = self._root_node()
        if node is None:
            return [EMPTY_NODE]
        blocks: list[bytes] = []
        lo: bytes | None = None
        hi: bytes | None = None
        while True:
            keys = node.keys
            a, b = 0, len(keys)
            while a < b:  # down the group's balanced blocks
                r = a + (b - a - 1) // 2
                blocks.append(node.blocks[r])
                if keys[r] == key:
                    return blocks
                if key < keys[r]:
                    b = r
                else:
                    a = r + 1
            kid = node.kids[a]
            if kid is None:
                return blocks
            lo, hi = keys[a - 1] if a else lo, keys[a] if a < len(keys) else hi
            loaded = node.kids[a] = self._loaded(kid, lo, hi, node.layer)
            node = loaded

    def range_blocks(self, lo: bytes | None, hi: bytes | None) -> list[bytes]:
        """Return every block whose gap meets ``[lo, hi)``, parents before children.

        Flushes first. With the root these are what :func:`orbit.state.proofs.verify_range` needs.

        Raises:
            TreeNodeError: a node loaded on the way breaks the rules.
            BlockNotFoundError: the store lacks a node on the way.
        """
        self.root()
        node = self._root_node()
        if node is None:
            return [EMPTY_NODE]
        blocks: list[bytes] = []
        # (group, first key, end key, the gap's bounds): a block or a group's span of keys
        stack: list[tuple[_Node, int, int, bytes | None, bytes | None]] = [
            (node, 0, len(node.keys), None, None)
        ]
        while stack:
            node, a, b, glo, ghi = stack.pop()
            keys = node.keys
            ga = keys[a - 1] if a else glo
            gb = keys[b] if b < len(keys) else ghi
            if a == b:  # a subtree of the next group down, in the gap (ga, gb)
                kid = node.kids[a]
                if kid is not None and gap_meets(ga, gb, lo, hi):
                    loaded = node.kids[a] = self._loaded(kid, ga, gb, node.layer)
                    stack.append((loaded, 0, len(loaded.keys), ga, gb))
                continue
            if not gap_meets(ga, gb, lo, hi):
                continue
            r = a + (b - a - 1) // 2
            blocks.append(node.blocks[r])
            stack.append((node, r + 1, b, glo, ghi))
            stack.append((node, a, r, glo, ghi))
        return blocks

    # ------------------------------------------------------------------ internals

    def _loaded(self, ref: _Ref, lo: bytes | None, hi: bytes | None, below: int | None) -> _Node:
        if type(ref) is _Node:
            return ref
        assert type(ref) is CID
        return self._load(ref, lo, hi, below)

    def _root_node(self) -> _Node | None:
        ref = self._root
        if ref is None or type(ref) is _Node:
            return ref
        assert type(ref) is CID
        node = self._root = self._load(ref, None, None, None)
        return node

    def _load(self, cid: CID, lo: bytes | None, hi: bytes | None, below: int | None) -> _Node:
        """Read and check the group whose top block is ``cid``, in the gap ``(lo, hi)`` under ``below``."""
        keys: list[bytes] = []
        vals: list[bytes] = []
        kids: list[_Ref] = []
        cids: list[CID] = []
        blocks: list[bytes] = []
        store = self.store

        def read(cid: CID, lo: bytes | None, hi: bytes | None, slot: Slot | None) -> int:
            block = store.get(cid)
            data = decode_node(cid, block, lo=lo, hi=hi, slot=slot)
            if data.layer < 0:
                raise TreeNodeError("the empty node inside a tree", cid)
            (key,), (value,) = data.keys, data.values
            left, right = data.kids
            left_slot, right_slot = data.slots
            if left_slot[1]:
                assert left is not None  # (the check requires it)
                read(left, lo, key, left_slot)
            else:
                kids.append(left)
            keys.append(key)
            vals.append(value)
            cids.append(cid)
            blocks.append(block)
            if right_slot[1]:
                assert right is not None
                read(right, key, hi, right_slot)
            else:
                kids.append(right)
            return data.layer

        layer = read(cid, lo, hi, None if below is None else (below, 0))
        node = _Node(layer, keys, vals, kids)
        node.cid, node.cids, node.blocks = cid, cids, blocks
        return node

    def _split(
        self, ref: _Ref, key: bytes, lo: bytes | None, hi: bytes | None, below: int | None
    ) -> tuple[_Ref, _Ref]:
        """Split a subtree into the subtrees of its keys below and above ``key`` (absent from it)."""
        if ref is None:
            return None, None
        node = self._loaded(ref, lo, hi, below)
        keys = node.keys
        i = bisect_left(keys, key)
        left_kid, right_kid = self._split(
            node.kids[i], key, keys[i - 1] if i else lo, keys[i] if i < len(keys) else hi, node.layer
        )
        left: _Ref = _Node(node.layer, keys[:i], node.vals[:i], [*node.kids[:i], left_kid]) if i else left_kid
        right: _Ref = (
            _Node(node.layer, keys[i:], node.vals[i:], [right_kid, *node.kids[i + 1 :]])
            if i < len(keys)
            else right_kid
        )
        return left, right

    def _merge(
        self, a: _Ref, a_lo: bytes | None, b: _Ref, b_hi: bytes | None, key: bytes, below: int
    ) -> _Ref:
        """Join subtree ``a`` (keys in (a_lo, key)) and ``b`` (keys in (key, b_hi)) into one."""
        if a is None:
            return b
        if b is None:
            return a
        left = self._loaded(a, a_lo, key, below)
        right = self._loaded(b, key, b_hi, below)
        if left.layer > right.layer:
            left.kids[-1] = self._merge(left.kids[-1], left.keys[-1], right, b_hi, key, left.layer)
            left.mark(2 * len(left.keys))
            return left
        if right.layer > left.layer:
            right.kids[0] = self._merge(left, a_lo, right.kids[0], right.keys[0], key, right.layer)
            right.mark(0)
            return right
        middle = self._merge(left.kids[-1], left.keys[-1], right.kids[0], right.keys[0], key, left.layer)
        left.keys.extend(right.keys)
        left.cids = None
        left.vals.extend(right.vals)
        left.kids[-1:] = [middle, *right.kids[1:]]
        left.cid = None
        return left


def tree_blocks(store: NodeStore, root: CID) -> Iterator[tuple[CID, bytes]]:
    """Yield every block under ``root`` (parents first), and the blocks of the values held as digests.

    A value block the store lacks is left out; the tree's blocks must all be there.

    Raises:
        BlockNotFoundError: the store lacks a block of the tree.
    """
    if root == EMPTY_ROOT:
        yield EMPTY_ROOT, EMPTY_NODE
        return
    stack = [root]
    while stack:
        cid = stack.pop()
        block = store.get(cid)
        yield cid, block
        links, digest = block_parts(block)
        if digest is not None:
            value_cid = CID.for_digest(digest)
            value_block = _get_or_none(store, value_cid)
            if value_block is not None:
                yield value_cid, value_block
        stack.extend(reversed(links))


def block_parts(block: bytes) -> tuple[list[CID], bytes | None]:
    """A block's links (left, then right) and its value when that is a 32-byte digest (our own blocks)."""
    value = decode(block)
    assert type(value) is list
    if len(value) != 5:  # the empty root
        return [], None
    left, _, held, right, _ = value
    links = [link for link in (left, right) if type(link) is CID]
    return links, held if type(held) is bytes and len(held) == 32 else None


def _get_or_none(store: NodeStore, cid: CID) -> bytes | None:
    try:
        return store.get(cid)
    except BlockNotFoundError:
        return None


def gap_meets(a: bytes | None, b: bytes | None, lo: bytes | None, hi: bytes | None) -> bool:
    """Whether the gap ``(a, b)`` of a subtree may hold a key in ``[lo, hi)`` (None: unbounded)."""
    return (a is None or hi is None or a < hi) and (b is None or lo is None or lo < b)


def _check(key: bytes, value: bytes) -> None:
    if type(key) is not bytes or len(key) > MAX_KEY:
        raise ValueError(f"a key is at most {MAX_KEY} bytes: {key[:40]!r}")
    if type(value) is not bytes or len(value) > MAX_VALUE:
        raise ValueError(f"a value is at most {MAX_VALUE} bytes")


def successor(prefix: bytes) -> bytes | None:
    """The least key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
