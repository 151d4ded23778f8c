"""The table store's merge rule: replicas converge whatever order entries are joined in.

Three writers set cells and delete rows (some in multi-change entries, some garbage a permitted writer
could sign) and gossip at random points. Every replica must then hold the same state, equal to a fresh
replay, to a checkpoint restore, to a fresh replica joining everyone, and to a reference fold written
here: apply every change in log order, a delete clearing the row, a set filling cells.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import Entry, Identity, Log, MemoryBlockStore, encode
from stores.table import Column, Schema, Table, TableSchema
from tests.conftest import ALICE, BOB, CAROL, WRITERS

SCHEMA = Schema(
    (
        TableSchema(
            "t1",
            (
                Column("k", "TEXT"),
                Column("a", "INTEGER"),
                Column("b", "TEXT", required=True, notnull=True),
                Column("c", "ANY"),
            ),
            ("k",),
        ),
        TableSchema("t2", (Column("x", "INTEGER"), Column("y", "BLOB"), Column("v", "REAL")), ("x", "y")),
    )
)

INTS = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
ANY = st.one_of(st.none(), INTS, FLOATS, st.text(max_size=3), st.binary(max_size=3))
T1_KEY = st.tuples(st.sampled_from(["a", "b", "c"]))
T2_KEY = st.tuples(st.integers(0, 2), st.sampled_from([b"", b"y"]))
T1_CELLS = st.fixed_dictionaries({}, optional={"a": st.none() | INTS, "b": st.text(max_size=3), "c": ANY})
T2_CELLS = st.fixed_dictionaries({}, optional={"v": st.none() | FLOATS})
CHANGES = st.one_of(
    st.tuples(st.just("t1"), T1_KEY, T1_CELLS),
    st.tuples(st.just("t1"), T1_KEY, st.none()),
    st.tuples(st.just("t2"), T2_KEY, T2_CELLS),
    st.tuples(st.just("t2"), T2_KEY, st.none()),
)
JUNK = st.one_of(
    ANY,
    st.fixed_dictionaries({"op": st.sampled_from(["ROWS", "PUT"]), "changes": st.just([])}),
    st.builds(
        lambda bad: {"op": "ROWS", "changes": [["t1", ["a"], {"a": 1}], bad]},
        st.one_of(
            st.just(["t1", ["a"], {"b": None}]),  # NULL in a NOT NULL column
            st.just(["t1", ["a"], {"a": "text"}]),  # wrong type
            st.just(["t1", ["a"], {"k": "x"}]),  # a key column as a cell
            st.just(["t1", ["a", "b"], {}]),  # key of the wrong length
            st.just(["t2", [1, "not bytes"], {}]),
            st.just(["t2", [1, b""], {"v": 1}]),  # int in a REAL column
            st.just(["t3", ["a"], {}]),
            st.just(["t1", [None], {}]),
            st.just(["t1", ["a"], {"a": 2**63}]),
            st.just(["t1", ["a"]]),
        ),
    ),
)


def reference(entries: list[Entry]) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every change in log order: a delete clears the row, a set fills cells and makes it live."""
    state: dict[str, dict[Any, dict[str, Any] | None]] = {"t1": {}, "t2": {}}
    for entry in entries:
        p: Any = entry.payload
        if not (isinstance(p, dict) and p.get("op") == "ROWS" and isinstance(p.get("changes"), list)):
            continue
        if not applies(p):  # validity is the store's own rule (tested separately)
            continue
        for table, key, cells in p["changes"]:
            rows = state[table]
            if cells is None:
                rows[tuple(key)] = None
            else:
                row = rows.get(tuple(key)) or {}
                row.update(cells)
                rows[tuple(key)] = row
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for spec in SCHEMA.tables:
        out[spec.name] = {}
        for key, found in state[spec.name].items():
            if found is None or any(c.required and c.name not in found for c in spec.columns[1:]):
                continue
            values = dict(zip(spec.primary_key, key, strict=True))
            out[spec.name][key] = {c.name: values.get(c.name, found.get(c.name)) for c in spec.columns}
    return out


def applies(payload: Any) -> bool:
    """Whether a table store applies an entry carrying ``payload`` (its update names only applied ones)."""
    probe = Table(Log(ALICE, MemoryBlockStore(), log_id="probe"), schema=SCHEMA)
    applied: list[Entry] = []
    probe.subscribe(lambda update: applied.extend(update.entries))
    probe.log.append(payload)
    return bool(applied)


def snapshot(table: Table) -> tuple[Any, Any]:
    """The visible rows, and the whole merge state (tombstones and change keys) in a canonical order.

    The merge state is read from the store's checkpoint, with each change key resolved to the entry's
    sort key (the checkpoint numbers entries in the order rows were stored in, which joins change).
    """
    state: Any = table.checkpoint()["state"]  # type: ignore[index, call-overload]
    entries = [tuple(e) for e in state["entries"]]

    def at(ref: list[int] | None) -> tuple[Any, int] | None:
        return None if ref is None else (entries[ref[0]], ref[1])

    internal = sorted(
        (name, encode(key), at(dead), at(alive), {c: (at(cell[:2]), cell[2]) for c, cell in cells.items()})
        for name, records in state["tables"].items()
        for key, dead, alive, cells in records
    )
    return table.all(), internal


def make(identity: Identity, blocks: MemoryBlockStore) -> Table:
    return Table(Log(identity, blocks, log_id="tables", access=WRITERS), schema=SCHEMA)


@given(data=st.data())
def test_table_replicas_converge(data: st.DataObject) -> None:
    shared = data.draw(st.booleans(), label="shared block store")
    common = MemoryBlockStore()
    replicas = [make(i, common if shared else MemoryBlockStore()) for i in (ALICE, BOB, CAROL)]
    steps = data.draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("write"), st.integers(0, 2), st.lists(CHANGES, min_size=1, max_size=4)),
                st.tuples(st.just("junk"), st.integers(0, 2), JUNK),
                st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
            ),
            max_size=30,
        ),
        label="steps",
    )
    for kind, who, what in steps:
        if kind == "write":
            replicas[who].write(what)
        elif kind == "junk":
            replicas[who].log.append(what)
        else:
            replicas[what].join(replicas[who])
    for _ in range(2):
        for r in data.draw(st.permutations(range(3)), label="exchange order"):
            for s in range(3):
                if s != r:
                    replicas[r].join(replicas[s])
    states = [snapshot(r) for r in replicas]
    assert all(s == states[0] for s in states[1:])
    log = replicas[0].log
    assert snapshot(Table(log, schema=SCHEMA)) == states[0]
    assert snapshot(Table(log, schema=SCHEMA, checkpoint=replicas[2].checkpoint())) == states[0]
    assert states[0][0] == reference(log.values())
    fresh = make(Identity.from_seed(b"f" * 32), MemoryBlockStore())
    for replica in replicas:
        fresh.join(replica)
    assert snapshot(fresh) == states[0]
    assert sum(r.count(t.name) for t in SCHEMA.tables for r in replicas[:1]) == sum(
        len(rows) for rows in states[0][0].values()
    )
