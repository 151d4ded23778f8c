"""The state tree's shape and blocks: the layer rule, the one canonical block form, and its strict check.

**Shape.** A key's **layer** is the number of leading zero bits of ``sha256(key)``, halved (AT Protocol's
rule: a key is on layer ``n`` or higher with probability ``4 ** -n``). The keys of the highest layer in
a range split it; the gaps between them hold the lower layers, the same way down. That much is a Merkle
search tree, and it is a function of the key set alone. What is new is how one layer within one gap (a
**group**) is stored: not as one node holding all its keys, but as a balanced binary tree of one-key
blocks, rooted at the group's middle key (index ``(m - 1) // 2`` of its ``m`` keys), each half rooted at
its own middle the same way; a group's outer links lead to the next groups down. Every block therefore
holds one key, its value and two links, and the whole tree is a binary search tree whose shape is still
a function of the key set (the rule says where each key goes) and history-independent.

**Why.** A proof carries every key and every link of every block on its path. A node that holds all of
a group's keys makes a path carry whole groups, and a search tree shaped by hashes alone (a treap) has
paths whose length varies widely: at a million keys the previous tree (one key per node on average, a
quarter of a bit a layer) had paths of up to 61 keys and proofs up to 2,232 bytes. Here a path crosses
each group in ``log2`` of its size, so paths are short *and* even. Measured at 1M live keys, every key
proven (``bench/state.py``): the largest proof is 1,505 bytes (it was 2,232) and the deepest path 36
blocks (see :mod:`orbit.state.proofs`). A write re-hashes the blocks between its key and its group's
top, and those above: 10% more blocks than the previous tree, in fewer instructions all told (a group
remembers what changed in it, so a flush visits only the blocks above a change).

**Blocks.** A block is the DAG-CBOR list ``[left, key, value, right, count]``: ``left`` and ``right`` are
CID links (tag 42) or null; ``key`` (at most :data:`MAX_KEY` bytes) and ``value`` (at most
:data:`MAX_VALUE`: an inline value or a digest, the tree does not interpret it) are byte strings;
``count`` is the number of keys of the block's group in the subtree the block roots *within its group*
(itself included). Lists, not maps: a proof carries every block of its path, and names would cost bytes.

**The check, block by block.** ``count`` makes the whole shape checkable one block at a time against
what the parent says of the child's place (a :data:`Slot`, ``(layer, count)``): a block of ``count`` c
on layer L gives its left child the slot ``(L, (c - 1) // 2)`` and its right ``(L, c // 2)``. A child
in a slot with a count above zero is a block of that very layer and count (the group goes on); a child
in a slot of count zero is empty or of a lower layer (the next group down). With the gap each parent
gives (every key between the keys around it), this is everything: a tree whose every block passes is
the one tree of its keys. :func:`decode_node` checks a block from outside (a store, a peer, a range
proof) this way: its bytes hash to its CID, they are canonical DAG-CBOR, and the rules above hold.

The empty tree's root is the one block :data:`EMPTY_NODE`, never a subtree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, TypeAlias

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import TreeNodeError

__all__ = [
    "BITS_PER_LAYER",
    "EMPTY_NODE",
    "EMPTY_ROOT",
    "MAX_COUNT",
    "MAX_KEY",
    "MAX_LAYER",
    "MAX_NODE_BYTES",
    "MAX_VALUE",
    "NodeData",
    "Slot",
    "check_block",
    "decode_node",
    "encode_block",
    "layer_of",
    "shared_prefix",
]

BITS_PER_LAYER: Final = 2
"""Leading zero bits of a key's hash per layer: a group holds 3 keys on average (a fanout of 4)."""
MAX_LAYER: Final = 256 // BITS_PER_LAYER
"""The highest layer (a key whose hash is all zero bits)."""
MAX_KEY: Final = 1024
"""Longest key, in bytes."""
MAX_VALUE: Final = 64
"""Longest value, in bytes (values are small inline encodings or digests)."""
MAX_COUNT: Final = 4096
"""Most keys in one group (a group holds 3 on average; more than a few hundred is forged)."""
MAX_NODE_BYTES: Final = 4096
"""Largest block (a block holds one key of at most 1 KiB, a value and two links)."""

EMPTY_NODE: Final = encode([None, []])
"""The one block with no key: the root of the empty tree, never a subtree."""
EMPTY_ROOT: Final = CID.for_block(EMPTY_NODE)
"""The root CID of the empty tree."""

Slot: TypeAlias = tuple[int, int]
"""What a parent says of a child's place: ``(layer, count)``; a count of 0 means "any lower layer"."""

_sha256 = hashlib.sha256
_from_bytes = int.from_bytes


def layer_of(key: bytes) -> int:
    """Return the layer of ``key``: the leading zero bits of ``sha256(key)``, halved (rounded down).

    >>> layer_of(b"a"), layer_of(b"key-5")
    (0, 2)
    """
    n = _from_bytes(_sha256(key).digest(), "big")
    return (256 - n.bit_length()) // BITS_PER_LAYER


def shared_prefix(a: bytes, b: bytes) -> int:
    """Return the length of the longest common prefix of ``a`` and ``b``.

    >>> shared_prefix(b"apple", b"apricot")
    2
    """
    n = min(len(a), len(b))
    diff = _from_bytes(a[:n], "big") ^ _from_bytes(b[:n], "big")
    return n - (diff.bit_length() + 7) // 8  # the bytes left of the first differing bit are equal


def encode_block(left: CID | None, key: bytes, value: bytes, right: CID | None, count: int) -> bytes:
    """Return the canonical block ``[left, key, value, right, count]``."""
    return encode([left, key, value, right, count])


