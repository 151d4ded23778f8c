"""Convergence: replicas of every store type reach one state whatever order entries are joined in.

Three writers (ALICE, BOB, CAROL) write random operations, some of them in batches and some of them
garbage a permitted writer could sign, and gossip at random points (pairwise joins, so entries often
arrive after newer concurrent ones). After a final exchange in random orders, every replica must hold
the same state, equal to a fresh store built over the merged log (a full replay in log order) and to
an independent reference fold written here, and a checkpoint must restore the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import Entry, Identity, Log, MemoryBlockStore, encode
from stores import Batch, Counter, Documents, EventLog, KeyValue, Store
from tests.conftest import ALICE, BOB, CAROL, WRITERS

IDENTITIES = (ALICE, BOB, CAROL)
KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.binary(max_size=4),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["_id", "v", "w"]), inner, max_size=3)
    ),
    max_leaves=6,
)
JUNK = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"op": st.sampled_from(["PUT", "DEL", "INC", "ADD", "PUTALL", "NOPE"])},
        optional={"key": st.one_of(KEYS, VALUES), "value": VALUES, "docs": st.lists(VALUES, max_size=3)},
    ),
)
DOCS = st.builds(
    lambda key, v, extra: {"_id": key, "v": v, **extra},
    KEYS,
    st.sampled_from([1, 2, "x"]),
    st.dictionaries(st.just("w"), VALUES, max_size=1),
)


# ---------------------------------------------------------------------- reference folds (no sort keys)


def reference_keyvalue(entries: list[Entry]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for e in entries:
        p = e.payload
        if isinstance(p, dict) and type(p.get("key")) is str:
            if p.get("op") == "PUT" and "value" in p:
                state[p["key"]] = p["value"]  # type: ignore[index]
            elif p.get("op") == "DEL":
                state.pop(p["key"], None)  # type: ignore[arg-type]
    return state


def reference_counter(entries: list[Entry]) -> int:
    return sum(
        p["value"]  # type: ignore[misc]
        for e in entries
        if isinstance(p := e.payload, dict) and p.get("op") == "INC" and type(p.get("value")) is int
    )


def reference_eventlog(entries: list[Entry]) -> list[Any]:
    return [
        (e.cid, p["value"])
        for e in entries
        if isinstance(p := e.payload, dict) and p.get("op") == "ADD" and "value" in p
    ]


def reference_documents(entries: list[Entry]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for e in entries:
        p = e.payload
        if not isinstance(p, dict):
            continue
        op, key = p.get("op"), p.get("key")
        if op == "PUT" and type(key) is str and isinstance(v := p.get("value"), dict) and v.get("_id") == key:
            state[key] = v
        elif op == "DEL" and type(key) is str:
            state.pop(key, None)
        elif (
            op == "PUTALL"
            and isinstance(docs := p.get("docs"), list)
            and all(isinstance(d, dict) and type(d.get("_id")) is str for d in docs)
        ):
            for d in docs:
                state[d["_id"]] = d  # type: ignore[call-overload,index]
    return state


# ---------------------------------------------------------------------- store kinds


@dataclass
class Kind:
    make: Callable[..., Store]
    ops: st.SearchStrategy[tuple[Any, ...]]
    state: Callable[[Any], Any]
    reference: Callable[[list[Entry]], Any]
    kwargs: dict[str, Any] = field(default_factory=dict)


def do(store: Any, target: Any, op: tuple[Any, ...]) -> None:
    """Run ``op`` on ``store`` directly, or add it to ``target`` if that is a batch."""
    name, *args = op
    if name == "junk":
        store.log.append(args[0])  # bypasses validation, as a foreign writer could
    elif name == "delete" and isinstance(store, Documents) and args[0] not in store:
        store.log.append({"op": "DEL", "key": args[0]})  # a tombstone for a doc this replica lacks
    else:
        getattr(target, name)(*args)


KINDS = {
    "keyvalue": Kind(
        KeyValue,
        st.one_of(
            st.tuples(st.just("put"), KEYS, VALUES),
            st.tuples(st.just("delete"), KEYS),
            st.tuples(st.just("junk"), JUNK),
        ),
        lambda s: s.all(),
        reference_keyvalue,
    ),
    "counter": Kind(
        Counter,
        st.one_of(
            st.tuples(st.just("inc"), st.integers(-(2**64), 2**64 - 1)),
            st.tuples(st.just("dec"), st.integers(-5, 5)),
            st.tuples(st.just("junk"), JUNK),
        ),
        lambda s: s.value,
        reference_counter,
    ),
    "eventlog": Kind(
        EventLog,
        st.one_of(st.tuples(st.just("add"), VALUES), st.tuples(st.just("junk"), JUNK)),
        lambda s: [tuple(e) for e in s.all()],
        reference_eventlog,
    ),
    "documents": Kind(
        Documents,
        st.one_of(
            st.tuples(st.just("put"), DOCS),
            st.tuples(st.just("put_many"), st.lists(DOCS, max_size=4)),
            st.tuples(st.just("delete"), KEYS),
            st.tuples(st.just("junk"), JUNK),
        ),
        lambda s: s.all(),
        reference_documents,
        {"indexes": ["v", "w"]},
    ),
}


def full_state(kind: Kind, store: Store) -> tuple[Any, bytes]:
    """The store's observable state and its canonical checkpoint bytes (tombstones, indexes and all)."""
    extra: Any = None
    if isinstance(store, Documents):
        extra = {v: [d["_id"] for d in store.find(v=v)] for v in (1, 2, "x")}
    if isinstance(store, Counter):
        extra = store.totals
    return (kind.state(store), extra), encode(store.checkpoint())


