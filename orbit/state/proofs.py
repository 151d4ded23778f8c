"""Proofs: the nodes on a key's path, written compactly, and their stand-alone check.

A proof of ``key`` against a root is the path of nodes from the root down to the node that holds the key
or, for an absent key, to the node whose gap for the key is empty, top first. It is not the nodes'
blocks: it holds exactly what the verifier cannot recompute, in a compact binary form (varints are
unsigned LEB128, shortest form)::

    proof = node+                                    the path, top first
    node  = varint(k << 2 | code of left) link entry*k
    entry = varint(p << 2 | code of right) varint(len s) s varint(len v) v link
    link  = nothing (code 0: null; code 1: the next node of the proof) | 32-byte digest (code 2)
          | node (code 3: an off-path subtree written out, when that is under 32 bytes)

Each key is ``base[:p] + s``: ``base`` is the previous key of the node, or for the first key of a node
the key being proven (the keys on a path share long prefixes with it), and ``p`` is the whole shared
prefix. A digest is a node's sha2-256 (its CID is CIDv1 dag-cbor sha2-256, the fixed ``01 71 12 20``
header implied); the link to the next node of the path is not sent: the verifier computes it from that
node, as it computes an embedded subtree's. The empty tree's proof is the one byte ``00``.

Measured at 1M live keys (1,000 random keys, mean / p99 / max bytes): the previous form, each node's
DAG-CBOR with bare digests for links, 1,472 / 2,200 / 2,511; this one 1,190 / 1,790 / 2,031 (writing
small subtrees out gives about 2% of that). Most of what is left is the 32-byte digests of the
subtrees beside the path, which the tree's shape decides (:mod:`orbit.state.nodes`).

:func:`verify` parses the proof, rebuilds each node's canonical block bottom-up (written directly, not
through a generic encoder), hashes each once, and requires the top one to hash to the root it trusts (a
signed commit's); it then checks every path node top-down with the rules a node read from a store
obeys (:func:`~orbit.state.nodes.check_entries`), and follows the key. It needs nothing but the proof:
no store, no tree. What it returns is the tree's value under the key, or None when the proof shows the
key is absent.

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
from bisect import bisect_left
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import ProofError, TreeNodeError
from orbit.state.nodes import (
    EMPTY_NODE,
    EMPTY_ROOT,
    MAX_ENTRIES,
    MAX_LAYER,
    check_entries,
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
MAX_PROOF_NODES: Final = MAX_LAYER + 2
"""Most nodes on a path: every step goes down at least one layer, and layers are 0 to ``MAX_LAYER``."""
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
    """Append one node (decoded from our own block) in the proof's form."""
    assert type(value) is list
    left, entries = value
    assert type(entries) is list
    code, payload = _link(left, base, following, store)
    _varint(out, len(entries) << 2 | code)
    out += payload
    prev = b""
    for n, entry in enumerate(entries):
        assert type(entry) is list
        p, rest, val, right = entry
        assert type(p) is int
        assert type(rest) is bytes
        assert type(val) is bytes
        key = prev[:p] + rest
        if n == 0:  # written against the key being proven
            p = shared_prefix(base, key)
            rest = key[p:]
        code, payload = _link(right, base, following, store)
        _varint(out, p << 2 | code)
        _varint(out, len(rest))
        out += rest
        _varint(out, len(val))
        out += val
        out += payload
        prev = key


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
_UINT, _BYTES, _ARRAY = _HEADS[0], _HEADS[2], _HEADS[4]


def _head(major: int, n: int) -> bytes:
    """A CBOR head (keys, values and entry counts are under 2**16)."""
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
    """A node of a proof as read: its keys, values, links, and its block around the path's link.

    A link is None, ``_PATH``, or a subtree's digest or parsed node; ``before`` and ``after`` are the
    block's bytes before and after the link to the path (all in ``before`` when it has none).
    """

    __slots__ = ("after", "before", "keys", "links", "values")

    def __init__(
        self, keys: list[bytes], values: list[bytes], links: list[object], before: bytes, after: bytes | None
    ) -> None:
        self.keys = keys
        self.values = values
        self.links = links
        self.before = before
        self.after = after


