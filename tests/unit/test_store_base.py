"""What every store shares: updates, local vs joined, close, checkpoint envelope, the public API."""

from __future__ import annotations

import ast
import functools
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import stores
from ipfs_log import CodecError, Entry, IPLDKind, Log, MemoryBlockStore, OrbitError, encode
from stores import (
    STORE_TYPES,
    Counter,
    Documents,
    EventLog,
    InvalidCheckpointError,
    InvalidOperationError,
    KeyValue,
    Store,
    StoreClosedError,
    StoreError,
    Table,
    Update,
)
from stores.table import Column, Schema, TableSchema
from tests.conftest import ALICE, BOB, WRITERS

ROOT = Path(__file__).resolve().parents[2]


def write_one(store: Store) -> None:
    if isinstance(store, EventLog):
        store.add("x")
    elif isinstance(store, KeyValue):
        store.put("k", 1)
    elif isinstance(store, Counter):
        store.inc()
    elif isinstance(store, Documents):
        store.put({"_id": "k"})
    elif isinstance(store, Table):
        store.set("t", "k", {"v": 1})


TABLE_SCHEMA = Schema((TableSchema("t", (Column("k", "TEXT"), Column("v", "ANY")), ("k",)),))


@pytest.fixture(params=sorted(STORE_TYPES))
def store_type(request: pytest.FixtureRequest) -> Any:
    cls = STORE_TYPES[request.param]
    if cls is Table:
        return functools.partial(Table, schema=TABLE_SCHEMA)
    return cls


def test_store_types_are_named_by_their_type():
    assert {
        "eventlog": EventLog,
        "keyvalue": KeyValue,
        "counter": Counter,
        "documents": Documents,
        "table": Table,
    } == STORE_TYPES
    for name, cls in STORE_TYPES.items():
        assert name == cls.TYPE


def test_exported_members():
    public = {name for name in dir(stores) if not name.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(stores.__path__)}  # bound once imported
    assert {"base", "counter", "documents", "errors", "eventlog", "keyvalue", "table"} <= modules
    assert public - modules - set(stores.__all__) == set()
    assert all(hasattr(stores, name) for name in stores.__all__)


def test_stores_import_only_ipfs_log_and_the_standard_library():
    allowed = {"ipfs_log", "stores", "__future__", "abc", "collections", "dataclasses", "itertools"}
    allowed |= {"types", "typing", "contextlib", "json"}  # json: the documents query language's literals
    allowed |= {"importlib"}  # the package imports its modules on first use
    for path in (ROOT / "stores").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_error_tree():
    assert issubclass(StoreError, OrbitError)
    assert issubclass(InvalidOperationError, ValueError)
    assert issubclass(stores.KeyNotFoundError, KeyError)
    assert issubclass(stores.DocumentNotFoundError, stores.KeyNotFoundError)
    assert str(stores.KeyNotFoundError("k")) == "no key 'k' in the store"
    assert InvalidOperationError("bad", "keyvalue").store == "keyvalue"


def test_log_property_and_repr(log_factory, store_type):
    log = log_factory()
    store = store_type(log)
    assert store.log is log
    assert type(store).__name__ in repr(store)


def test_local_writes_notify_with_local_true(log_factory, store_type):
    store = store_type(log_factory())
    updates: list[Update] = []
    store.subscribe(updates.append)
    write_one(store)
    assert len(updates) == 1
    assert updates[0].local is True
    assert updates[0].entries == tuple(store.log)


def test_joined_entries_notify_with_local_false(log_factory, store_type):
    mine, theirs = store_type(log_factory(ALICE)), store_type(log_factory(BOB))
    write_one(theirs)
    write_one(theirs)
    updates: list[Update] = []
    mine.subscribe(updates.append)
    admitted = mine.join(theirs)
    assert len(admitted) == 2
    assert updates == [Update(tuple(admitted), local=False)]
    assert mine.join(theirs) == []
    assert len(updates) == 1


def test_join_accepts_a_log_and_join_heads(log_factory):
    mine, theirs = KeyValue(log_factory(ALICE)), KeyValue(log_factory(BOB))
    theirs.put("a", 1)
    assert len(mine.join(theirs.log)) == 1
    theirs.put("b", 2)
    assert len(mine.join_heads(theirs.log.head_cids, source=theirs.log.store)) == 1
    assert mine.all() == {"a": 1, "b": 2}


def test_writes_and_joins_through_the_log_reach_the_store(log_factory, store):
    kv = KeyValue(log_factory(ALICE))
    updates: list[Update] = []
    kv.subscribe(updates.append)
    kv.log.append({"op": "PUT", "key": "a", "value": 1})
    bob = Log(BOB, store, log_id="test-log", access=WRITERS)
    bob.append({"op": "PUT", "key": "b", "value": 2})
    kv.log.join(bob)
    assert kv.all() == {"a": 1, "b": 2}
    assert [u.local for u in updates] == [True, False]


def test_unsubscribe(log_factory, store_type):
    store = store_type(log_factory())
    updates: list[Update] = []
    unsubscribe = store.subscribe(updates.append)
    write_one(store)
    unsubscribe()
    unsubscribe()  # harmless twice
    write_one(store)
    assert len(updates) == 1


