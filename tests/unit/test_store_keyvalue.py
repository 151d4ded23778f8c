"""KeyValue: reads, writes, bad input, last-writer-wins with late older entries, malformed ops."""

from __future__ import annotations

import pytest

from ipfs_log import CID, Log
from stores import InvalidOperationError, KeyNotFoundError, KeyValue
from tests.conftest import ALICE, BOB, CAROL


@pytest.fixture
def kv(log_factory) -> KeyValue:
    return KeyValue(log_factory())


def test_put_get_contains_len(kv):
    cid = kv.put("a", {"x": [1, 2.5, b"z", None, True]})
    assert isinstance(cid, CID)
    assert kv.log.get(cid).payload == {"op": "PUT", "key": "a", "value": {"x": [1, 2.5, b"z", None, True]}}
    assert kv.get("a") == {"x": [1, 2.5, b"z", None, True]}
    assert kv["a"] == kv.get("a")
    assert "a" in kv
    assert "b" not in kv
    assert 1 not in kv
    assert len(kv) == 1


def test_get_missing(kv):
    assert kv.get("nope") is None
    assert kv.get("nope", 7) == 7
    with pytest.raises(KeyNotFoundError) as info:
        kv["nope"]
    assert info.value.key == "nope"
    with pytest.raises(KeyError):
        kv["nope"]


def test_none_is_a_value(kv):
    kv.put("a", None)
    assert "a" in kv
    assert kv["a"] is None
    assert kv.get("a", 5) is None


def test_overwrite_and_delete(kv):
    kv.put("a", 1)
    kv.put("a", 2)
    assert kv["a"] == 2
    cid = kv.delete("a")
    assert kv.log.get(cid).payload == {"op": "DEL", "key": "a"}
    assert "a" not in kv
    assert len(kv) == 0
    kv.put("a", 3)
    assert kv["a"] == 3


def test_delete_of_an_absent_key_writes_a_tombstone(kv):
    kv.delete("ghost")
    assert len(kv.log) == 1
    assert "ghost" not in kv


def test_items_keys_all_iter(kv):
    kv.put("a", 1)
    kv.put("b", 2)
    assert dict(kv.items()) == {"a": 1, "b": 2}
    assert sorted(kv.keys()) == ["a", "b"]
    assert sorted(kv) == ["a", "b"]
    everything = kv.all()
    everything["c"] = 3
    assert "c" not in kv


def test_the_index_is_isolated_from_the_callers_objects(kv):
    value = {"list": [1]}
    kv.put("a", value)
    value["list"].append(2)
    assert kv["a"] == {"list": [1]}


@pytest.mark.parametrize("key", [1, b"a", None, ("a",), 1.5])
def test_keys_must_be_str(kv, key):
    with pytest.raises(InvalidOperationError, match="keys are str"):
        kv.put(key, 1)
    with pytest.raises(InvalidOperationError):
        kv.delete(key)
    with pytest.raises(InvalidOperationError), kv.batch() as batch:
        batch.put(key, 1)
    assert len(kv.log) == 0


@pytest.mark.parametrize(
    "value", [(1, 2), {1: 2}, {"a": {3}}, object(), float("nan"), 2**64, bytearray(b"x")]
)
def test_values_must_be_ipld(kv, value):
    with pytest.raises(InvalidOperationError, match="not an IPLD value") as info:
        kv.put("a", value)
    assert "'a'" in str(info.value)
    assert len(kv.log) == 0


def test_a_bad_operation_fails_the_whole_batch(kv):
    batch = kv.batch()
    batch.put("a", 1)
    with pytest.raises(InvalidOperationError):
        batch.put("b", (1,))
    assert len(kv.log) == 0
    assert len(kv) == 0


def test_batch(kv):
    with kv.batch() as batch:
        for i in range(10):
            batch.put(f"k{i}", i)
        batch.delete("k3")
        batch.put("k4", "last")
    assert len(batch.entries) == 12
    assert len(kv) == 9
    assert kv["k4"] == "last"
    assert "k3" not in kv