def _parse(data: bytes, at: int, key: bytes, embedded: bool) -> tuple[_Node, int]:
    """Read one node of a proof at ``at`` (an off-path subtree written out if ``embedded``).

    Raises:
        ProofError: the node is malformed (the message gives the byte offset).
        IndexError: the proof ends inside the node.
    """
    start = at
    head = data[at]
    at += 1
    if head & 0x80:
        head, at = _long_varint(data, at - 1)
    count = head >> 2
    if count > MAX_ENTRIES:
        raise ProofError(f"a node of the proof has {count} entries, over {MAX_ENTRIES} (byte {start})")
    if embedded and not count:
        raise ProofError(f"an empty node written out inside the proof (byte {start})")
    parts: list[bytes] = [b"\x82"]
    split = -1
    links: list[object] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    code = head & 3
    base = key
    n = -1
    while True:
        # The link (left, then each entry's right) whose code was just read.
        if code == _NULL:
            parts.append(_NULL_BYTE)
            links.append(None)
        elif code == _DIGEST:
            digest = data[at : at + 32]
            if len(digest) != 32:
                raise IndexError(at)
            at += 32
            parts.append(_LINK_HEAD + digest)
            links.append(digest)
        elif code == _PATH:
            if embedded or split >= 0:
                raise ProofError(f"node at byte {start} of the proof marks more than one link as the path")
            split = len(parts)
            links.append(_PATH)
        else:
            sub_at = at
            sub, at = _parse(data, at, key, True)
            if at - sub_at >= EMBED_BELOW:
                raise ProofError(
                    f"a subtree written out in the proof takes over {EMBED_BELOW - 1} bytes (byte {sub_at})"
                )
            parts.append(_LINK_HEAD + _sha256(sub.before).digest())
            links.append(sub)
        n += 1
        if n == 0:
            parts.append(_ARRAY[count] if count < 0x100 else _head(4, count))
        if n == count:
            break
        # Varints are read inline (a one-byte fast path each): this loop runs for every key of a proof.
        head = data[at]
        at += 1
        if head & 0x80:
            head, at = _long_varint(data, at - 1)
        p = head >> 2
        code = head & 3
        size = data[at]
        at += 1
        if size & 0x80:
            size, at = _long_varint(data, at - 1)
        rest = data[at : at + size]
        at += size
        held = len(base)
        if p > held or (p < held and rest and rest[0] == base[p]):
            where = "the key proven" if n == 0 else "the previous key"
            raise ProofError(f"key {n} of the node at byte {start}: not its whole shared prefix with {where}")
        size = data[at]
        at += 1
        if size & 0x80:
            size, at = _long_varint(data, at - 1)
        value = data[at : at + size]
        at += size
        if len(value) != size:
            raise IndexError(at)
        full = base[:p] + rest if p else rest
        if n:
            parts.append(b"\x84" + (_UINT[p] if p < 0x100 else _head(0, p)))
        else:  # the block holds the first key whole
            parts.append(b"\x84\x00")
            rest = full
        parts.append(_BYTES[len(rest)] if len(rest) < 0x100 else _head(2, len(rest)))
        parts.append(rest)
        parts.append(_BYTES[size] if size < 0x100 else _head(2, size))
        parts.append(value)
        keys.append(full)
        values.append(value)
        base = full
    if split < 0:
        return _Node(keys, values, links, b"".join(parts), None), at
    return _Node(keys, values, links, b"".join(parts[:split]), b"".join(parts[split:])), at


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
                raise ProofError(f"a proof has at most {MAX_PROOF_NODES} nodes")
            node, at = _parse(proof, at, key, False)
            nodes.append(node)
    except IndexError:
        raise ProofError(f"the proof ends inside node {len(nodes)}") from None
    if at != end:
        raise ProofError(f"the proof ends inside node {len(nodes) - 1}")
    if not nodes:
        raise ProofError("an empty proof")
    # Bottom-up: each node's block, with the link to the node below it, hashed once.
    last = len(nodes) - 1
    digests: list[bytes] = [b""] * len(nodes)
    below = b""
    for depth in range(last, -1, -1):
        node = nodes[depth]
        if (node.after is None) != (depth == last):
            marks = "none" if node.after is None else "one"
            raise ProofError(f"node {depth} of the proof marks {marks} of its links as the path")
        h = _sha256(node.before)
        if node.after is not None:
            h.update(_LINK_HEAD)
            h.update(below)
            h.update(node.after)
        below = digests[depth] = h.digest()
    if root[:4] != _PREFIX or root[4:] != digests[0]:
        raise ProofError(f"the proof's top node is {CID.for_digest(digests[0])}, not the root {root}")
    if not nodes[0].keys:  # the empty tree
        if last or nodes[0].links[0] is not None:
            raise ProofError("node 0 of the proof: the empty node inside a tree")
        return None
    # Top-down: check every node as if read from a store, and follow the key.
    lo: bytes | None = None
    hi: bytes | None = None
    parent: int | None = None
    for depth, node in enumerate(nodes):
        keys = node.keys
        links = node.links
        if not keys:
            raise ProofError(f"node {depth} of the proof: the empty node inside a tree")
        try:
            layer = check_entries(
                CID.for_digest(digests[depth]),
                keys,
                node.values,
                links.count(None) != len(links),
                lo,
                hi,
                parent,
            )
        except TreeNodeError as e:
            raise ProofError(f"node {depth} of the proof: {e}") from e
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            if depth != last:
                raise ProofError(f"the key is in node {depth}, but the proof goes on")
            return node.values[i]
        link = links[i]
        if depth == last:
            if link is not None:
                raise ProofError("the proof ends above the key's place (its gap is not empty)")
            return None
        if link is not _PATH:
            raise ProofError(f"node {depth + 1} of the proof is not on the key's path")
        if i:
            lo = keys[i - 1]
        if i < len(keys):
            hi = keys[i]
        parent = layer
    raise AssertionError("unreachable")  # pragma: no cover  (the loop returns at the last node)


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
    stack: list[tuple[CID, bytes | None, bytes | None, int | None] | tuple[bytes, bytes]] = [
        (root, None, None, None)
    ]
    while stack:
        top = stack.pop()
        if len(top) == 2:
            items.append(top)
            continue
        cid, a, b, below = top
        block = by_cid.get(cid)
        if block is None:
            raise ProofError(f"the range proof lacks node {cid}, which the range reaches")
        used += 1
        try:
            node = decode_node(cid, block, lo=a, hi=b, below=below)
        except TreeNodeError as e:
            raise ProofError(f"a node of the range proof: {e}") from e
        if node.layer < 0:
            raise ProofError("the empty node inside a tree")
        keys = node.keys
        parts: list[tuple[CID, bytes | None, bytes | None, int | None] | tuple[bytes, bytes]] = []
        for i, kid in enumerate(node.kids):
            ga = keys[i - 1] if i else a
            gb = keys[i] if i < len(keys) else b
            if kid is not None and gap_meets(ga, gb, lo, hi):
                parts.append((kid, ga, gb, node.layer))
            if i < len(keys) and (lo is None or lo <= keys[i]) and (hi is None or keys[i] < hi):
                parts.append((keys[i], node.values[i]))
        stack.extend(reversed(parts))
    if used != len(blocks) or len(by_cid) != len(blocks):
        raise ProofError("the range proof holds nodes the range does not reach (or twice)")
    return items
