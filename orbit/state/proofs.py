"""Proofs: the blocks on a key's path, written compactly, and their stand-alone check.

A proof of ``key`` against a root is the path of blocks from the root down to the block that holds the
key or, for an absent key, to the block whose side for the key is empty, top first. It is not the
blocks' bytes: it holds exactly what the verifier cannot recompute, in a compact binary form (varints
are unsigned LEB128, shortest form)::

    proof = block+                                   the path, top first
    block = varint(count << 4 | code of left << 2 | code of right)
            varint(p) varint(len s) s varint(len v) v link(left) link(right)
    link  = nothing (code 0: null; code 1: the next block of the proof) | 32-byte digest (code 2)
          | block (code 3: an off-path subtree written out, when that is under 32 bytes)

The block's key is ``key[:p] + s``, ``key`` being the key proven (the keys on a path share long prefixes
with it) and ``p`` the whole shared prefix. A digest is a block's sha2-256 (its CID is CIDv1 dag-cbor
sha2-256, the fixed ``01 71 12 20`` header implied); the link to the next block of the path is not sent:
the verifier computes it from that block, as it computes an embedded subtree's. The empty tree's proof
is the one byte ``00`` (a count of 0).

Measured at 1M live keys (``bench/state.py``: mean / p99 / max bytes of 1,000 random keys; the largest
proof of all 1M keys, each proven; the most blocks on any path):

===============================================  =======================  =========  ==============
tree                                             1,000 keys               every key  deepest path
===============================================  =======================  =========  ==============
one node a group, layers of a quarter of a bit   1,190 / 1,790 / 2,031    2,232      35 (61 keys)
balanced one-key blocks, 2-bit layers (this)     984 / 1,330 / 1,380      1,505      36 blocks
===============================================  =======================  =========  ==============

Writing small subtrees out (a leaf block beside the path is mostly a short key and value) saves the
digests of most of the leaves a path passes. Most of what is left is the 32-byte digests of the
subtrees beside the path, one a block.

:func:`verify` parses the proof, rebuilds each block's canonical bytes bottom-up (written directly, not
through a generic encoder), hashes each once, and requires the top one to hash to the root it trusts (a
signed commit's); it then checks every block top-down with the rules a block read from a store obeys
(:func:`~orbit.state.nodes.check_block`: the gap, the layer and count its parent's slot asks for), and
follows the key. It needs nothing but the proof: no store, no tree. What it returns is the tree's value
under the key, or None when the proof shows the key is absent.

>>> from orbit.state.tree import StateTree
>>> tree = StateTree()
>>> for i in range(100):
...     tree.put(b"k%d" % i, b"v%d" % i)
>>> root = tree.root()
>>> verify(root, b"k7", prove(tree, b"k7")), verify(root, b"nope", prove(tree, b"nope"))
(b'v7', None)
>>> verify(StateTree().root(), b"k7", prove(StateTree(), b"k7")) is None
True
"""

from __future__ import annotations

import hashlib
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import ProofError, TreeNodeError
from orbit.state.nodes import (
    EMPTY_NODE,
    EMPTY_ROOT,
    MAX_COUNT,
    MAX_LAYER,
    Slot,
    check_block,
    decode_node,
    shared_prefix,
)
from orbit.state.tree import NodeStore, StateTree, gap_meets

__all__ = [
    "MAX_PROOF_BYTES",
    "MAX_PROOF_NODES",
    "MAX_RANGE_NODES",
    "prove",
    "prove_range",
    "verify",
    "verify_range",
]

MAX_PROOF_BYTES: Final = 1 << 20
"""Largest proof accepted."""
MAX_PROOF_NODES: Final = (MAX_LAYER + 1) * (MAX_COUNT.bit_length())
"""Most blocks on a path: at most ``log2(MAX_COUNT) + 1`` in the group of each layer, 0 to ``MAX_LAYER``."""
MAX_RANGE_NODES: Final = 1 << 16
"""Most nodes in a range proof (a range of about 65k keys; prove larger ranges in parts)."""
EMBED_BELOW: Final = 32
"""An off-path subtree is written out in a proof when that takes fewer bytes than this (a digest's)."""

_NULL, _PATH, _DIGEST, _EMBED = 0, 1, 2, 3
_PREFIX: Final = b"\x01\x71\x12\x20"
_LINK_HEAD: Final = b"\xd8\x2a\x58\x25\x00" + _PREFIX  # tag 42, 37 bytes, multibase 0x00, the CID header
_sha256 = hashlib.sha256


# ---------------------------------------------------------------------- proving


