"""Documents: keyed by a field, PUTALL, field indexes kept in step, bad input, malformed ops."""

from __future__ import annotations

from typing import Any

import pytest

from ipfs_log import CID
from stores import (
    Document,
    DocumentNotFoundError,
    Documents,
    DocumentsOptions,
    InvalidCheckpointError,
    InvalidOperationError,
    UnindexedFieldError,
)
from tests.conftest import ALICE, BOB, CAROL

PEOPLE: list[Document] = [
    {"_id": "ada", "city": "London", "born": 1815},
    {"_id": "alan", "city": "London", "born": 1912},
    {"_id": "kurt", "city": "Vienna", "born": 1906},
    {"_id": "grace", "city": "New York", "born": 1906},
]


@pytest.fixture
def docs(log_factory) -> Documents:
    return Documents(log_factory(), indexes=["city", "born"])


def ids(found: list[Document]) -> list[Any]:
    return [d["_id"] for d in found]


def test_options(docs, log_factory):
    assert docs.options == DocumentsOptions("_id", ("city", "born"))
    assert Documents(log_factory()).options == DocumentsOptions()


def test_put_get(docs):
    cid = docs.put(PEOPLE[0])
    assert isinstance(cid, CID)
    assert docs.log.get(cid).payload == {"op": "PUT", "key": "ada", "value": PEOPLE[0]}
    assert docs.get("ada") == PEOPLE[0]
    assert docs["ada"] == PEOPLE[0]
    assert "ada" in docs
    assert len(docs) == 1
    assert docs.get("nobody") is None
    with pytest.raises(DocumentNotFoundError) as info:
        docs["nobody"]
    assert info.value.key == "nobody"


def test_put_many_is_one_entry(docs):
    cid = docs.put_many(PEOPLE)
    assert len(docs.log) == 1
    assert docs.log.get(cid).payload == {"op": "PUTALL", "docs": PEOPLE}
    assert docs.all() == {p["_id"]: p for p in PEOPLE}
    assert docs.put_many([]) is None
    assert len(docs.log) == 1


def test_put_many_last_duplicate_wins(docs):
    docs.put_many([{"_id": "a", "v": 1}, {"_id": "b"}, {"_id": "a", "v": 2}])
    assert docs["a"] == {"_id": "a", "v": 2}
    assert docs.find(_id="a") == [{"_id": "a", "v": 2}]
    assert docs.checkpoint() == Documents(docs.log, indexes=["city", "born"]).checkpoint()


def test_delete(docs):
    docs.put_many(PEOPLE)
    cid = docs.delete("ada")
    assert docs.log.get(cid).payload == {"op": "DEL", "key": "ada"}
    assert "ada" not in docs
    assert ids(docs.find(city="London")) == ["alan"]
    with pytest.raises(DocumentNotFoundError):
        docs.delete("ada")
    with pytest.raises(InvalidOperationError):
        docs.delete(1)
    assert len(docs.log) == 2


def test_find_uses_indexes_and_sorts_by_key(docs):
    docs.put_many(PEOPLE)
    assert ids(docs.find(city="London")) == ["ada", "alan"]
    assert ids(docs.find(born=1906)) == ["grace", "kurt"]
    assert ids(docs.find(city="London", born=1912)) == ["alan"]
    assert ids(docs.find(city="Paris")) == []
    assert ids(docs.find(born=1906, name="x")) == []  # unindexed field filters the candidates
    assert ids(docs.find(_id="kurt")) == ["kurt"]
    assert ids(docs.find(_id="kurt", city="London")) == []
    assert ids(docs.find(_id="nobody")) == []
    assert ids(docs.find(_id=5)) == []


def test_find_compares_ipld_values(docs):
    docs.put_many([{"_id": "i", "born": 1}, {"_id": "f", "born": 1.0}, {"_id": "b", "born": True}])
    assert ids(docs.find(born=1)) == ["i"]
    assert ids(docs.find(born=1.0)) == ["f"]
    assert ids(docs.find(born=True)) == ["b"]
    docs.put({"_id": "l", "city": ["a", {"b": None}]})
    assert ids(docs.find(city=["a", {"b": None}])) == ["l"]


def test_find_errors(docs):
    with pytest.raises(UnindexedFieldError) as info:
        docs.find(name="ada")
    assert info.value.field == "name"
    with pytest.raises(InvalidOperationError):
        docs.find()
    with pytest.raises(InvalidOperationError):
        docs.find(city=("a",))


