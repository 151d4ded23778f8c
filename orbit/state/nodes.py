"""The state tree's nodes: their one canonical DAG-CBOR form, and the strict check of a node read back.

A node is the DAG-CBOR list ``[left, [[p, k, v, right], …]]``: ``left`` and each ``right`` are CID links
(tag 42) to the subtrees before the first key and after each key, or null for an empty gap; each entry
holds its key as ``p``, the length of the prefix it shares with the previous key of the node (0 for the
first), and ``k``, the rest of the key; ``v`` is the value's bytes (at most :data:`MAX_VALUE`, an inline
value or a digest: the tree does not interpret them). Lists, not maps: a proof carries every entry of
every node on its path, and field names would cost 8 bytes an entry.

A key's **layer** is ``floor(LAYERS_PER_BIT * -log2(u))`` where ``u`` is the first 64 bits of
``sha256(key)`` read as a fraction of 1: a key is on layer ``n`` or higher with probability
``2 ** (-n / LAYERS_PER_BIT)``, a fanout of ``2 ** (1/4)``. AT Protocol counts whole 2-bit groups
(fanout 4); this tree counts quarters of a bit, so most nodes hold one key and the tree is close to a
treap (a binary search tree shaped by each key's hash), while layers stay bounded (0 to
:data:`MAX_LAYER`). Why: a proof holds every entry and every link of every node on its path. At fanout
``b`` a path has ``log_b(n)`` nodes and the node a path crosses holds ``2 (b - 1)`` keys on average (a
path is more likely to cross a full node), so a proof carries about ``2 (b - 1) / ln b * ln n`` entries
and links: 60 at fanout 4, 40 at fanout 2, towards ``2 ln n`` (28 at a million keys) as ``b`` nears 1;
but each write re-hashes the nodes of its path, and there are more of them. Measured at 1M keys
(compact proofs of 1,000 random keys, mean / p99 / max bytes; tree upkeep per admitted entry of the
``bench/state.py`` workload cut to 300k entries over 10k keys, µs, the mean and the median batch, two
runs on a shared machine):

=================  =======================  =====================
layers per bit     proof bytes              upkeep per entry
=================  =======================  =====================
1 (fanout 2)       1,511 / 2,308 / 2,566    17-20 / 12-14
2                  1,309 / 2,025 / 2,230    16-17 / 15-16
4 (this tree)      1,190 / 1,790 / 2,031    18-20 / 17-19
8                  1,131 / 1,711 / 1,987    24-30 / 17-19
=================  =======================  =====================

Four is the finest that keeps the upkeep target (20 µs); an unbounded treap (a 64-bit rank per key)
would save about 2% more proof bytes, and a writer could grind keys into one path thousands of nodes
deep, where here a path has at most ``MAX_LAYER + 1`` nodes. The layer is computed with integers alone
(thresholds that are exact integer roots), so every platform gets the same tree.

A node holds every key of one layer within its range, in byte order; each gap between them is the
subtree of the keys in that gap, rooted at the highest layer present there (an empty gap is null; layers
with no key in a gap are skipped, so no node is empty and none is only a link). Hence the tree is a
function of the key set alone.

A node from outside (a store, a peer, a proof) is checked by :func:`decode_node`: its bytes hash to its
CID, they are canonical DAG-CBOR, entries are well-formed with the shortest encoding (``p`` is the whole
shared prefix), keys strictly increase, every key has the node's layer, the layer is below the parent's,
and every key is inside the gap the parent gives the node.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
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
    "LAYERS_PER_BIT",
    "MAX_LAYER",
    "MAX_ENTRIES",
    "MAX_KEY",
    "MAX_NODE_BYTES",
    "MAX_VALUE",
    "NodeData",
    "check_entries",
    "check_node",
    "decode_node",
    "encode_node",
    "layer_of",
    "shared_prefix",
]

LAYERS_PER_BIT: Final = 4
"""Layers per bit of ``-log2`` of a key's hash: a fanout of ``2 ** (1/4)`` (see the module's text)."""
MAX_LAYER: Final = 64 * LAYERS_PER_BIT
"""The highest layer (a key whose hash starts with 64 zero bits)."""
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


def _root_floor(power: int, n: int) -> int:
    """``floor(2 ** (power / n))`` by integer bisection (exact, whatever the platform's floats)."""
    lo, hi = 1, 1 << (power // n + 1)
    target = 1 << power
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid**n <= target:
            lo = mid
        else:
            hi = mid
    return lo


# ``N <= _THRESHOLDS[j]`` iff ``N <= 2 ** (64 - (j + 1) / LAYERS_PER_BIT)``, for N in [2**63, 2**64).
_THRESHOLDS: Final = tuple(
    sorted(_root_floor(64 * LAYERS_PER_BIT - j, LAYERS_PER_BIT) for j in range(1, LAYERS_PER_BIT + 1))
)


def layer_of(key: bytes) -> int:
    """Return the layer of ``key``: ``floor(LAYERS_PER_BIT * -log2(u))``, u its hash's first 64 bits / 2**64.

    >>> layer_of(b"a"), layer_of(b"key-12")
    (1, 43)
    """
    n = _from_bytes(_sha256(key).digest()[:8], "big")
    if not n:
        return MAX_LAYER
    zeros = 64 - n.bit_length()
    # -log2(u) = zeros + t, t in (0, 1]; floor(4 t) counts thresholds 2**(64 - j/4) at or over the top bits
    return zeros * LAYERS_PER_BIT + LAYERS_PER_BIT - bisect_left(_THRESHOLDS, n << zeros)


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
    keys: list[bytes] = []
    values: list[bytes] = []
    kids: list[CID | None] = [left]
    prev = b""
    for n, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != 4:
            raise TreeNodeError(f"entry {n} is not [p, k, v, right]", cid)
        p, rest, val, right = entry
        if type(p) is not int or type(rest) is not bytes or type(val) is not bytes:
            raise TreeNodeError(f"entry {n}: p is an int, k and v are bytes", cid)
        if right is not None and type(right) is not CID:
            raise TreeNodeError(f"entry {n}: the right subtree is neither a link nor null", cid)
        held = len(prev)
        if not 0 <= p <= held or p + len(rest) > MAX_KEY:
            raise TreeNodeError(f"entry {n}: prefix length, key or value out of bounds", cid)
        key = prev[:p] + rest
        if n and key <= prev:
            raise TreeNodeError(f"entry {n}: keys are not in strictly increasing order", cid)
        if p < held and rest and rest[0] == prev[p]:  # key[:p] == prev[:p] by construction
            raise TreeNodeError(f"entry {n}: the shared prefix is not given in full", cid)
        keys.append(key)
        values.append(val)
        kids.append(right)
        prev = key
    layer = check_entries(cid, keys, values, any(k is not None for k in kids), lo=lo, hi=hi, below=below)
    return NodeData(layer, tuple(keys), tuple(values), tuple(kids))


def check_entries(
    cid: CID,
    keys: Sequence[bytes],
    values: Sequence[bytes],
    has_kid: bool,
    lo: bytes | None = None,
    hi: bytes | None = None,
    below: int | None = None,
) -> int:
    """Check the keys and values of a non-empty node against the tree's rules; return its layer.

    The rules every node obeys whatever its encoding (a block, or a node of a proof): at most
    :data:`MAX_ENTRIES` keys, key and value sizes, keys strictly increasing and all of one layer, that
    layer below ``below`` (the parent's), every key in the gap ``(lo, hi)``, and no subtree at layer 0.

    Raises:
        TreeNodeError: a rule is broken; the message says which.
    """
    if len(keys) > MAX_ENTRIES:
        raise TreeNodeError(f"{len(keys)} entries, over the {MAX_ENTRIES} limit", cid)
    layer = -1
    prev = b""
    for n, key in enumerate(keys):
        if len(key) > MAX_KEY or len(values[n]) > MAX_VALUE:
            raise TreeNodeError(f"entry {n}: prefix length, key or value out of bounds", cid)
        if n and key <= prev:
            raise TreeNodeError(f"entry {n}: keys are not in strictly increasing order", cid)
        key_layer = layer_of(key)
        if n == 0:
            layer = key_layer
        elif key_layer != layer:
            raise TreeNodeError(f"entry {n}: key of layer {key_layer} in a node of layer {layer}", cid)
        prev = key
    if below is not None and layer >= below:
        raise TreeNodeError(f"a node of layer {layer} under a node of layer {below}", cid)
    if (lo is not None and keys[0] <= lo) or (hi is not None and keys[-1] >= hi):
        raise TreeNodeError("a key lies outside the gap the parent gives the node", cid)
    if layer == 0 and has_kid:
        raise TreeNodeError("a node of layer 0 has a subtree", cid)
    return layer
