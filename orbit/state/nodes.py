"""The state tree's nodes: their one canonical DAG-CBOR form, and the strict check of a node read back.

A node is the DAG-CBOR list ``[left, [[p, k, v, right], …]]``: ``left`` and each ``right`` are CID links
(tag 42) to the subtrees before the first key and after each key, or null for an empty gap; each entry
holds its key as ``p``, the length of the prefix it shares with the previous key of the node (0 for the
first), and ``k``, the rest of the key; ``v`` is the value's bytes (at most :data:`MAX_VALUE`, an inline
value or a digest: the tree does not interpret them). Lists, not maps: a proof carries every entry of
every node on its path, and field names would cost 8 bytes an entry.

A key's **layer** is the number of leading zero :data:`FANOUT_BITS`-bit groups of ``sha256(key)``, so a
key is on layer ``n`` or higher with probability ``2**-n`` (fanout 2; AT Protocol uses 2 bits, fanout 4,
but a proof holds every link of every node on its path, and at a million keys fanout 2 gives proofs of
about 1.6 kB against 2.2 kB: see the README's figures). A node holds every key of one
layer within its range, in byte order; each gap between them is the subtree of the keys in that gap,
rooted at the highest layer present there (an empty gap is null; layers with no key in a gap are skipped,
so no node is empty and none is only a link). Hence the tree is a function of the key set alone.

A node from outside (a store, a peer, a proof) is checked by :func:`decode_node`: its bytes hash to its
CID, they are canonical DAG-CBOR, entries are well-formed with the shortest encoding (``p`` is the whole
shared prefix), keys strictly increase, every key has the node's layer, the layer is below the parent's,
and every key is inside the gap the parent gives the node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import TreeNodeError

__all__ = [
    "EMPTY_NODE",
    "EMPTY_ROOT",
    "FANOUT_BITS",
    "MAX_ENTRIES",
    "MAX_KEY",
    "MAX_NODE_BYTES",
    "MAX_VALUE",
    "NodeData",
    "check_node",
    "decode_node",
    "encode_node",
    "layer_of",
    "shared_prefix",
]

FANOUT_BITS: Final = 1
"""Bits of ``sha256(key)`` per layer: fanout 2 (AT Protocol repositories use 2; see the module's text)."""
MAX_KEY: Final = 1024
"""Longest key, in bytes."""
MAX_VALUE: Final = 64
"""Longest value, in bytes (values are small inline encodings or digests)."""
MAX_ENTRIES: Final = 4096
"""Most keys in one node (a node holds 2 on average; more than a few hundred is forged)."""
MAX_NODE_BYTES: Final = 1 << 20
"""Largest node block."""

EMPTY_NODE: Final = encode([None, []])
"""The one node with no key: the root of the empty tree, never a subtree."""
EMPTY_ROOT: Final = CID.for_block(EMPTY_NODE)
"""The root CID of the empty tree."""

_sha256 = hashlib.sha256
_from_bytes = int.from_bytes


def layer_of(key: bytes) -> int:
    """Return the layer of ``key``: leading zero :data:`FANOUT_BITS`-bit groups of its sha256.

    >>> layer_of(b"a"), layer_of(b"key-12")
    (0, 10)
    """
    n = _from_bytes(_sha256(key).digest()[:8], "big")
    return (64 - n.bit_length()) // FANOUT_BITS


def shared_prefix(a: bytes, b: bytes) -> int:
    """Return the length of the longest common prefix of ``a`` and ``b``.

    >>> shared_prefix(b"apple", b"apricot")
    2
    """
    n = min(len(a), len(b))
    diff = _from_bytes(a[:n], "big") ^ _from_bytes(b[:n], "big")
    return n - (diff.bit_length() + 7) // 8  # the bytes left of the first differing bit are equal


def encode_node(keys: Sequence[bytes], values: Sequence[bytes], kids: Sequence[CID | None]) -> bytes:
    """Return the canonical block of the node holding ``keys`` (sorted) with ``values`` and ``kids``.

    ``kids`` has one more item than ``keys``: the left subtree, then the subtree after each key.
    """
    entries: list[IPLDKind] = []
    prev = b""
    for i, key in enumerate(keys):
        p = shared_prefix(prev, key)
        entries.append([p, key[p:], values[i], kids[i + 1]])
        prev = key
    return encode([kids[0], entries])


@dataclass(frozen=True, slots=True)
class NodeData:
    """A node as read back and checked: its keys, values and the CIDs of its subtrees."""

    layer: int
    """The layer of every key of the node (-1 for the empty root)."""
    keys: tuple[bytes, ...]
    values: tuple[bytes, ...]
    kids: tuple[CID | None, ...]
    """The left subtree, then the subtree after each key (None: an empty gap)."""


def decode_node(
    cid: CID,
    block: bytes,
    *,
    lo: bytes | None = None,
    hi: bytes | None = None,
    below: int | None = None,
) -> NodeData:
    """Check a node read from anywhere, and return what it holds.

    Args:
        cid: the CID it was asked for.
        block: the bytes received.
        lo: every key must be greater than this (the key before the node's gap in its parent).
        hi: every key must be less than this (the key after the gap).
        below: the parent's layer, which the node's must be under; None for a root (which alone may
            be the empty node).

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
    return check_node(cid, value, lo=lo, hi=hi, below=below)


def check_node(
    cid: CID,
    value: IPLDKind,
    *,
    lo: bytes | None = None,
    hi: bytes | None = None,
    below: int | None = None,
) -> NodeData:
    """Check a node's decoded value (whose block hashes to ``cid``) as :func:`decode_node` does.

    Raises:
        TreeNodeError: any rule is broken; the message says which.
    """
    if type(value) is not list or len(value) != 2:
        raise TreeNodeError("a node is [left, [entries]]", cid)
    left, entries = value
    if type(entries) is not list:
        raise TreeNodeError("a node is [left, [entries]]", cid)
    if left is not None and type(left) is not CID:
        raise TreeNodeError("the left subtree is neither a link nor null", cid)
    if not entries:
        if left is not None or below is not None:
            raise TreeNodeError("an empty node is only the root of the empty tree", cid)
        return NodeData(-1, (), (), (None,))
    if len(entries) > MAX_ENTRIES:
        raise TreeNodeError(f"{len(entries)} entries, over the {MAX_ENTRIES} limit", cid)
    keys: list[bytes] = []
    values: list[bytes] = []
    kids: list[CID | None] = [left]
    prev = b""
    layer = -1
    for n, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != 4:
            raise TreeNodeError(f"entry {n} is not [p, k, v, right]", cid)
        p, rest, val, right = entry
        if type(p) is not int or type(rest) is not bytes or type(val) is not bytes:
            raise TreeNodeError(f"entry {n}: p is an int, k and v are bytes", cid)
        if right is not None and type(right) is not CID:
            raise TreeNodeError(f"entry {n}: the right subtree is neither a link nor null", cid)
        held = len(prev)
        if not 0 <= p <= held or p + len(rest) > MAX_KEY or len(val) > MAX_VALUE:
            raise TreeNodeError(f"entry {n}: prefix length, key or value out of bounds", cid)
        key = prev[:p] + rest
        if key <= prev and n:
            raise TreeNodeError(f"entry {n}: keys are not in strictly increasing order", cid)
        if p < held and rest and rest[0] == prev[p]:  # key[:p] == prev[:p] by construction
            raise TreeNodeError(f"entry {n}: the shared prefix is not given in full", cid)
        key_layer = (64 - _from_bytes(_sha256(key).digest()[:8], "big").bit_length()) // FANOUT_BITS
        if n == 0:
            layer = key_layer
        elif key_layer != layer:
            raise TreeNodeError(f"entry {n}: key of layer {key_layer} in a node of layer {layer}", cid)
        keys.append(key)
        values.append(val)
        kids.append(right)
        prev = key
    if below is not None and layer >= below:
        raise TreeNodeError(f"a node of layer {layer} under a node of layer {below}", cid)
    if (lo is not None and keys[0] <= lo) or (hi is not None and keys[-1] >= hi):
        raise TreeNodeError("a key lies outside the gap the parent gives the node", cid)
    if layer == 0 and any(k is not None for k in kids):
        raise TreeNodeError("a node of layer 0 has a subtree", cid)
    return NodeData(layer, tuple(keys), tuple(values), tuple(kids))