def test_indexes_follow_replacements(docs):
    docs.put({"_id": "ada", "city": "London"})
    docs.put({"_id": "ada", "city": "Paris"})
    assert docs.find(city="London") == []
    assert ids(docs.find(city="Paris")) == ["ada"]
    assert docs.distinct("city") == ["Paris"]
    docs.put({"_id": "ada"})  # the field is gone
    assert docs.find(city="Paris") == []
    assert docs.distinct("city") == []  # no empty bucket left behind in the index
    with pytest.raises(UnindexedFieldError):
        docs.distinct("name")


def test_create_index(docs):
    docs.put_many(PEOPLE)
    with pytest.raises(UnindexedFieldError):
        docs.find(name="x")
    docs.create_index("born")  # already there: nothing to do
    docs.create_index("name")
    docs.put({"_id": "x", "name": "x"})
    assert ids(docs.find(name="x")) == ["x"]
    with pytest.raises(InvalidOperationError):
        docs.create_index(1)


def test_query_scans_and_sorts(docs):
    docs.put_many(PEOPLE)
    assert ids(docs.query(lambda d: d["born"] == 1906)) == ["grace", "kurt"]
    assert ids(docs.query(lambda d: True)) == ["ada", "alan", "grace", "kurt"]
    with pytest.raises(ZeroDivisionError):
        docs.query(lambda d: 1 / 0 > 0)


def test_reads(docs):
    docs.put_many(PEOPLE)
    assert sorted(docs) == sorted(docs.keys()) == ["ada", "alan", "grace", "kurt"]
    assert dict(docs.items()) == docs.all()


def test_custom_index_by(log_factory):
    docs = Documents(log_factory(), index_by="name")
    docs.put({"name": "x", "v": 1})
    assert docs["x"] == {"name": "x", "v": 1}
    with pytest.raises(InvalidOperationError, match="'name'"):
        docs.put({"_id": "x"})


@pytest.mark.parametrize("bad", [{"index_by": 1}, {"indexes": [1]}])
def test_bad_options(log_factory, bad):
    with pytest.raises(InvalidOperationError):
        Documents(log_factory(), **bad)


@pytest.mark.parametrize(
    "doc",
    [
        {"city": "no key"},
        {"_id": 1},
        {"_id": None},
        {"_id": b"x"},
        {"_id": "x", "bad": (1, 2)},
        {"_id": "x", 1: "non-str key"},
        ["_id", "x"],
        "doc",
        None,
    ],
)
def test_bad_documents_are_refused(docs, doc):
    with pytest.raises(InvalidOperationError):
        docs.put(doc)
    with pytest.raises(InvalidOperationError):
        docs.put_many([{"_id": "fine"}, doc])
    batch = docs.batch()
    batch.put({"_id": "fine"})
    with pytest.raises(InvalidOperationError):
        batch.put(doc)
    with pytest.raises(InvalidOperationError):
        batch.put_many([doc])
    assert len(batch) == 1
    assert len(docs.log) == 0
    assert len(docs) == 0


def test_the_index_is_isolated_from_the_callers_objects(docs):
    doc = {"_id": "a", "city": "London"}
    docs.put(doc)
    doc["city"] = "Paris"
    assert docs["a"]["city"] == "London"
    assert ids(docs.find(city="London")) == ["a"]


def test_batch(docs):
    docs.put({"_id": "old"})
    with docs.batch() as batch:
        batch.put({"_id": "a", "city": "London"})
        batch.put_many([{"_id": "b", "city": "London"}, {"_id": "c"}])
        batch.put_many([])
        batch.delete("a")
        batch.delete("old")
        with pytest.raises(DocumentNotFoundError):
            batch.delete("a")  # deleted earlier in this batch
        with pytest.raises(DocumentNotFoundError):
            batch.delete("nobody")
        with pytest.raises(InvalidOperationError):
            batch.delete(3)
    assert len(batch.entries) == 4
    assert sorted(docs) == ["b", "c"]
    assert ids(docs.find(city="London")) == ["b"]


def test_late_older_concurrent_put_does_not_win(log_factory):
    alice, bob, carol = (Documents(log_factory(i), indexes=["v"]) for i in (ALICE, BOB, CAROL))
    alice.put({"_id": "k", "v": "old"})
    bob.put({"_id": "x"})
    bob.put({"_id": "k", "v": "new"})
    carol.join(bob)
    carol.join(alice)
    assert carol["k"]["v"] == "new"
    assert carol.find(v="old") == []
    assert ids(carol.find(v="new")) == ["k"]


