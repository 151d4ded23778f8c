"""Adversarial state-tree nodes: each rule a node from outside must obey is refused with TreeNodeError."""

from __future__ import annotations

import itertools

import pytest

from ipfs_log import MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, encode
from orbit.errors import StateError, TreeNodeError
from orbit.state import EMPTY_ROOT, BufferedNodes, MemoryNodes, StateTree
from orbit.state.nodes import EMPTY_NODE, MAX_COUNT, decode_node, encode_block, layer_of
from orbit.state.values import value_bytes, value_matches


def keys_of_layer(layer: int, n: int) -> list[bytes]:
    found = (b"k%d" % i for i in itertools.count())
    return sorted(itertools.islice((k for k in found if layer_of(k) == layer), n))


def check(value: IPLDKind, **bounds: object) -> None:
    block = encode(value)
    decode_node(CID.for_block(block), block, **bounds)  # type: ignore[arg-type]


L0 = keys_of_layer(0, 3)
L1 = keys_of_layer(1, 2)
KID = CID.for_block(b"\xa0")


def test_a_well_formed_block_reads_back() -> None:
    block = encode_block(KID, L1[0], b"a", KID, 2)
    node = decode_node(CID.for_block(block), block)
    assert (node.layer, node.keys, node.values, node.kids, node.count) == (
        1,
        (L1[0],),
        (b"a",),
        (KID, KID),
        2,
    )
    assert node.slots == ((1, 0), (1, 1))  # left: a lower group; right: the group's other key
    assert decode_node(EMPTY_ROOT, EMPTY_NODE).layer == -1


@pytest.mark.parametrize(
    ("value", "bounds", "match"),
    [
        ({"l": None, "e": []}, {}, r"\[left, key, value, right, count\]"),
        ([None], {}, r"\[left, key, value, right, count\]"),
        ([None, L0[0], b"", None], {}, r"\[left, key, value, right, count\]"),
        ([b"x", L0[0], b"", None, 1], {}, "left subtree"),
        ([None, L0[0], b"", b"x", 1], {}, "right subtree"),
        ([None, "k", b"", None, 1], {}, "key and value are bytes"),
        ([None, L0[0], "v", None, 1], {}, "key and value are bytes"),
        ([None, L0[0], b"", None, "1"], {}, "count an integer"),
        ([None, L0[0], b"x" * 65, None, 1], {}, "at most"),
        ([None, b"k" * 1025, b"", None, 1], {}, "at most"),
        ([None, L0[0], b"", None, 0], {}, "a count is 1 to 4096"),
        ([None, L0[0], b"", None, -1], {}, "a count is 1 to 4096"),
        ([KID, L1[0], b"", KID, MAX_COUNT + 1], {}, "a count is 1 to 4096"),
        ([None, L1[0], b"", None, 2], {}, "must hold keys of the group is empty"),  # its right holds one
        ([None, L1[0], b"", KID, 3], {}, "must hold keys of the group is empty"),  # and its left one
        ([None, L0[1], b"", None, 1], {"slot": (0, 2)}, "where its parent puts one of layer 0 and count 2"),
        ([None, L0[1], b"", None, 1], {"slot": (1, 1)}, "where its parent puts one of layer 1"),
        ([None, L1[0], b"", None, 1], {"slot": (1, 0)}, "under the edge of a group of layer 1"),
        ([None, L1[0], b"", None, 1], {"slot": (0, 0)}, "under the edge of a group of layer 0"),
        ([None, L0[1], b"", None, 1], {"lo": L0[1]}, "outside the gap"),
        ([None, L0[1], b"", None, 1], {"hi": L0[0]}, "outside the gap"),
        ([None, []], {"slot": (3, 0)}, "empty block"),
        ([KID, []], {}, r"\[left, key, value, right, count\]"),
        ([KID, L0[0], b"", None, 1], {}, "layer 0 has a subtree"),
        ([None, L0[1], b"", KID, 1], {}, "layer 0 has a subtree"),
    ],
)
def test_a_block_breaking_a_rule_is_refused(value: IPLDKind, bounds: dict[str, object], match: str) -> None:
    with pytest.raises(TreeNodeError, match=match) as info:
        check(value, **bounds)
    assert isinstance(info.value, StateError)
    assert isinstance(info.value, ValueError)
    assert info.value.cid == CID.for_block(encode(value))


def test_bytes_that_are_not_the_cids_or_not_canonical_are_refused() -> None:
    block = encode_block(None, L0[0], b"", None, 1)
    with pytest.raises(TreeNodeError, match="do not hash"):
        decode_node(CID.for_block(block + b"\x00"), block)
    raw_cid = CID(b"\x01\x55\x12\x20" + CID.for_block(block)[4:])  # the right digest, the raw codec
    with pytest.raises(TreeNodeError, match="do not hash"):
        decode_node(raw_cid, block)
    assert block[-1:] == b"\x01"
    noncanonical = block[:-1] + b"\x18\x01"  # the count written in two bytes
    with pytest.raises(TreeNodeError, match="canonical"):
        decode_node(CID.for_block(noncanonical), noncanonical)
    big = b"\x85" + b"\x00" * 4096
    with pytest.raises(TreeNodeError, match="over the 4096-byte limit"):
        decode_node(CID.for_block(big), big)


def test_a_group_stored_out_of_balance_is_refused_where_it_is_read() -> None:
    """Three keys of one layer as a chain (each the left of the next), not rooted at the middle one."""
    a, b, c = keys_of_layer(1, 3)
    store = MemoryNodes()
    bottom = encode_block(None, a, b"", None, 1)
    middle = encode_block(CID.for_block(bottom), b, b"", None, 2)  # claims 2: then its right holds one
    top = encode_block(CID.for_block(middle), c, b"", None, 3)
    for block in (bottom, middle, top):
        store.put(CID.for_block(block), block)
    with pytest.raises(TreeNodeError, match="must hold keys of the group"):
        list(StateTree(store, CID.for_block(top)).items())
    honest = StateTree.build([(a, b""), (b, b""), (c, b"")])
    top = honest.path(a)[0]
    assert decode_node(CID.for_block(top), top).keys == (b,)  # the middle key on top, one key each side
    assert list(StateTree(honest.store, honest.root()).items()) == [(a, b""), (b, b""), (c, b"")]


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
