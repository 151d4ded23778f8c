"""Same state, same root: replicas of every store type that join the same writes in different orders
agree on their state root, kept incrementally, and it equals the root rebuilt from the index."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import Log, MemoryBlockStore
from orbit.state import Commit, MemoryNodes, Snapshot, StateIndex, StateTree
from orbit.state.views import state_items
from stores.base import Store
from stores.counter import Counter
from stores.documents import Documents
from stores.eventlog import EventLog
from stores.keyvalue import KeyValue
from stores.table import Column, Schema, Table, TableSchema
from tests.conftest import ALICE, BOB, CAROL, WRITERS

IDENTITIES = (ALICE, BOB, CAROL)
small_keys = st.sampled_from(["a", "b", "c", "d", "e"])
small_values = st.one_of(st.integers(-3, 3), st.text(max_size=40), st.none())
ops = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["put", "del"]), small_keys, small_values), max_size=25
)
orders = st.permutations([0, 1, 2])
SCHEMA = Schema(
    (TableSchema("t", (Column("id", "TEXT"), Column("v", "ANY"), Column("w", "INTEGER")), ("id",)),)
)


def table(log: Log) -> Table:
    return Table(log, schema=SCHEMA)


def indexed(log: Log) -> Documents:
    return Documents(log, indexes=["v"])


def write(store: Store, op: str, key: str, value: Any) -> None:
    if isinstance(store, KeyValue):
        store.put(key, value) if op == "put" else store.delete(key)
    elif isinstance(store, Documents):
        if op == "put":
            store.put({"_id": key, "v": value})
        elif key in store:  # deleting an absent document is refused
            store.delete(key)
    elif isinstance(store, Counter):
        store.inc(value if type(value) is int else len(key))
    elif isinstance(store, EventLog):
        store.add(value)
    elif isinstance(store, Table):  # cell by cell: two writers' sets of one row merge
        if op == "put":
            store.set("t", key, {"v": value} if type(value) is not int else {"w": value})
        else:
            store.delete("t", key)


@given(
    st.sampled_from([KeyValue, Documents, Counter, EventLog, table, indexed]),
    ops,
    orders,
    orders,
    st.booleans(),
)
def test_replicas_joining_in_any_order_agree_on_the_root(kind, script, first, second, early):
    blocks = MemoryBlockStore()
    writers = [kind(Log(identity, blocks, log_id="state", access=WRITERS)) for identity in IDENTITIES]
    for who, op, key, value in script:
        write(writers[who], op, key, value)
    roots = []
    for order in (first, second):
        replica = kind(Log(ALICE, MemoryBlockStore(), log_id="state", access=WRITERS))
        index = StateIndex(replica)
        replica.subscribe(lambda update, index=index: index.apply(update.entries))  # as a Database does
        if early:
            index.root()  # built now: every join below is applied incrementally
            index.index_roots()
        for n in order:
            replica.join(writers[n])
            if early:
                index.root()
        root = index.root()
        assert root == StateTree.build(state_items(replica)).root()  # incremental == rebuilt
        assert index.index_roots() == StateIndex(replica).index_roots()  # documents indexes too
        roots.append((root, index.index_roots()))
    assert roots[0] == roots[1]


@given(ops, orders)
def test_a_snapshot_reads_what_a_full_replay_holds(script, order):
    blocks = MemoryBlockStore()
    writers = [KeyValue(Log(identity, blocks, log_id="state", access=WRITERS)) for identity in IDENTITIES]
    for who, op, key, value in script:
        write(writers[who], op, key, value)
    replica = KeyValue(Log(ALICE, MemoryBlockStore(), log_id="state", access=WRITERS))
    for n in order:
        replica.join(writers[n])  # the full, verified replay
    nodes = MemoryNodes()
    index = StateIndex(replica, nodes)
    commit = Commit.create(ALICE, "state", replica.log.head_cids, index.root(), len(replica.log))
    snapshot = Snapshot(nodes, address="state", writers=[ALICE.public_key])
    snapshot.accept([commit.block])
    for key in ["a", "b", "c", "d", "e"]:
        assert snapshot.get(key) == replica.get(key)
    assert snapshot.bootstrap() == len(replica)
    assert snapshot.items() == list(state_items(replica))