def test_putall_docs_compete_with_their_entry_sort_key(log_factory):
    alice, bob, carol = (Documents(log_factory(i), indexes=["v"]) for i in (ALICE, BOB, CAROL))
    bob.put({"_id": "x"})
    bob.put({"_id": "a", "v": "bob"})  # time 2, beats alice's PUTALL (time 1) for "a"
    bob.delete("x")  # time 3
    alice.put_many([{"_id": "a", "v": "alice"}, {"_id": "b", "v": "alice"}, {"_id": "x", "v": "alice"}])
    carol.join(bob)
    carol.join(alice)
    assert carol.all() == {"a": {"_id": "a", "v": "bob"}, "b": {"_id": "b", "v": "alice"}}
    alice.join(bob)
    assert alice.all() == carol.all() == Documents(carol.log).all()
    assert ids(alice.find(v="alice")) == ["b"]


@pytest.mark.parametrize(
    "payload",
    [
        "junk",
        {"op": "PUT", "key": "k"},
        {"op": "PUT", "key": "k", "value": "not a doc"},
        {"op": "PUT", "key": "k", "value": {"_id": "other"}},
        {"op": "PUT", "key": "k", "value": {"v": 1}},
        {"op": "PUT", "key": 1, "value": {"_id": 1}},
        {"op": "DEL", "key": None},
        {"op": "PUTALL"},
        {"op": "PUTALL", "docs": {"_id": "k"}},
        {"op": "PUTALL", "docs": [{"_id": "z"}, "junk"]},
        {"op": "PUTALL", "docs": [{"_id": "z"}, {"_id": 3}]},
        {"op": "PUTALL", "docs": [{"_id": "z"}, {"v": 3}]},
        {"op": "DROP", "key": "k"},
    ],
)
def test_malformed_joined_ops_are_ignored(log_factory, payload):
    docs = Documents(log_factory(ALICE), indexes=["v"])
    docs.put({"_id": "k", "v": 1})
    bad = log_factory(BOB)
    bad.append(payload)
    docs.join(bad)
    assert docs.all() == {"k": {"_id": "k", "v": 1}}
    assert ids(docs.find(v=1)) == ["k"]
    assert Documents(docs.log, indexes=["v"]).checkpoint() == docs.checkpoint()


def test_checkpoint_round_trip_rebuilds_indexes(log_factory):
    docs = Documents(log_factory(), indexes=["city"])
    docs.put_many(PEOPLE)
    docs.delete("kurt")
    checkpoint = docs.checkpoint()
    restored = Documents(docs.log, checkpoint=checkpoint)
    assert restored.options == docs.options
    assert restored.all() == docs.all()
    assert ids(restored.find(city="London")) == ["ada", "alan"]
    assert restored.checkpoint() == checkpoint
    more = Documents(docs.log, checkpoint=checkpoint, indexes=["born"])
    assert ids(more.find(born=1906)) == ["grace"]
    with pytest.raises(UnindexedFieldError):
        more.find(city="London")
    # the tombstone for "kurt" survived
    bob = Documents(log_factory(BOB))
    bob.put(PEOPLE[2])
    restored.join(bob)
    assert "kurt" not in restored


def test_checkpoint_needs_the_same_index_by(log_factory):
    docs = Documents(log_factory())
    docs.put({"_id": "a"})
    with pytest.raises(InvalidCheckpointError, match="indexes documents by"):
        Documents(docs.log, checkpoint=docs.checkpoint(), index_by="name")


@pytest.mark.parametrize(
    "state",
    [
        "x",
        {"index_by": "_id", "indexes": [], "docs": [], "more": 1},
        {"index_by": "_id", "indexes": [1], "docs": {}},
        {"index_by": "_id", "indexes": [], "docs": []},
        {"index_by": "_id", "indexes": [], "docs": {"a": "x"}},
        {"index_by": "_id", "indexes": [], "docs": {"a": [1, b"k", b"c", {"_id": "b"}]}},
        {"index_by": "_id", "indexes": [], "docs": {"a": [1, b"k", b"c", "doc"]}},
        {"index_by": "_id", "indexes": [], "docs": {"a": ["1", b"k", b"c"]}},
    ],
)
def test_bad_documents_checkpoint(log_factory, state):
    docs = Documents(log_factory())
    docs.put({"_id": "a"})
    checkpoint = docs.checkpoint()
    assert isinstance(checkpoint, dict)
    with pytest.raises(InvalidCheckpointError):
        Documents(docs.log, checkpoint={**checkpoint, "state": state})