def test_late_older_concurrent_put_does_not_win(log_factory):
    alice, bob, carol = (KeyValue(log_factory(i)) for i in (ALICE, BOB, CAROL))
    alice.put("k", "old")  # time 1
    bob.put("x", 0)
    bob.put("x", 1)
    bob.put("k", "new")  # time 3: later in the total order
    carol.join(bob)
    assert carol["k"] == "new"
    carol.join(alice)  # the older concurrent entry arrives last
    assert carol["k"] == "new"
    alice.join(bob)
    assert alice["k"] == "new"
    assert carol.all() == alice.all() == KeyValue(carol.log).all()


def test_late_older_put_does_not_resurrect_a_deleted_key(log_factory):
    alice, bob, carol = (KeyValue(log_factory(i)) for i in (ALICE, BOB, CAROL))
    alice.put("k", "old")
    bob.put("k", "v")
    bob.delete("k")  # time 2
    carol.join(bob)
    carol.join(alice)
    assert "k" not in carol
    assert carol.all() == KeyValue(carol.log).all() == {}


def test_late_newer_put_wins(log_factory):
    alice, bob = KeyValue(log_factory(ALICE)), KeyValue(log_factory(BOB))
    alice.put("k", 1)
    bob.put("x", 1)
    bob.put("k", 2)
    alice.join(bob)
    assert alice["k"] == 2


def test_equal_times_break_on_writer_key(log_factory):
    alice, bob = KeyValue(log_factory(ALICE)), KeyValue(log_factory(BOB))
    alice.put("k", "alice")
    bob.put("k", "bob")
    winner = "alice" if ALICE.public_key > BOB.public_key else "bob"
    alice.join(bob)
    bob.join(alice)
    assert alice["k"] == bob["k"] == winner


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "PUT",
        [1, 2],
        {},
        {"op": "PUT"},
        {"op": "PUT", "key": "k"},
        {"op": "PUT", "key": 5, "value": 1},
        {"op": "DEL"},
        {"op": "DEL", "key": b"k"},
        {"op": "NOPE", "key": "k", "value": 1},
        {"op": 1, "key": "k", "value": 1},
    ],
)
def test_malformed_joined_ops_are_ignored(log_factory, payload):
    kv = KeyValue(log_factory(ALICE))
    kv.put("k", "kept")
    mallory_ish: Log = log_factory(BOB)  # a permitted writer with garbage payloads
    mallory_ish.append(payload)
    mallory_ish.append(payload)
    assert len(kv.join(mallory_ish)) == 2
    assert kv.all() == {"k": "kept"}
    assert KeyValue(kv.log).all() == {"k": "kept"}


def test_checkpoint_round_trip_with_tombstones(log_factory):
    kv = KeyValue(log_factory(ALICE))
    kv.put("a", {"deep": [1, {"x": None}]})
    kv.put("b", 2)
    kv.delete("b")
    restored = KeyValue(kv.log, checkpoint=kv.checkpoint())
    assert restored.all() == kv.all()
    # the tombstone survived: an older put for "b" joined now does not bring it back
    bob = KeyValue(log_factory(BOB))
    bob.put("b", "old")
    restored.join(bob)
    kv.join(bob)
    assert "b" not in restored
    assert restored.all() == kv.all() == KeyValue(kv.log).all()


def test_restored_store_follows_the_log(log_factory):
    kv = KeyValue(log_factory())
    kv.put("a", 1)
    restored = KeyValue(kv.log, checkpoint=kv.checkpoint())
    restored.put("b", 2)
    assert restored.all() == {"a": 1, "b": 2}
    assert kv.all() == {"a": 1, "b": 2}  # both follow the same log


@pytest.mark.parametrize(
    "state",
    [
        [],
        {"a": "x"},
        {"a": [1, b"k"]},
        {"a": [1, b"k", b"c", 1, 2]},
        {"a": [True, b"k", b"c"]},
        {"a": [1, "k", b"c"]},
    ],
)
def test_bad_keyvalue_checkpoint(kv, state):
    from stores import InvalidCheckpointError

    kv.put("a", 1)
    checkpoint = kv.checkpoint()
    with pytest.raises(InvalidCheckpointError):
        KeyValue(kv.log, checkpoint={**checkpoint, "state": state})


def test_a_value_too_large_for_one_entry_is_refused(kv):
    kv.put("a", 1)
    with pytest.raises(InvalidOperationError, match="limit"):
        kv.put("big", "x" * 2_000_000)  # no replica would accept the entry
    assert "big" not in kv
    assert kv.get("a") == 1
    assert len(kv.log) == 1