def prove(tree: StateTree, key: bytes) -> bytes:
    """Return the proof of ``key``'s value (or absence) against ``tree.root()``.

    Raises:
        TreeNodeError: a node loaded on the way breaks the rules.
        BlockNotFoundError: the tree's store lacks a node on the way.
    """
    blocks = tree.path(key)
    out = bytearray()
    for j, block in enumerate(blocks):
        following = CID.for_block(blocks[j + 1]) if j + 1 < len(blocks) else None
        _write_node(out, decode(block), key, following, tree.store)
    return bytes(out)


def _write_node(
    out: bytearray, value: IPLDKind, base: bytes, following: CID | None, store: NodeStore
) -> None:
    """Append one block (decoded from our own store) in the proof's form."""
    assert type(value) is list
    if len(value) != 5:  # the empty root
        out.append(0)
        return
    left, key, val, right, count = value
    assert type(key) is bytes
    assert type(val) is bytes
    assert type(count) is int
    left_code, left_payload = _link(left, base, following, store)
    right_code, right_payload = _link(right, base, following, store)
    _varint(out, count << 4 | left_code << 2 | right_code)
    p = shared_prefix(base, key)
    _varint(out, p)
    _varint(out, len(key) - p)
    out += key[p:]
    _varint(out, len(val))
    out += val
    out += left_payload
    out += right_payload


def _link(link: IPLDKind, base: bytes, following: CID | None, store: NodeStore) -> tuple[int, bytes]:
    if link is None:
        return _NULL, b""
    assert type(link) is CID
    if link == following:
        return _PATH, b""
    embedded = _embedded(link, base, store)
    if embedded is not None:
        return _EMBED, embedded
    return _DIGEST, link[4:]


def _embedded(cid: CID, base: bytes, store: NodeStore) -> bytes | None:
    """The subtree under ``cid`` in the proof's form, if that is under :data:`EMBED_BELOW` bytes."""
    block = store.get(cid)
    if len(block) > 2 * EMBED_BELOW + 8:  # too big to shrink under a digest (links are 41 bytes)
        return None
    out = bytearray()
    _write_node(out, decode(block), base, None, store)
    return bytes(out) if len(out) < EMBED_BELOW else None


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)


# ---------------------------------------------------------------------- verifying


_NULL_BYTE: Final = b"\xf6"
_HEADS: Final = tuple(
    tuple(bytes((major << 5 | n,)) if n < 24 else bytes((major << 5 | 24, n)) for n in range(256))
    for major in range(8)
)
_UINT, _BYTES = _HEADS[0], _HEADS[2]


def _head(major: int, n: int) -> bytes:
    """A CBOR head (keys, values and counts are under 2**16)."""
    return _HEADS[major][n] if n < 0x100 else bytes((major << 5 | 25, n >> 8, n & 0xFF))


def _long_varint(data: bytes, at: int) -> tuple[int, int]:
    """A varint of two bytes or more at ``at``: its value and the offset after it."""
    n = shift = 0
    while True:
        byte = data[at]  # IndexError past the end: the caller says the proof ends early
        at += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 or shift > 28:
                raise ProofError(f"a number of the proof is not in its shortest form (byte {at - 1})")
            return n, at
        shift += 7


class _Node:
    """A block of a proof as read: its fields, its links, and its bytes around the path's link.

    A link is None, ``_PATH``, or a subtree's digest or parsed node; ``before`` and ``after`` are the
    block's bytes before and after the link to the path (all in ``before`` when it has none). ``count``
    is 0 for the empty root.
    """

    __slots__ = ("after", "before", "count", "key", "left", "right", "value")

    def __init__(
        self,
        key: bytes,
        value: bytes,
        count: int,
        left: object,
        right: object,
        before: bytes,
        after: bytes | None,
    ) -> None:
        self.key = key
        self.value = value
        self.count = count
        self.left = left
        self.right = right
        self.before = before
        self.after = after


def _read_link(
    data: bytes, at: int, code: int, key: bytes, embedded: bool, start: int
) -> tuple[object, bytes | None, int]:
    """Read a link of the code given: (the link, its block bytes or None for the path, the offset after)."""
    if code == _NULL:
        return None, _NULL_BYTE, at
    if code == _DIGEST:
        digest = data[at : at + 32]
        if len(digest) != 32:
            raise IndexError(at)
        return digest, _LINK_HEAD + digest, at + 32
    if code == _PATH:
        if embedded:
            raise ProofError(f"a subtree written out at byte {start} of the proof marks a link as the path")
        return _PATH, None, at
    sub_at = at
    sub, at = _parse(data, at, key, True)
    if at - sub_at >= EMBED_BELOW:
        raise ProofError(
            f"a subtree written out in the proof takes over {EMBED_BELOW - 1} bytes (byte {sub_at})"
        )
    return sub, _LINK_HEAD + _sha256(sub.before).digest(), at