def replicas(kind: Kind, shared: bool) -> list[Store]:
    common = MemoryBlockStore()
    return [
        kind.make(
            Log(i, common if shared else MemoryBlockStore(), log_id="conv", access=WRITERS), **kind.kwargs
        )
        for i in IDENTITIES
    ]


def check_converged(kind: Kind, stores: list[Store]) -> None:
    states = [full_state(kind, s) for s in stores]
    assert all(s == states[0] for s in states[1:])
    log = stores[0].log
    assert all(s.log.head_cids == log.head_cids for s in stores)
    replayed = kind.make(log, **kind.kwargs)
    assert full_state(kind, replayed) == states[0]
    restored = kind.make(log, checkpoint=stores[1].checkpoint(), **kind.kwargs)
    assert full_state(kind, restored) == states[0]
    assert kind.state(replayed) == kind.reference(log.values())
    # a fresh replica that joins everyone's heads at once agrees too
    fresh_log = Log(Identity.from_seed(b"f" * 32), MemoryBlockStore(), log_id="conv", access=WRITERS)
    fresh = kind.make(fresh_log, **kind.kwargs)
    for s in stores:
        fresh.join(s)
    assert full_state(kind, fresh) == states[0]


@pytest.mark.parametrize("name", sorted(KINDS))
@given(data=st.data())
def test_replicas_converge(name: str, data: st.DataObject) -> None:
    kind = KINDS[name]
    stores = replicas(kind, data.draw(st.booleans(), label="shared block store"))
    steps = data.draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("op"), st.integers(0, 2), kind.ops),
                st.tuples(st.just("batch"), st.integers(0, 2), st.lists(kind.ops, min_size=1, max_size=4)),
                st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
            ),
            max_size=40,
        ),
        label="steps",
    )
    step: Any
    for step in steps:
        if step[0] == "op":
            store = stores[step[1]]
            do(store, store, step[2])
        elif step[0] == "batch":
            store = stores[step[1]]
            with store.batch() as batch:
                for op in step[2]:
                    if op[0] == "junk" or (op[0] == "delete" and isinstance(store, Documents)):
                        continue  # batches hold validated operations only
                    do(store, batch, op)
        else:
            stores[step[2]].join(stores[step[1]])
    for _ in range(2):
        for r in data.draw(st.permutations(range(3)), label="exchange order"):
            for s in data.draw(st.permutations([i for i in range(3) if i != r])):
                stores[r].join(stores[s])
    check_converged(kind, stores)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_late_older_concurrent_entry(name: str) -> None:
    """ALICE's write is older (time 1) than BOB's concurrent one (time 3) but reaches CAROL last."""
    kind = KINDS[name]
    alice, bob, carol = replicas(kind, shared=False)
    first: Any = {
        "keyvalue": ("put", "k", "alice"),
        "counter": ("inc", 1),
        "eventlog": ("add", "alice"),
        "documents": ("put", {"_id": "k", "v": 1}),
    }[name]
    later: Any = {
        "keyvalue": [("put", "k", "x"), ("delete", "k"), ("put", "k", "bob")],
        "counter": [("inc", 2), ("dec", 3), ("inc", 4)],
        "eventlog": [("add", 1), ("add", 2), ("add", "bob")],
        "documents": [("put", {"_id": "k", "v": 2}), ("delete", "k"), ("put_many", [{"_id": "k", "v": "x"}])],
    }[name]
    do(alice, alice, first)
    for op in later:
        do(bob, bob, op)
    carol.join(bob)
    before = kind.state(carol)
    carol.join(alice)
    if name in ("keyvalue", "documents"):
        assert kind.state(carol) == before  # the older write lost on arrival
    alice.join(bob)
    bob.join(alice)
    check_converged(kind, [alice, bob, carol])
    if name == "keyvalue":
        assert carol.all() == {"k": "bob"}  # type: ignore[attr-defined]
    if name == "documents":
        assert carol.all() == {"k": {"_id": "k", "v": "x"}}  # type: ignore[attr-defined]


def test_batches_are_plain_batches() -> None:
    assert all(
        isinstance(k.make(Log(ALICE, MemoryBlockStore(), log_id="x")).batch(), Batch) for k in KINDS.values()
    )
