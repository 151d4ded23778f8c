"""Laws of the state tree: history independence, a dict model, diffs, proofs, and tampering refused."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ipfs_log.codec import IPLDKind, encode
from orbit.errors import ProofError, TreeNodeError
from orbit.state import EMPTY_ROOT, MemoryNodes, StateTree, prove, verify_proof
from orbit.state.diff import diff
from orbit.state.nodes import decode_node
from orbit.state.partial import PartialReplica
from orbit.state.proofs import prove_range, verify_range

keys = st.binary(min_size=0, max_size=6)
values = st.binary(min_size=0, max_size=8)
ops = st.lists(st.tuples(st.booleans(), keys, values), max_size=120)


def _apply(tree: StateTree, model: dict[bytes, bytes], script: list[tuple[bool, bytes, bytes]]) -> None:
    for is_put, key, value in script:
        if is_put:
            tree.put(key, value)
            model[key] = value
        else:
            assert tree.delete(key) == (key in model)
            model.pop(key, None)


@given(ops, st.randoms(use_true_random=False))
def test_same_set_same_root_whatever_the_history(script, rnd):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    items = list(model.items())
    rnd.shuffle(items)
    other = StateTree()
    for key, value in items:  # another insertion order, with detours
        other.put(key, b"detour")
        other.root()
        other.put(key, value)
    for key in {k for _, k, _ in script} - model.keys():
        other.put(key, b"gone")
        assert other.delete(key)
    assert tree.root() == other.root() == StateTree.build(sorted(model.items())).root()


@given(ops, ops, st.integers(1, 7))
def test_each_root_of_a_changing_tree_is_the_root_built_afresh(first, second, every):
    """Roots taken between writes reuse the blocks that did not change: each equals a fresh build."""
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, first)
    tree = StateTree(tree.store, tree.root())  # and from a reopened tree, loaded group by group
    for n, step in enumerate([*second, *((True, k, v) for _, k, v in first)]):  # old values come back
        _apply(tree, model, [step])
        if n % every == 0:
            assert tree.root() == StateTree.build(sorted(model.items())).root()
    assert tree.root() == StateTree.build(sorted(model.items())).root()


@given(ops, st.lists(st.integers(0, 5), max_size=5))
def test_reads_equal_a_dict_model(script, flush_points):
    tree, model = StateTree(), dict[bytes, bytes]()
    for n, step in enumerate(script):
        _apply(tree, model, [step])
        if n in flush_points:
            tree.root()
    for _, key, _ in script:
        assert tree.get(key) == model.get(key)
    assert list(tree.items()) == sorted(model.items())


@given(ops, keys, keys)
def test_ranges_and_prefixes_equal_the_model(script, lo, hi):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    reopened = StateTree(tree.store, tree.root())  # loaded lazily, node by node
    for t in (tree, reopened):
        assert list(t.items(lo, hi)) == sorted((k, v) for k, v in model.items() if lo <= k < hi)
        assert list(t.items(lo=lo)) == sorted((k, v) for k, v in model.items() if lo <= k)
        assert list(t.prefix(lo[:1])) == sorted((k, v) for k, v in model.items() if k.startswith(lo[:1]))


@given(ops, ops)
def test_a_reopened_tree_changes_as_the_original(first, second):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, first)
    reopened = StateTree(tree.store, tree.root())
    _apply(reopened, dict(model), second)
    _apply(tree, model, second)
    assert reopened.root() == tree.root()


@given(ops, ops)
def test_diff_is_the_dict_difference(first, second):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, first)
    before, old = tree.root(), dict(model)
    _apply(tree, model, second)
    changed = sorted(
        (k, old.get(k), model.get(k)) for k in old.keys() | model.keys() if old.get(k) != model.get(k)
    )
    assert list(diff(tree.store, before, tree.root())) == changed
    assert list(diff(tree.store, tree.root(), before)) == [(k, b, a) for k, a, b in changed]


@given(ops, keys)
def test_a_proof_verifies_to_the_trees_answer(script, probe):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    root = tree.root()
    for key in [probe, *model][:20]:
        assert verify_proof(root, key, prove(tree, key)) == model.get(key)


@given(ops, keys, keys)
def test_a_proof_does_not_prove_another_key_or_root(script, key, other):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    proof = prove(tree, key)
    with contextlib.suppress(ProofError):  # either refused, or the true answer for ``other``
        assert verify_proof(tree.root(), other, proof) == model.get(other)
    tree.put(key + b"!", b"x")
    with pytest.raises(ProofError):
        verify_proof(tree.root(), key, proof)


@given(ops.filter(bool), keys, st.data())
def test_every_tampered_proof_byte_is_refused(script, key, data):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    proof = prove(tree, key)
    at = data.draw(st.integers(0, len(proof) - 1))
    flip = data.draw(st.integers(1, 255))
    forged = proof[:at] + bytes([proof[at] ^ flip]) + proof[at + 1 :]
    with pytest.raises(ProofError):
        verify_proof(tree.root(), key, forged)
    with pytest.raises(ProofError):
        verify_proof(tree.root(), key, proof[:at])  # truncated


@given(ops.filter(bool), st.data())
def test_every_tampered_node_byte_is_refused(script, data):
    model: dict[bytes, bytes] = {}
    _apply(StateTree(), model, script)
    assume(model)
    tree = StateTree.build(sorted(model.items()))  # its store holds only the reachable nodes
    root = tree.root()
    assert isinstance(tree.store, MemoryNodes)
    blocks = tree.store.blocks
    cid = data.draw(st.sampled_from(sorted(c for c in blocks if c != EMPTY_ROOT)))
    block = blocks[cid]
    at = data.draw(st.integers(0, len(block) - 1))
    forged = block[:at] + bytes([block[at] ^ data.draw(st.integers(1, 255))]) + block[at + 1 :]
    with pytest.raises(TreeNodeError, match="do not hash"):
        decode_node(cid, forged)
    served = MemoryNodes()
    served.blocks.update(blocks)
    served.blocks[cid] = forged  # an untrusted store serves the forged bytes under the CID asked for
    with pytest.raises(TreeNodeError, match="do not hash"):
        list(StateTree(served, root).items())


bounds = st.one_of(st.none(), keys)


@given(ops, bounds, bounds)
def test_a_range_proof_verifies_to_exactly_the_range(script, lo, hi):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    proof = prove_range(tree, lo, hi)
    expected = sorted((k, v) for k, v in model.items() if (lo is None or lo <= k) and (hi is None or k < hi))
    assert verify_range(tree.root(), lo, hi, proof) == expected


@given(ops.filter(bool), bounds, bounds, st.data())
def test_a_range_proof_missing_or_adding_or_changing_a_node_is_refused(script, lo, hi, data):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, script)
    assume(model)
    root = tree.root()
    blocks: list[IPLDKind] = list(tree.range_blocks(lo, hi))
    at = data.draw(st.integers(0, len(blocks) - 1))
    with pytest.raises(ProofError):
        verify_range(root, lo, hi, encode(blocks[:at] + blocks[at + 1 :]))  # a node left out
    with pytest.raises(ProofError):
        verify_range(root, lo, hi, encode([*blocks, blocks[at]]))  # a node twice
    block = blocks[at]
    assert type(block) is bytes
    i = data.draw(st.integers(0, len(block) - 1))
    forged = block[:i] + bytes([block[i] ^ data.draw(st.integers(1, 255))]) + block[i + 1 :]
    with pytest.raises(ProofError):
        verify_range(root, lo, hi, encode([*blocks[:at], forged, *blocks[at + 1 :]]))
    whole = prove_range(tree, None, None)
    if whole != encode(blocks):  # a proof of another range, which reaches other nodes
        with pytest.raises(ProofError):
            verify_range(root, lo, hi, whole)


@given(ops, ops, bounds, bounds)
def test_a_diff_within_a_range_is_the_dict_difference_there(first, second, lo, hi):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, first)
    before, old = tree.root(), dict(model)
    _apply(tree, model, second)

    def inside(k: bytes) -> bool:
        return (lo is None or lo <= k) and (hi is None or k < hi)

    changed = sorted(
        (k, old.get(k), model.get(k))
        for k in old.keys() | model.keys()
        if old.get(k) != model.get(k) and inside(k)
    )
    assert list(diff(tree.store, before, tree.root(), lo, hi)) == changed


@given(st.lists(ops, min_size=1, max_size=4), bounds, bounds)
def test_a_partial_replica_holds_the_full_replicas_range(rounds, lo, hi):
    tree, model = StateTree(), dict[bytes, bytes]()
    replica = PartialReplica(tree.store, lo, hi)
    for script in rounds:
        _apply(tree, model, script)
        replica.follow(tree.root())
        expected = sorted(
            (k, v) for k, v in model.items() if (lo is None or lo <= k) and (hi is None or k < hi)
        )
        assert replica.items() == expected
        for key, _ in expected[:5]:
            assert verify_proof(tree.root(), key, replica.prove(key)) == model[key]
        if lo is not None and (hi is None or lo < hi):
            assert verify_proof(tree.root(), lo, replica.prove(lo)) == model.get(lo)  # present or absent


@given(ops, ops, st.booleans())
def test_a_batch_update_equals_the_same_writes_one_by_one(first, second, reopen):
    tree, model = StateTree(), dict[bytes, bytes]()
    _apply(tree, model, first)
    batched = StateTree(tree.store, tree.root()) if reopen else StateTree.build(sorted(model.items()))
    changes: dict[bytes, bytes | None] = {}
    for is_put, key, value in second:
        changes[key] = value if is_put else None
    _apply(tree, model, [(v is not None, k, v or b"") for k, v in changes.items()])
    batched.update(changes)
    assert list(batched.items()) == sorted(model.items())
    assert batched.root() == tree.root()