def _field(data: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed byte string at ``at``, and the offset after it (IndexError: the proof ends)."""
    size = data[at]
    at += 1
    if size & 0x80:
        size, at = _long_varint(data, at - 1)
    field = data[at : at + size]
    if len(field) != size:
        raise IndexError(at)
    return field, at + size


def _parse(data: bytes, at: int, key: bytes, embedded: bool) -> tuple[_Node, int]:
    """Read one block of a proof at ``at`` (an off-path subtree written out if ``embedded``).

    Raises:
        ProofError: the block is malformed (the message gives the byte offset).
        IndexError: the proof ends inside the block.
    """
    start = at
    head = data[at]
    at += 1
    if head & 0x80:
        head, at = _long_varint(data, at - 1)
    count = head >> 4
    if not count:
        if head or embedded:
            raise ProofError(f"an empty block written out inside the proof (byte {start})")
        return _Node(b"", b"", 0, None, None, EMPTY_NODE, None), at
    if count > MAX_COUNT:
        raise ProofError(f"a block of the proof has a count of {count}, over {MAX_COUNT} (byte {start})")
    # Varints are read inline (a one-byte fast path each): this runs for every block of a proof.
    p = data[at]
    at += 1
    if p & 0x80:
        p, at = _long_varint(data, at - 1)
    rest, at = _field(data, at)
    if p > len(key) or (p < len(key) and rest and rest[0] == key[p]):
        raise ProofError(
            f"the key of the block at byte {start}: not its whole shared prefix with the key proven"
        )
    value, at = _field(data, at)
    size = len(value)
    full = key[:p] + rest if p else rest
    left, left_bytes, at = _read_link(data, at, head >> 2 & 3, key, embedded, start)
    right, right_bytes, at = _read_link(data, at, head & 3, key, embedded, start)
    middle = b"".join(
        (
            _BYTES[len(full)] if len(full) < 0x100 else _head(2, len(full)),
            full,
            _BYTES[size] if size < 0x100 else _head(2, size),
            value,
        )
    )
    tail = _UINT[count] if count < 0x100 else _head(0, count)
    if left_bytes is None:
        if right_bytes is None:
            raise ProofError(f"the block at byte {start} of the proof marks both its links as the path")
        before, after = b"\x85", middle + right_bytes + tail
    elif right_bytes is None:
        before, after = b"\x85" + left_bytes + middle, tail
    else:
        before, after = b"\x85" + left_bytes + middle + right_bytes + tail, None
    return _Node(full, value, count, left, right, before, after), at


def verify(root: CID, key: bytes, proof: bytes) -> bytes | None:
    """Check ``proof`` against ``root`` and return the value it proves under ``key`` (None: absent).

    Raises:
        ProofError: the proof is malformed, does not hash to ``root``, or does not lead to ``key``; the
            message says where.
    """
    if type(proof) is not bytes or len(proof) > MAX_PROOF_BYTES:
        raise ProofError(f"a proof is at most {MAX_PROOF_BYTES} bytes")
    if type(key) is not bytes:
        raise ProofError("the key proven is bytes")
    nodes: list[_Node] = []
    at = 0
    end = len(proof)
    try:
        while at < end:
            if len(nodes) == MAX_PROOF_NODES:
                raise ProofError(f"a proof has at most {MAX_PROOF_NODES} blocks")
            node, at = _parse(proof, at, key, False)
            nodes.append(node)
    except IndexError:
        raise ProofError(f"the proof ends inside block {len(nodes)}") from None
    if at != end:
        raise ProofError(f"the proof ends inside block {len(nodes) - 1}")
    if not nodes:
        raise ProofError("an empty proof")
    # Bottom-up: each block, with the link to the block below it, hashed once.
    last = len(nodes) - 1
    digests: list[bytes] = [b""] * len(nodes)
    below = b""
    for depth in range(last, -1, -1):
        node = nodes[depth]
        if (node.after is None) != (depth == last):
            marks = "none" if node.after is None else "one"
            raise ProofError(f"block {depth} of the proof marks {marks} of its links as the path")
        h = _sha256(node.before)
        if node.after is not None:
            h.update(_LINK_HEAD)
            h.update(below)
            h.update(node.after)
        below = digests[depth] = h.digest()
    if root[:4] != _PREFIX or root[4:] != digests[0]:
        raise ProofError(f"the proof's top block is {CID.for_digest(digests[0])}, not the root {root}")
    if not nodes[0].count:  # the empty tree
        if last:
            raise ProofError("block 0 of the proof: the empty block inside a tree")
        return None
    # Top-down: check every block as if read from a store, and follow the key.
    lo: bytes | None = None
    hi: bytes | None = None
    slot: Slot | None = None
    for depth, node in enumerate(nodes):
        if not node.count:
            raise ProofError(f"block {depth} of the proof: the empty block inside a tree")
        count = node.count
        try:
            layer = check_block(
                CID.for_digest(digests[depth]),
                node.key,
                node.value,
                count,
                node.left is not None,
                node.right is not None,
                lo,
                hi,
                slot,
            )
        except TreeNodeError as e:
            raise ProofError(f"block {depth} of the proof: {e}") from e
        here = node.key
        if here == key:
            if depth != last:
                raise ProofError(f"the key is in block {depth}, but the proof goes on")
            return node.value
        if key < here:
            link, hi, slot = node.left, here, (layer, (count - 1) // 2)
        else:
            link, lo, slot = node.right, here, (layer, count // 2)
        if depth == last:
            if link is not None:
                raise ProofError("the proof ends above the key's place (its gap is not empty)")
            return None
        if link is not _PATH:
            raise ProofError(f"block {depth + 1} of the proof is not on the key's path")
    raise AssertionError("unreachable")  # pragma: no cover  (the loop returns at the last block)


def prove_range(tree: StateTree, lo: bytes | None, hi: bytes | None) -> bytes:
    """Return the proof of every item with ``lo <= key < hi`` (None: unbounded) against ``tree.root()``.

    A range proof is the DAG-CBOR list of the blocks of every node whose gap meets the range (as
    stored: links are CIDs), parents first; it proves the range complete, absent keys included.

    Raises:
        TreeNodeError: a node loaded on the way breaks the rules.
        BlockNotFoundError: the tree's store lacks a node on the way.
    """
    return encode(list(tree.range_blocks(lo, hi)))


def verify_range(root: CID, lo: bytes | None, hi: bytes | None, proof: bytes) -> list[tuple[bytes, bytes]]:
    """Check a range proof against ``root`` and return the items it proves are all of ``[lo, hi)``.

    Raises:
        ProofError: the proof is malformed, lacks a node the range reaches, holds a node it does not
            reach, or a node breaks the tree's rules.
    """
    if type(proof) is not bytes or len(proof) > MAX_PROOF_BYTES * 64:
        raise ProofError(f"a range proof is at most {MAX_PROOF_BYTES * 64} bytes")
    try:
        blocks = decode(proof)
    except CodecError as e:
        raise ProofError(f"the range proof is not canonical DAG-CBOR ({e})") from e
    if type(blocks) is not list or not 0 < len(blocks) <= MAX_RANGE_NODES:
        raise ProofError(f"a range proof is a list of 1 to {MAX_RANGE_NODES} node blocks")
    by_cid: dict[CID, bytes] = {}
    for block in blocks:
        if type(block) is not bytes:
            raise ProofError("a range proof holds node blocks (bytes)")
        by_cid[CID.for_block(block)] = block
    if root == EMPTY_ROOT:
        if blocks != [EMPTY_NODE]:
            raise ProofError("the proof of a range of the empty tree is the empty node alone")
        return []
    items: list[tuple[bytes, bytes]] = []
    used = 0
    # In-order walk of the nodes the range reaches: a stack of subtrees to open and items to yield.
    stack: list[tuple[CID, bytes | None, bytes | None, Slot | None] | tuple[bytes, bytes]] = [
        (root, None, None, None)
    ]
    while stack:
        top = stack.pop()
        if len(top) == 2:
            items.append(top)
            continue
        cid, a, b, slot = top
        block = by_cid.get(cid)
        if block is None:
            raise ProofError(f"the range proof lacks node {cid}, which the range reaches")
        used += 1
        try:
            node = decode_node(cid, block, lo=a, hi=b, slot=slot)
        except TreeNodeError as e:
            raise ProofError(f"a node of the range proof: {e}") from e
        if node.layer < 0:
            raise ProofError("the empty node inside a tree")
        keys = node.keys
        parts: list[tuple[CID, bytes | None, bytes | None, Slot | None] | tuple[bytes, bytes]] = []
        for i, kid in enumerate(node.kids):
            ga = keys[i - 1] if i else a
            gb = keys[i] if i < len(keys) else b
            if kid is not None and gap_meets(ga, gb, lo, hi):
                parts.append((kid, ga, gb, node.slots[i]))
            if i < len(keys) and (lo is None or lo <= keys[i]) and (hi is None or keys[i] < hi):
                parts.append((keys[i], node.values[i]))
        stack.extend(reversed(parts))
    if used != len(blocks) or len(by_cid) != len(blocks):
        raise ProofError("the range proof holds nodes the range does not reach (or twice)")
    return items