@dataclass(frozen=True, slots=True)
class NodeData:
    """A block as read back and checked: its key and value, its two subtrees, and their slots.

    ``keys``/``values`` hold the one key (none for the empty root) and ``kids`` the subtrees around it
    (left, right), so code that walks gaps treats every block alike.
    """

    layer: int
    """The key's layer (-1 for the empty root)."""
    keys: tuple[bytes, ...]
    values: tuple[bytes, ...]
    kids: tuple[CID | None, ...]
    """The left subtree, then the right (None: empty)."""
    count: int = 0
    """Keys of the block's group in the subtree it roots within the group (0 for the empty root)."""

    @property
    def slots(self) -> tuple[Slot, Slot]:
        """The slot each kid is in: what :func:`decode_node` is given as ``slot`` for it."""
        return (self.layer, (self.count - 1) // 2), (self.layer, self.count // 2)


def decode_node(
    cid: CID,
    block: bytes,
    *,
    lo: bytes | None = None,
    hi: bytes | None = None,
    slot: Slot | None = None,
) -> NodeData:
    """Check a block read from anywhere, and return what it holds.

    Args:
        cid: the CID it was asked for.
        block: the bytes received.
        lo: the key must be greater than this (the key before the block's gap in its parent).
        hi: the key must be less than this (the key after the gap).
        slot: what the parent says of this place (:attr:`NodeData.slots`); None for a root (which alone
            may be the empty block).

    Raises:
        TreeNodeError: any rule is broken; the message says which.
    """
    if len(block) > MAX_NODE_BYTES:
        raise TreeNodeError(f"{len(block)} bytes, over the {MAX_NODE_BYTES}-byte limit", cid)
    if not cid.is_entry_cid or cid != CID.for_block(block):
        raise TreeNodeError("the bytes do not hash to the CID (CIDv1 dag-cbor sha2-256)", cid)
    try:
        value = decode(block)
    except CodecError as e:
        raise TreeNodeError(f"not canonical DAG-CBOR ({e})", cid) from e
    return check_node(cid, value, lo=lo, hi=hi, slot=slot)


def check_node(
    cid: CID,
    value: IPLDKind,
    *,
    lo: bytes | None = None,
    hi: bytes | None = None,
    slot: Slot | None = None,
) -> NodeData:
    """Check a block's decoded value (whose bytes hash to ``cid``) as :func:`decode_node` does.

    Raises:
        TreeNodeError: any rule is broken; the message says which.
    """
    if block_is_empty(value):
        if slot is not None:
            raise TreeNodeError("the empty block is only the root of the empty tree", cid)
        return NodeData(-1, (), (), (None,))
    if type(value) is not list or len(value) != 5:
        raise TreeNodeError("a block is [left, key, value, right, count]", cid)
    left, key, val, right, count = value
    if left is not None and type(left) is not CID:
        raise TreeNodeError("the left subtree is neither a link nor null", cid)
    if right is not None and type(right) is not CID:
        raise TreeNodeError("the right subtree is neither a link nor null", cid)
    if type(key) is not bytes or type(val) is not bytes or type(count) is not int:
        raise TreeNodeError("the key and value are bytes, the count an integer", cid)
    layer = check_block(cid, key, val, count, left is not None, right is not None, lo, hi, slot)
    return NodeData(layer, (key,), (val,), (left, right), count)


def block_is_empty(value: IPLDKind) -> bool:
    """Whether a decoded block is :data:`EMPTY_NODE`'s value, ``[null, []]``."""
    return type(value) is list and len(value) == 2 and value[0] is None and value[1] == []


def check_block(
    cid: CID,
    key: bytes,
    value: bytes,
    count: int,
    has_left: bool,
    has_right: bool,
    lo: bytes | None = None,
    hi: bytes | None = None,
    slot: Slot | None = None,
) -> int:
    """Check one block's fields against the tree's rules; return its key's layer.

    The rules every block obeys whatever its encoding (stored, or a block of a proof): key and value
    sizes, the count between 1 and :data:`MAX_COUNT`, the key inside the gap ``(lo, hi)``, the layer and
    count the parent's ``slot`` asks for, a kid wherever the count says keys of the group lie, and no
    lower subtree under a block of layer 0.

    Raises:
        TreeNodeError: a rule is broken; the message says which.
    """
    if len(key) > MAX_KEY or len(value) > MAX_VALUE:
        raise TreeNodeError(f"a key is at most {MAX_KEY} bytes and a value at most {MAX_VALUE}", cid)
    if not 0 < count <= MAX_COUNT:
        raise TreeNodeError(f"a count is 1 to {MAX_COUNT}, not {count}", cid)
    if (lo is not None and key <= lo) or (hi is not None and key >= hi):
        raise TreeNodeError("the key lies outside the gap the parent gives the block", cid)
    layer = layer_of(key)
    if slot is not None:
        above, expected = slot
        if expected:
            if layer != above or count != expected:
                raise TreeNodeError(
                    f"a block of layer {layer} and count {count} where its parent puts one of layer "
                    f"{above} and count {expected}",
                    cid,
                )
        elif layer >= above:
            raise TreeNodeError(f"a block of layer {layer} under the edge of a group of layer {above}", cid)
    left_count, right_count = (count - 1) // 2, count // 2
    if (left_count and not has_left) or (right_count and not has_right):
        raise TreeNodeError(f"a count of {count}, but a side that must hold keys of the group is empty", cid)
    if layer == 0 and ((has_left and not left_count) or (has_right and not right_count)):
        raise TreeNodeError("a block of layer 0 has a subtree of a lower layer", cid)
    return layer
