"""What changed between two roots, reading only the nodes that differ (and their neighbours on the path).

Both trees are walked in key order at once, each as a stack of pending items (a key and its value) and
subtrees (a CID). Two pending subtrees with the same CID hold the same keys, so both are skipped without
being read; otherwise the side whose front is a subtree of the higher layer is opened. As a tree is a
function of its key set, the parts a change did not touch are shared and skipped, so the cost follows the
number of changed keys times the depth, not the size of the trees. Nodes are checked as they are read.

>>> from orbit.state.tree import StateTree
>>> tree = StateTree()
>>> for i in range(50):
...     tree.put(b"k%02d" % i, b"a")
>>> before = tree.root()
>>> tree.put(b"k07", b"b"); tree.put(b"k99", b"c"); _ = tree.delete(b"k10")
>>> list(diff(tree.store, before, tree.root()))
[(b'k07', b'a', b'b'), (b'k10', b'a', None), (b'k99', None, b'c')]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ipfs_log.cid import CID
from orbit.state.nodes import EMPTY_ROOT, Slot, decode_node
from orbit.state.tree import NodeStore, gap_meets

__all__ = ["diff"]


@dataclass(slots=True)
class _Sub:
    """A pending subtree: its CID, the gap it lies in and its slot in its parent; ``layer`` once read."""

    cid: CID
    lo: bytes | None
    hi: bytes | None
    below: Slot | None
    layer: int = -2
    opened: list[_Sub | tuple[bytes, bytes]] | None = None


_Pending = _Sub | tuple[bytes, bytes]


def diff(
    store: NodeStore, a: CID, b: CID, lo: bytes | None = None, hi: bytes | None = None
) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
    """Yield ``(key, value in a or None, value in b or None)`` for every key whose value differs.

    In key order, only for keys in ``[lo, hi)`` (None: unbounded): subtrees outside the range are not
    read. ``store`` must hold the nodes of both trees that differ (an untrusted store is fine: every
    node read is checked).

    Raises:
        TreeNodeError: a node read breaks the rules.
        BlockNotFoundError: the store lacks a node that must be read.
    """
    bounds = (lo, hi)
    left: list[_Pending] = [] if a == EMPTY_ROOT else [_Sub(a, None, None, None)]
    right: list[_Pending] = [] if b == EMPTY_ROOT else [_Sub(b, None, None, None)]
    while left or right:
        if not left:
            yield from _drain(store, bounds, right, False)
            return
        if not right:
            yield from _drain(store, bounds, left, True)
            return
        x, y = left[-1], right[-1]
        if type(x) is _Sub and type(y) is _Sub:
            if x.cid == y.cid:
                left.pop()
                right.pop()
                continue
            _read(store, bounds, x)
            _read(store, bounds, y)
            if x.layer >= y.layer:
                _open(left)
            if y.layer >= x.layer:
                _open(right)
            continue
        if type(x) is _Sub:
            _read(store, bounds, x)
            _open(left)
            continue
        if type(y) is _Sub:
            _read(store, bounds, y)
            _open(right)
            continue
        assert type(x) is tuple
        assert type(y) is tuple
        if x[0] == y[0]:
            left.pop()
            right.pop()
            if x[1] != y[1]:
                yield x[0], x[1], y[1]
        elif x[0] < y[0]:
            left.pop()
            yield x[0], x[1], None
        else:
            right.pop()
            yield y[0], None, y[1]


def _read(store: NodeStore, bounds: tuple[bytes | None, bytes | None], sub: _Sub) -> None:
    if sub.opened is not None:
        return
    node = decode_node(sub.cid, store.get(sub.cid), lo=sub.lo, hi=sub.hi, slot=sub.below)
    sub.layer = node.layer
    parts: list[_Pending] = []
    keys = node.keys
    lo, hi = bounds
    for i, kid in enumerate(node.kids):
        a = keys[i - 1] if i else sub.lo
        b = keys[i] if i < len(keys) else sub.hi
        if kid is not None and gap_meets(a, b, lo, hi):
            parts.append(_Sub(kid, a, b, node.slots[i]))
        if i < len(keys) and (lo is None or lo <= keys[i]) and (hi is None or keys[i] < hi):
            parts.append((keys[i], node.values[i]))
    parts.reverse()  # a stack: the first part on top
    sub.opened = parts


def _open(stack: list[_Pending]) -> None:
    sub = stack.pop()
    assert type(sub) is _Sub
    assert sub.opened is not None
    stack.extend(sub.opened)


def _drain(
    store: NodeStore, bounds: tuple[bytes | None, bytes | None], stack: list[_Pending], in_a: bool
) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
    while stack:
        top = stack[-1]
        if type(top) is _Sub:
            _read(store, bounds, top)
            _open(stack)
            continue
        stack.pop()
        assert type(top) is tuple
        yield (top[0], top[1], None) if in_a else (top[0], None, top[1])
