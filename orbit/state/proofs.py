"""Proofs: the nodes on a key's path, written compactly, and their stand-alone check.

A proof of ``key`` against a root is the path of nodes from the root down to the node that holds the key
or, for an absent key, to the node whose gap for the key is empty. It is one DAG-CBOR list of those
nodes, top first, each in its block's form (:mod:`orbit.state.nodes`) except for its links, which the
verifier rebuilds rather than reads:

- a link to a subtree off the path is its 32-byte sha2-256 digest (the CID's fixed
  ``01 71 12 20`` header and tag are implied: every node is CIDv1 dag-cbor sha2-256);
- the link to the next node of the proof is ``true``: the verifier computes it from that node.

:func:`verify` rebuilds each block bottom-up, hashes it, and requires the top one to hash to the root it
trusts (a signed commit's), then checks every node top-down with the same rules as a node read from a
store, and follows the key. It needs nothing but the proof: no store, no tree. What it returns is the
tree's value under the key, or None when the proof shows the key is absent.

>>> from orbit.state.tree import StateTree, gap_meets
>>> tree = StateTree()
>>> for i in range(100):
...     tree.put(b"k%d" % i, b"v%d" % i)
>>> root = tree.root()
>>> verify(root, b"k7", prove(tree, b"k7")), verify(root, b"nope", prove(tree, b"nope"))
(b'v7', None)
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import ProofError, TreeNodeError
from orbit.state.nodes import EMPTY_NODE, EMPTY_ROOT, check_node, decode_node
from orbit.state.tree import StateTree, gap_meets

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
MAX_PROOF_NODES: Final = 66
"""Most nodes on a path: every step goes down at least one layer, and layers are 0 to 64."""
MAX_RANGE_NODES: Final = 1 << 16
"""Most nodes in a range proof (a range of about 65k keys; prove larger ranges in parts)."""
_PREFIX: Final = b"\x01\x71\x12\x20"


def prove(tree: StateTree, key: bytes) -> bytes:
    """Return the proof of ``key``'s value (or absence) against ``tree.root()``.

    Raises:
        TreeNodeError: a node loaded on the way breaks the rules.
        BlockNotFoundError: the tree's store lacks a node on the way.
    """
    blocks = tree.path(key)
    nodes: list[IPLDKind] = []
    for j, block in enumerate(blocks):
        following = CID.for_block(blocks[j + 1]) if j + 1 < len(blocks) else None
        decoded = decode(block)  # our own block: [left, entries]
        assert type(decoded) is list
        left, entries = decoded
        assert type(entries) is list
        compact: list[IPLDKind] = []
        for entry in entries:
            assert isinstance(entry, list)
            p, k, v, right = entry
            compact.append([p, k, v, _compact(right, following)])
        nodes.append([_compact(left, following), compact])
    return encode(nodes)


def _compact(link: IPLDKind, following: CID | None) -> IPLDKind:
    if link is None:
        return None
    assert type(link) is CID
    return True if link == following else link[4:]


def verify(root: CID, key: bytes, proof: bytes) -> bytes | None:
    """Check ``proof`` against ``root`` and return the value it proves under ``key`` (None: absent).

    Raises:
        ProofError: the proof is malformed, does not hash to ``root``, or does not lead to ``key``; the
            message says where.
    """
    if type(proof) is not bytes or len(proof) > MAX_PROOF_BYTES:
        raise ProofError(f"a proof is at most {MAX_PROOF_BYTES} bytes")
    try:
        nodes = decode(proof)
    except CodecError as e:
        raise ProofError(f"the proof is not canonical DAG-CBOR ({e})") from e
    if type(nodes) is not list or not 0 < len(nodes) <= MAX_PROOF_NODES:
        raise ProofError(f"a proof is a list of 1 to {MAX_PROOF_NODES} nodes")
    # Bottom-up: rebuild each node's block, with the link to the node below it.
    values: list[IPLDKind] = []
    cids: list[CID] = []
    below: CID | None = None
    for depth in range(len(nodes) - 1, -1, -1):
        value = _rebuild(nodes[depth], below, depth)
        below = CID.for_block(encode(value))
        values.append(value)
        cids.append(below)
    values.reverse()
    cids.reverse()
    if cids[0] != root:
        raise ProofError(f"the proof's top node is {cids[0]}, not the root {root}")
    # Top-down: check every node as if read from a store, and follow the key.
    lo: bytes | None = None
    hi: bytes | None = None
    parent: int | None = None
    last = len(values) - 1
    for depth, (cid, value) in enumerate(zip(cids, values, strict=True)):
        try:
            node = check_node(cid, value, lo=lo, hi=hi, below=parent)
        except TreeNodeError as e:
            raise ProofError(f"node {depth} of the proof: {e}") from e
        keys = node.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            if depth != last:
                raise ProofError(f"the key is in node {depth}, but the proof goes on")
            return node.values[i]
        kid = node.kids[i]
        if depth == last:
            if kid is not None:
                raise ProofError("the proof ends above the key's place (its gap is not empty)")
            return None
        if kid != cids[depth + 1]:
            raise ProofError(f"node {depth + 1} of the proof is not on the key's path")
        if i:
            lo = keys[i - 1]
        if i < len(keys):
            hi = keys[i]
        parent = node.layer
    raise AssertionError("unreachable")  # pragma: no cover  (the loop returns at the last node)


def _rebuild(node: IPLDKind, below: CID | None, depth: int) -> IPLDKind:
    """The value of a proof's node: digests made links again, ``true`` made the link to ``below``."""
    if type(node) is not list or len(node) != 2 or type(node[1]) is not list:
        raise ProofError(f"node {depth} of the proof is not [left, [entries]]")
    left, entries = node
    assert type(entries) is list
    marks = 0

    def link(value: IPLDKind) -> IPLDKind:
        nonlocal marks
        if value is None:
            return None
        if value is True:
            marks += 1
            return below
        if type(value) is bytes and len(value) == 32:
            return CID(_PREFIX + value)
        raise ProofError(f"node {depth} of the proof: a link is a 32-byte digest, true or null")

    rebuilt: list[IPLDKind] = []
    for entry in entries:
        if type(entry) is not list or len(entry) != 4:
            raise ProofError(f"node {depth} of the proof: an entry is [p, k, v, right]")
        rebuilt.append([entry[0], entry[1], entry[2], link(entry[3])])
    value: IPLDKind = [link(left), rebuilt]
    if marks != (0 if below is None else 1):
        raise ProofError(
            f"node {depth} of the proof marks {marks} links as the path (needs exactly one, none at the end)"
        )
    return value


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
