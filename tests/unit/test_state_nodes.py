"""Adversarial state-tree nodes: each rule a node from outside must obey is refused with TreeNodeError."""

from __future__ import annotations

import itertools

import pytest

from ipfs_log import MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from orbit.errors import StateError, TreeNodeError
from orbit.state import EMPTY_ROOT, BufferedNodes, MemoryNodes, StateTree
from orbit.state.nodes import EMPTY_NODE, MAX_ENTRIES, decode_node, encode_node, layer_of
from orbit.state.values import value_bytes, value_matches


def keys_of_layer(layer: int, n: int) -> list[bytes]:
    found = (b"k%d" % i for i in itertools.count())
    return sorted(itertools.islice((k for k in found if layer_of(k) == layer), n))


def check(value: IPLDKind, **bounds: object) -> None:
    block = encode(value)
    decode_node(CID.for_block(block), block, **bounds)  # type: ignore[arg-type]


def canonical(keys: list[bytes]) -> IPLDKind:
    return decode(encode_node(keys, [b""] * len(keys), [None] * (len(keys) + 1)))


L0 = keys_of_layer(0, 3)
L1 = keys_of_layer(1, 2)
KID = CID.for_block(b"\xa0")


def test_a_well_formed_node_reads_back() -> None:
    block = encode_node(L0, [b"a", b"b", b"c"], [None] * 4)
    node = decode_node(CID.for_block(block), block)
    assert (node.layer, node.keys, node.values) == (0, tuple(L0), (b"a", b"b", b"c"))
    assert decode_node(EMPTY_ROOT, EMPTY_NODE).layer == -1


@pytest.mark.parametrize(
    ("value", "bounds", "match"),
    [
        ({"l": None, "e": []}, {}, r"\[left, \[entries\]\]"),
        ([None], {}, r"\[left, \[entries\]\]"),
        ([b"x", [[0, L0[0], b"", None]]], {}, "left subtree"),
        ([None, [[0, L0[0], b""]]], {}, r"not \[p, k, v, right\]"),
        ([None, [[0, L0[0], "v", None]]], {}, "k and v are bytes"),
        ([None, [[0, L0[0], b"", b"x"]]], {}, "right subtree"),
        ([None, [[0, L0[0], b"x" * 65, None]]], {}, "out of bounds"),
        ([None, [[1, L0[0], b"", None]]], {}, "out of bounds"),  # a prefix of an empty previous key
        ([None, [[0, L0[1], b"", None], [0, L0[0], b"", None]]], {}, "strictly increasing"),
        ([None, [[0, L0[0], b"", None], [0, L0[0], b"", None]]], {}, "strictly increasing"),
        ([None, [[0, L0[0], b"", None], [0, L0[1], b"", None]]], {}, "shared prefix"),  # k… shares "k"
        (canonical(sorted([L0[0], L1[0]])), {}, "layer 1 in a node of layer 0|layer 0 in a node of layer 1"),
        ([None, [[0, L1[0], b"", None]]], {"below": 1}, "under a node of layer 1"),
        ([None, [[0, L0[1], b"", None]]], {"lo": L0[1]}, "outside the gap"),
        ([None, [[0, L0[1], b"", None]]], {"hi": L0[0]}, "outside the gap"),
        ([None, []], {"below": 3}, "empty node"),
        ([KID, []], {}, "empty node"),
        ([KID, [[0, L0[0], b"", None]]], {}, "layer 0 has a subtree"),
    ],
)
def test_a_node_breaking_a_rule_is_refused(value: IPLDKind, bounds: dict[str, object], match: str) -> None:
    with pytest.raises(TreeNodeError, match=match) as info:
        check(value, **bounds)
    assert isinstance(info.value, StateError)
    assert isinstance(info.value, ValueError)
    assert info.value.cid == CID.for_block(encode(value))


def test_bytes_that_are_not_the_cids_or_not_canonical_are_refused() -> None:
    block = encode_node(L0[:1], [b""], [None, None])
    with pytest.raises(TreeNodeError, match="do not hash"):
        decode_node(CID.for_block(block + b"\x00"), block)
    raw_cid = CID(b"\x01\x55\x12\x20" + CID.for_block(block)[4:])  # the right digest, the raw codec
    with pytest.raises(TreeNodeError, match="do not hash"):
        decode_node(raw_cid, block)
    noncanonical = b"\x82\xf6\x81\x84\x18\x00" + block[5:]  # p written in two bytes
    with pytest.raises(TreeNodeError, match="canonical"):
        decode_node(CID.for_block(noncanonical), noncanonical)


def test_too_many_entries_are_refused() -> None:
    keys = keys_of_layer(0, MAX_ENTRIES + 1)
    block = encode_node(keys, [b""] * len(keys), [None] * (len(keys) + 1))
    with pytest.raises(TreeNodeError, match="over the 4096 limit"):
        decode_node(CID.for_block(block), block)


def test_a_tree_refuses_over_long_keys_and_values() -> None:
    tree = StateTree()
    with pytest.raises(ValueError, match="key"):
        tree.put(b"k" * 1025, b"")
    with pytest.raises(ValueError, match="value"):
        tree.put(b"k", b"v" * 65)
    with pytest.raises(ValueError, match="increasing"):
        StateTree.build([(b"b", b""), (b"a", b"")])
    assert tree.root() == EMPTY_ROOT


def test_values_inline_when_short_and_digested_otherwise() -> None:
    assert value_bytes("short") == encode("short")
    assert len(value_bytes("x" * 31)) == 32  # its encoding is 32 bytes: digested
    assert value_matches({"a": [1, 2]}, value_bytes({"a": [1, 2]}))
    assert not value_matches({1, 2}, value_bytes(1))  # type: ignore[arg-type]  # not IPLD: matches nothing


def test_buffered_nodes_persist_only_what_the_root_reaches_and_the_values_kept_beside() -> None:
    backing = MemoryBlockStore()
    nodes = BufferedNodes(backing)
    tree = StateTree(nodes)
    for i in range(100):
        tree.put(b"k%d" % i, b"v")
    tree.root()
    tree.put(b"k1", b"w")  # the first root's path nodes are now garbage
    long_value = "x" * 40
    digest = value_bytes(long_value)
    value_cid = CID.for_block(encode(long_value))
    nodes.put(value_cid, encode(long_value))
    tree.put(b"big", digest)
    root = tree.root()
    written = nodes.persist(root)
    reopened = StateTree(backing, root)
    assert dict(reopened.items())[b"big"] == digest
    assert backing.get(value_cid) == encode(long_value)
    fresh = StateTree.build(reopened.items())
    fresh.root()
    assert isinstance(fresh.store, MemoryNodes)
    reachable = len(fresh.store.blocks) - 1  # all but the empty node
    assert written == len(backing) == reachable + 1  # the nodes of the last root, and the value
    assert nodes.persist(root) == 0  # nothing new
