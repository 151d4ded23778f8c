"""Compact proofs (each malformation refused with its own error), the layer rule, and the bounded buffer."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import ProofError
from orbit.state import BufferedNodes, MemoryNodes, StateTree, prove, verify_proof
from orbit.state.nodes import MAX_LAYER, decode_node, encode_block, layer_of, shared_prefix
from orbit.state.proofs import EMBED_BELOW, MAX_PROOF_NODES

keys = st.binary(min_size=0, max_size=6)
values = st.binary(min_size=0, max_size=8)
ops = st.lists(st.tuples(st.booleans(), keys, values), max_size=120)


def _tree(n: int) -> StateTree:
    tree = StateTree()
    for i in range(n):
        tree.put(b"key%d" % i, b"v%d" % i)
    return tree


def test_the_layer_is_half_the_leading_zero_bits_of_the_hash() -> None:
    for i in range(20_000):
        key = b"k%d" % i
        bits = "".join(f"{byte:08b}" for byte in hashlib.sha256(key).digest())
        assert layer_of(key) == (len(bits) - len(bits.lstrip("0"))) // 2
    assert layer_of(b"key-12") == 5  # 10 or 11 leading zero bits
    assert MAX_LAYER == 128
    assert MAX_PROOF_NODES == (MAX_LAYER + 1) * 13


def test_paths_cross_each_group_in_log2_of_its_size() -> None:
    tree = _tree(2_000)
    proofs = [prove(tree, b"key%d" % i) for i in range(0, 2_000, 97)]
    assert max(len(p) for p in proofs) < 700  # some 16 blocks of under 45 bytes
    assert max(len(tree.path(b"key%d" % i)) for i in range(2_000)) <= 24  # a treap's paths reach 30


@given(ops, keys, st.data())
def test_every_truncation_and_extension_is_refused(script, key, data):
    tree = StateTree()
    for is_put, k, v in script:
        if is_put:
            tree.put(k, v)
        else:
            tree.delete(k)
    proof = prove(tree, key)
    root = tree.root()
    with pytest.raises(ProofError, match=r"ends inside|an empty proof|not the root|marks"):
        verify_proof(root, key, proof[: data.draw(st.integers(0, len(proof) - 1))])
    with pytest.raises(ProofError):
        verify_proof(root, key, proof + data.draw(st.binary(min_size=1, max_size=40)))


def test_malformed_proofs_are_refused_with_what_is_wrong() -> None:
    tree = _tree(300)
    root = tree.root()
    key = b"key17"
    proof = prove(tree, key)
    assert verify_proof(root, key, proof) == b"v17"
    assert proof[0] < 0x80
    longer = bytes([proof[0] | 0x80, 0]) + proof[1:]  # the same number, not in its shortest form
    with pytest.raises(ProofError, match="shortest form"):
        verify_proof(root, key, longer)
    with pytest.raises(ProofError, match="ends inside block"):
        verify_proof(root, key, proof[:-1])
    with pytest.raises(ProofError, match="an empty proof"):
        verify_proof(root, key, b"")
    with pytest.raises(ProofError, match="at most"):
        verify_proof(root, key, b"\x00" * (1 << 21))
    with pytest.raises(ProofError, match="not the root"):
        verify_proof(_tree(301).root(), key, proof)
    with pytest.raises(ProofError, match=r"not the root|not its whole shared prefix"):
        verify_proof(root, b"key18", proof)  # read against another key, the keys are other keys
    # The first node alone: its path link has nothing below it.
    first_node_end = _node_end(proof)
    with pytest.raises(ProofError, match="marks one of its links as the path"):
        verify_proof(root, key, proof[:first_node_end])
    # A node with no path mark followed by another node.
    with pytest.raises(ProofError, match="marks none"):
        verify_proof(root, key, b"\x00" + proof)


def _blocks(proof: bytes, on_embedded: list[int] | None = None) -> list[int]:
    """Where each block of a proof ends (a parser for these tests: short keys and values)."""

    def block(at: int) -> int:
        head = shift = 0
        while True:  # the head is a varint: counts of 8 and more take two bytes
            head |= (proof[at] & 0x7F) << shift
            at += 1
            if proof[at - 1] < 0x80:
                break
            shift += 7
        if not head >> 4:  # the empty root
            return at
        at += 1  # the shared prefix
        at += 1 + proof[at]  # the key's rest
        at += 1 + proof[at]  # the value
        at = link(at, head >> 2 & 3)
        return link(at, head & 3)

    def link(at: int, code: int) -> int:
        if code == 3 and on_embedded is not None:
            on_embedded.append(at)
        return at + 32 if code == 2 else block(at) if code == 3 else at

    ends = [block(0)]
    while ends[-1] < len(proof):
        ends.append(block(ends[-1]))
    return ends


def _node_end(proof: bytes) -> int:
    return _blocks(proof)[0]


def test_small_subtrees_beside_the_path_are_written_out() -> None:
    tree = _tree(3_000)
    root = tree.root()
    embedded = 0
    for i in range(0, 3_000, 7):
        key = b"key%d" % i
        proof = prove(tree, key)
        assert verify_proof(root, key, proof) == b"v%d" % i
        embedded += _count_embedded(proof)
    assert embedded > 0
    assert EMBED_BELOW == 32


def _count_embedded(proof: bytes) -> int:
    found: list[int] = []
    _blocks(proof, found)
    return len(found)


def test_an_absence_proof_is_not_a_presence_proof() -> None:
    tree = _tree(500)
    root = tree.root()
    proof = prove(tree, b"nope")
    assert verify_proof(root, b"nope", proof) is None
    tree.put(b"nope", b"here")
    with pytest.raises(ProofError):
        verify_proof(tree.root(), b"nope", proof)
    assert verify_proof(tree.root(), b"nope", prove(tree, b"nope")) == b"here"
    assert verify_proof(StateTree().root(), b"x", prove(StateTree(), b"x")) is None
    with pytest.raises(ProofError):
        verify_proof(root, b"x", prove(StateTree(), b"x"))


# ---------------------------------------------------------------------- the bounded buffer

steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 1), keys, st.one_of(st.none(), values)),
        st.tuples(st.just("root"), st.integers(0, 1)),
        st.tuples(st.just("save"), st.integers(0, 1)),
    ),
    max_size=150,
)


@given(steps, st.integers(200, 3_000))
def test_the_buffer_stays_bounded_and_keeps_what_commits_reference(script, limit):
    backing = MemoryBlockStore()
    nodes = BufferedNodes(backing, limit=limit)
    trees = [StateTree(nodes), StateTree(nodes)]  # a store's tree and an index tree share the buffer
    models: list[dict[bytes, bytes]] = [{}, {}]
    saved: list[tuple[CID, dict[bytes, bytes]]] = []
    for step in script:
        which = step[1]
        assert isinstance(which, int)
        tree, model = trees[which], models[which]
        if step[0] == "write":
            _, _, key, value = step
            if value is None:
                tree.delete(key)
                model.pop(key, None)
            else:
                tree.put(key, value)
                model[key] = value
        elif step[0] == "root":
            tree.root()
            assert nodes.pending_bytes <= limit
        else:  # a commit saved: its root persisted, as the database does before writing or publishing it
            root = tree.root()
            nodes.persist(root)
            saved.append((root, dict(model)))
            assert nodes.pending_bytes == 0
    for root, model in saved:  # every saved commit's tree is whole in the backing store alone
        assert dict(StateTree(backing, root).items()) == model
    for tree, model in zip(trees, models, strict=True):
        nodes.persist()
        assert dict(StateTree(backing, tree.root()).items()) == model
        assert dict(tree.items()) == model


def _node_count(tree: StateTree) -> int:
    fresh = StateTree.build(tree.items())
    fresh.root()
    assert isinstance(fresh.store, MemoryNodes)
    return len(fresh.store.blocks) - 1  # not the empty node


def test_a_flush_over_the_limit_writes_the_live_trees_and_forgets_replaced_nodes() -> None:
    backing = MemoryBlockStore()
    nodes = BufferedNodes(backing, limit=10_000)
    tree, index = StateTree(nodes), StateTree(nodes)
    for i in range(2_000):
        tree.put(b"k%d" % i, b"v%d" % i)
        index.put(b"i%d" % i, b"")
        if i % 10 == 0:
            tree.root()
            index.root()
            assert nodes.pending_bytes <= 10_000
    nodes.persist()
    for t in (tree, index):
        assert len(list(StateTree(backing, t.root()).items())) == 2_000
    live = _node_count(tree) + _node_count(index)
    assert live < len(backing) < 2 * live  # replaced nodes were mostly forgotten, not written
    first = StateTree(nodes)
    first.put(b"a", b"1")
    old = first.root()
    first.put(b"a", b"2")
    first.root()
    nodes.persist()
    with pytest.raises(BlockNotFoundError):
        backing.get(old)  # replaced before it was saved: never written


def _proof_block(key: bytes, proven: bytes, count: int, left: int, right: int) -> bytes:
    """One block of a proof, written by hand (short keys, no value, null or path links)."""
    p = shared_prefix(key, proven)
    return bytes([count << 4 | left << 2 | right, p, len(key) - p]) + key[p:] + b"\x00"


def test_a_proof_through_a_group_out_of_balance_is_refused() -> None:
    """A writer's forged tree: one layer's three keys as a chain. Its root hashes, its order holds."""
    a, b, c = sorted(k for k in (b"k%d" % i for i in range(400)) if layer_of(k) == 1)[:3]

    def chain(counts: tuple[int, int, int]) -> tuple[CID, bytes]:
        bottom = encode_block(None, a, b"", None, counts[2])
        middle = encode_block(CID.for_block(bottom), b, b"", None, counts[1])
        top = encode_block(CID.for_block(middle), c, b"", None, counts[0])
        blocks = zip((c, b, a), counts, (1, 1, 0), strict=True)
        return CID.for_block(top), b"".join(_proof_block(k, a, n, left, 0) for k, n, left in blocks)

    root, proof = chain((3, 2, 1))  # the group's true counts: a count of 3 has a key on each side
    with pytest.raises(ProofError, match=r"block 0 of the proof: .* a side that must hold keys of the group"):
        verify_proof(root, a, proof)
    root, proof = chain((1, 1, 1))  # counts of 1: then what lies below is of a lower layer
    with pytest.raises(ProofError, match=r"block 1 of the proof: .* under the edge of a group of layer 1"):
        verify_proof(root, a, proof)
    # The honest tree of the same keys proves the same key, through the middle key.
    honest = StateTree.build([(a, b""), (b, b""), (c, b"")])
    assert verify_proof(honest.root(), a, prove(honest, a)) == b""
    assert [decode_node(CID.for_block(block), block).keys for block in honest.path(a)] == [(b,), (a,)]
