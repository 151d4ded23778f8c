"""Compact proofs (each malformation refused with its own error), the layer rule, and the bounded buffer."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import ProofError
from orbit.state import BufferedNodes, MemoryNodes, StateTree, prove, verify_proof
from orbit.state.nodes import _THRESHOLDS, LAYERS_PER_BIT, MAX_LAYER, layer_of
from orbit.state.proofs import EMBED_BELOW, MAX_PROOF_NODES

keys = st.binary(min_size=0, max_size=6)
values = st.binary(min_size=0, max_size=8)
ops = st.lists(st.tuples(st.booleans(), keys, values), max_size=120)


def _tree(n: int) -> StateTree:
    tree = StateTree()
    for i in range(n):
        tree.put(b"key%d" % i, b"v%d" % i)
    return tree


def test_the_layer_is_quarters_of_a_bit_of_the_hash() -> None:
    for j, threshold in enumerate(reversed(_THRESHOLDS), 1):  # exact: floor(2 ** (64 - j / 4))
        assert threshold**LAYERS_PER_BIT <= 2 ** (64 * LAYERS_PER_BIT - j) < (threshold + 1) ** LAYERS_PER_BIT
    for i in range(20_000):
        key = b"k%d" % i
        n = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        assert layer_of(key) == math.floor(LAYERS_PER_BIT * (64 - math.log2(n)))
    assert MAX_PROOF_NODES == MAX_LAYER + 2


def test_almost_every_node_holds_one_key() -> None:
    tree = _tree(2_000)
    proofs = [prove(tree, b"key%d" % i) for i in range(0, 2_000, 97)]
    assert max(len(p) for p in proofs) < 1_200  # some 11 nodes of about 45 bytes


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
    with pytest.raises(ProofError, match="ends inside node"):
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


def _node_end(proof: bytes) -> int:
    """Where the first node of a proof ends (a parser for these tests: one-byte varints only)."""
    at = 0

    def node(at: int) -> int:
        head = proof[at]
        at += 1
        count, code = head >> 2, head & 3
        at = link(at, code)
        for _ in range(count):
            head = proof[at]
            at += 1
            size = proof[at]
            at += 1 + size
            size = proof[at]
            at += 1 + size
            at = link(at, head & 3)
        return at

    def link(at: int, code: int) -> int:
        return at + 32 if code == 2 else node(at) if code == 3 else at

    return node(at)


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
    found = 0
    at = 0

    def node(at: int) -> int:
        nonlocal found
        head = proof[at]
        at += 1
        at = link(at, head & 3)
        for _ in range(head >> 2):
            entry = proof[at]
            at += 1
            at += 1 + proof[at]
            at += 1 + proof[at]
            at = link(at, entry & 3)
        return at

    def link(at: int, code: int) -> int:
        nonlocal found
        if code == 3:
            found += 1
            return node(at)
        return at + 32 if code == 2 else at

    while at < len(proof):
        at = node(at)
    return found


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