def test_ignored_entries_are_not_reported(log_factory):
    kv = KeyValue(log_factory())
    updates: list[Update] = []
    kv.subscribe(updates.append)
    kv.log.append("not an op")
    assert updates == []
    kv.log.append_many(["junk", {"op": "PUT", "key": "a", "value": 1}])
    assert len(updates) == 1
    assert [e.payload for e in updates[0].entries] == [{"op": "PUT", "key": "a", "value": 1}]


def test_a_callback_can_write_and_sees_consistent_state(log_factory):
    kv = KeyValue(log_factory())
    seen: list[tuple[bool, object]] = []

    def on_update(update: Update) -> None:
        seen.append((update.local, kv.get("a")))
        if kv.get("a") == 1:
            kv.put("a", 2)

    kv.subscribe(on_update)
    kv.put("a", 1)
    assert seen == [(True, 1), (True, 2)]
    assert kv["a"] == 2


def test_close_stops_following_and_refuses_writes(log_factory, store_type):
    store = store_type(log_factory())
    with store:
        write_one(store)
    assert store.closed
    store.close()  # idempotent
    length = len(store.log)
    with pytest.raises(StoreClosedError):
        write_one(store)
    with pytest.raises(StoreClosedError):
        store.join(Log(BOB, MemoryBlockStore(), log_id="test-log", access=WRITERS))
    assert len(store.log) == length


def test_checkpoint_is_ipld_and_restores(log_factory, store_type):
    store = store_type(log_factory())
    write_one(store)
    checkpoint = store.checkpoint()
    encode(checkpoint)
    restored = store_type(store.log, checkpoint=checkpoint)
    assert restored.checkpoint() == checkpoint


def test_checkpoint_of_an_empty_store(log_factory, store_type):
    log = log_factory()
    assert (
        store_type(log, checkpoint=store_type(log).checkpoint()).checkpoint() == store_type(log).checkpoint()
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: "nope",
        lambda c: {**c, "extra": 1},
        lambda c: {**c, "type": "other"},
        lambda c: {**c, "v": 99},
        lambda c: {**c, "heads": []},
        lambda c: {**c, "heads": "x"},
        lambda c: {**c, "state": "garbage"},
    ],
)
def test_bad_checkpoints_are_refused(log_factory, store_type, mangle):
    store = store_type(log_factory())
    write_one(store)
    with pytest.raises(InvalidCheckpointError):
        store_type(store.log, checkpoint=mangle(store.checkpoint()))


def test_checkpoint_taken_at_other_heads_is_refused(log_factory, store_type):
    store = store_type(log_factory())
    write_one(store)
    checkpoint = store.checkpoint()
    write_one(store)
    with pytest.raises(InvalidCheckpointError, match="other heads"):
        store_type(store.log, checkpoint=checkpoint)


def test_batch_discards_on_exception(log_factory):
    kv = KeyValue(log_factory())
    batches = []

    def fill() -> None:
        with kv.batch() as batch:
            batches.append(batch)
            batch.put("a", 1)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fill()
    assert len(kv.log) == 0
    assert len(batches[0]) == 0


def test_batch_commit_is_one_append_and_one_update(log_factory):
    kv = KeyValue(log_factory())
    updates: list[Update] = []
    kv.subscribe(updates.append)
    batch = kv.batch()
    batch.put("a", 1)
    batch.put("b", 2)
    batch.delete("a")
    assert len(batch) == 3
    entries = batch.commit()
    assert len(entries) == 3
    assert batch.commit() == []
    assert [len(u.entries) for u in updates] == [3]
    assert kv.all() == {"b": 2}


class UnencodableLog(Log):
    """A log that swaps each payload for one its encoder refuses: a codec error past the store's checks."""

    def append_many(self, payloads: Iterable[IPLDKind]) -> list[Entry]:
        unencodable = {"op": "PUT", "key": "a", "value": (1, 2)}
        return super().append_many([unencodable for _ in payloads])  # type: ignore[misc]


def test_a_codec_error_from_the_log_becomes_an_invalid_operation(store):
    kv = KeyValue(UnencodableLog(ALICE, store, log_id="test-log", access=WRITERS))
    with pytest.raises(InvalidOperationError) as info:
        kv.put("a", 1)
    assert isinstance(info.value.__cause__, CodecError)
    assert len(kv.log) == 0


def test_update_is_a_frozen_value(log_factory):
    kv = KeyValue(log_factory())
    kv.put("a", 1)
    entry: Entry = next(iter(kv.log))
    update = Update((entry,), True)
    with pytest.raises(AttributeError):
        update.local = False  # type: ignore[misc]


def test_unknown_options_are_a_type_error(log_factory, store_type):
    with pytest.raises(TypeError):
        store_type(log_factory(), no_such_option=1)


def test_options_pass_through_store_types(log_factory):
    cls = STORE_TYPES["documents"]
    docs = cls(log_factory(), index_by="name", indexes=["city"])  # type: ignore[call-arg]
    assert isinstance(docs, Documents)
    assert docs.options.index_by == "name"
    with pytest.raises(TypeError, match="no_such"):
        Store.__init__(docs, docs.log, no_such=1)  # type: ignore[call-arg]


def test_join_reports_progress(log_factory):
    mine, theirs = KeyValue(log_factory(ALICE)), KeyValue(log_factory(BOB))
    with theirs.batch() as batch:
        for i in range(5):
            batch.put(str(i), i)
    seen: list[int] = []
    mine.join(theirs, progress=seen.append)
    assert len(mine) == 5
    assert seen
