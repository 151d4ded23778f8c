"""sqlite3 is the oracle, and replicas that write with SQL converge.

Oracle: one writer runs a random sequence of DML statements (INSERT, INSERT OR REPLACE, upserts,
UPDATE with expressions and WHERE, key changes, DELETE … WHERE, over two tables) on a table database
and on a plain ``sqlite3`` database with the same schema. A statement fails on both or on neither
(a failure leaves no entry), and the tables read through orbit equal the plain database's, as do the
tables of a view rebuilt from the log.

Convergence: three writers run random statements and sync in random orders; every replica's query
results are equal, equal to a fresh replica that joins everyone, and the view equals the store.

Kept effects: a committed statement's effect stays in the view rather than being undone and redone
from the store; after every step (statements, DB-API transactions committed or rolled back with
another writer's entries joined in the middle, provenance read inside them) the view's rows and its
``orbit_provenance`` equal what the store derives.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orbit import OrbitDB
from orbit.sql import SqlError, TableDatabase, connect, parse_schema
from orbit.sql.materialize import key_text
from stores.table import Table
from tests.conftest import ALICE, BOB, CAROL

DDL = """
CREATE TABLE t1 (k TEXT PRIMARY KEY, a INTEGER NOT NULL DEFAULT 0, b TEXT,
                 c REAL CHECK (c IS NULL OR c >= 0));
CREATE TABLE t2 (x INTEGER, y TEXT, v ANY, PRIMARY KEY (x, y));
CREATE INDEX t1_b ON t1 (b);
"""
KEYS = st.sampled_from(["a", "b", "c", "d"])
SMALL = st.integers(-3, 3)
TEXT = st.sampled_from(["p", "q", "r", None])
ANY = st.one_of(st.none(), SMALL, st.sampled_from(["s", "t"]), st.sampled_from([b"\x00", b"z"]), st.just(0.5))

STATEMENTS = st.one_of(
    st.tuples(st.just("INSERT INTO t1 (k, a, b) VALUES (?, ?, ?)"), st.tuples(KEYS, SMALL, TEXT)),
    st.tuples(
        st.just("INSERT OR REPLACE INTO t1 (k, b, c) VALUES (?, ?, ?)"), st.tuples(KEYS, TEXT, st.just(1.5))
    ),
    st.tuples(
        st.just("INSERT INTO t1 (k, a) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET a = a + excluded.a"),
        st.tuples(KEYS, SMALL),
    ),
    st.tuples(st.just("INSERT OR IGNORE INTO t1 (k, b) VALUES (?, ?)"), st.tuples(KEYS, TEXT)),
    st.tuples(
        st.just("UPDATE t1 SET a = a * 2 + ?, b = coalesce(b, 'n') WHERE k <= ?"), st.tuples(SMALL, KEYS)
    ),
    st.tuples(st.just("UPDATE t1 SET c = abs(a) * 0.25 WHERE b IS ?"), st.tuples(TEXT)),
    st.tuples(st.just("UPDATE t1 SET c = -1 WHERE a = ?"), st.tuples(SMALL)),  # fails the CHECK if it matches
    st.tuples(
        st.just("UPDATE t1 SET k = k || 'x' WHERE a > ?"), st.tuples(SMALL)
    ),  # key change (may conflict)
    st.tuples(st.just("UPDATE OR REPLACE t1 SET k = ? WHERE k = ?"), st.tuples(KEYS, KEYS)),
    st.tuples(st.just("DELETE FROM t1 WHERE a < ? OR b = ?"), st.tuples(SMALL, TEXT)),
    st.tuples(st.just("INSERT INTO t1 (k, a) VALUES (?, NULL)"), st.tuples(KEYS)),  # NOT NULL fails
    st.tuples(st.just("INSERT INTO t2 VALUES (?, ?, ?)"), st.tuples(SMALL, KEYS, ANY)),
    st.tuples(st.just("INSERT OR REPLACE INTO t2 VALUES (?, ?, ?)"), st.tuples(SMALL, KEYS, ANY)),
    st.tuples(st.just("UPDATE t2 SET v = ? WHERE x >= ?"), st.tuples(ANY, SMALL)),
    st.tuples(st.just("UPDATE t2 SET x = x + 1 WHERE y = ?"), st.tuples(KEYS)),
    st.tuples(st.just("DELETE FROM t2 WHERE y = ? AND x < ?"), st.tuples(KEYS, SMALL)),
    st.tuples(
        st.just("INSERT INTO t2 SELECT a, k, b FROM t1 WHERE true ON CONFLICT DO UPDATE SET v = excluded.v"),
        st.just(()),
    ),
)
TABLES = ("SELECT * FROM t1 ORDER BY k", "SELECT * FROM t2 ORDER BY x, y")


def dump(run: Any) -> list[list[tuple[Any, ...]]]:
    return [run(q) for q in TABLES]


def store_rows(table: Table) -> list[list[tuple[Any, ...]]]:
    return [
        sorted(
            (tuple(r.values()) for _, r in table.rows(name)),
            key=lambda r: (r[0], r[1]) if name == "t2" else r,
        )
        for name in ("t1", "t2")
    ]


@settings(max_examples=40)
@given(statements=st.lists(STATEMENTS, max_size=25))
def test_sqlite_is_the_oracle(statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    oracle = sqlite3.connect(":memory:", isolation_level=None)
    for statement in parse_schema(DDL).sql:
        oracle.execute(statement)
    with tempfile.TemporaryDirectory() as d, OrbitDB(d, identity=ALICE) as o:
        db = o.open("oracle", type="table", schema=DDL)
        assert isinstance(db, TableDatabase)
        for sql, params in statements:
            try:
                oracle.execute(sql, params)
                expected_error = None
            except sqlite3.Error as e:
                expected_error = e
            entries = len(db.log)
            failed: SqlError | None = None
            try:
                db.execute(sql, params)
            except SqlError as e:
                failed = e
            assert (failed is None) == (expected_error is None), (sql, params, failed, expected_error)
            if failed is not None:
                assert len(db.log) == entries
            assert dump(db.sql) == dump(lambda q: oracle.execute(q).fetchall()), (sql, params)
        assert store_rows(Table(db.log, schema=db.schema)) == dump(db.sql)


def replicas(directory: Path) -> tuple[list[OrbitDB], list[TableDatabase]]:
    orbits = [OrbitDB(directory / who.did[-6:], identity=who) for who in (ALICE, BOB, CAROL)]
    writers = [i.public_key for i in (ALICE, BOB, CAROL)]
    dbs = [o.open("conv", type="table", schema=DDL, write=writers) for o in orbits]
    return orbits, dbs


@settings(max_examples=15)
@given(data=st.data())
def test_three_sql_writers_converge(data: st.DataObject) -> None:
    steps = data.draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("sql"), st.integers(0, 2), STATEMENTS),
                st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
            ),
            max_size=25,
        ),
        label="steps",
    )
    with tempfile.TemporaryDirectory() as d:
        orbits, dbs = replicas(Path(d))
        try:
            for kind, who, what in steps:
                if kind == "sql":
                    with contextlib.suppress(SqlError):
                        dbs[who].execute(*what)
                elif who != what:
                    dbs[what].sync_from(dbs[who])
            for r in data.draw(st.permutations(range(3)), label="final exchange"):
                for s in range(3):
                    if s != r:
                        dbs[r].sync_from(dbs[s])
            for r in range(3):
                for s in range(3):
                    if s != r:
                        dbs[r].sync_from(dbs[s])
            results = [dump(db.sql) for db in dbs]
            assert results[0] == results[1] == results[2]
            for db in dbs:
                assert store_rows(db.store) == results[0]
            with OrbitDB(Path(d) / "fresh", identity=ALICE) as fresh_orbit:
                writers = [i.public_key for i in (ALICE, BOB, CAROL)]
                fresh: Any = fresh_orbit.open("conv", type="table", schema=DDL, write=writers)
                for db in dbs:
                    fresh.sync_from(db)
                assert dump(fresh.sql) == results[0]
            query = "SELECT * FROM orbit_provenance ORDER BY 1, 2, 3"
            provenance = [db.sql(query) for db in dbs]
            assert provenance[0] == provenance[1] == provenance[2]
        finally:
            for o in orbits:
                o.close()


def provenance_from_store(db: TableDatabase) -> list[tuple[Any, ...]]:
    """``orbit_provenance``'s lines as the store derives them."""
    expected = []
    for spec in db.schema.tables:
        for key, _ in db.store.rows(spec.name):
            found = db.provenance(spec.name, key)
            assert found is not None
            for column, at in found.items():
                line = (spec.name, key_text(key), column, at["writer"], at["entry"].encode(), at["clock"])
                expected.append(line)
    return sorted(expected)


def view_equals_store(db: TableDatabase) -> None:
    """The view's rows and its provenance are exactly what the store derives from the log."""
    assert store_rows(db.store) == dump(db.sql)
    assert sorted(db.sql("SELECT * FROM orbit_provenance")) == provenance_from_store(db)


STEPS = st.one_of(
    st.tuples(st.just("execute"), st.integers(0, 1), STATEMENTS),
    st.tuples(st.just("sync"), st.integers(0, 1), st.just(None)),
    st.tuples(
        st.just("transaction"),
        st.tuples(
            st.lists(STATEMENTS, max_size=2),  # run first, each its own entry (so nothing reads between)
            st.lists(STATEMENTS, min_size=1, max_size=4),  # run through one DB-API connection
            st.integers(0, 4),  # when the other replica's entries are joined (4: not at all)
            st.booleans(),  # whether statements in the transaction read orbit_provenance
            st.sampled_from(["commit", "rollback"]),
        ),
        st.just(None),
    ),
)


@settings(max_examples=40)
@given(steps=st.lists(STEPS, max_size=14))
def test_kept_statement_effects_equal_the_merged_state(steps: list[tuple[str, Any, Any]]) -> None:
    """A committed statement's effect stays in the view (it is not undone and redone).

    It must equal the store's merge, also when other writers' entries arrive before, during and after
    a transaction, when a transaction is rolled back, and when provenance is read inside one (which
    shows the provenance as of the transaction's start).
    """
    with tempfile.TemporaryDirectory() as d:
        orbits = [OrbitDB(Path(d) / who.did[-6:], identity=who) for who in (ALICE, BOB)]
        writers = [i.public_key for i in (ALICE, BOB)]
        dbs: list[Any] = [o.open("kept", type="table", schema=DDL, write=writers) for o in orbits]
        a, b = dbs
        try:
            for kind, who, what in steps:
                if kind == "execute":
                    with contextlib.suppress(SqlError):
                        dbs[who].execute(*what)
                elif kind == "sync":
                    dbs[who].sync_from(dbs[1 - who])
                else:
                    prelude, statements, join_at, provenance, end = who
                    for sql, params in prelude:
                        with contextlib.suppress(SqlError):
                            a.execute(sql, params)
                    conn = connect(a)
                    expected: list[tuple[Any, ...]] = []
                    for i, (sql, params) in enumerate(statements):
                        if i == join_at:
                            a.sync_from(b)
                        if not conn.in_transaction:
                            expected = provenance_from_store(a)
                        with contextlib.suppress(SqlError):
                            conn.execute(sql, params)
                        if provenance and conn.in_transaction:
                            seen = conn.execute("SELECT * FROM orbit_provenance").fetchall()
                            assert sorted(seen) == expected
                    if join_at == len(statements):
                        a.sync_from(b)
                    if end == "commit":
                        conn.commit()
                    else:
                        conn.rollback()
                    conn.close()
                for db in dbs:
                    view_equals_store(db)
        finally:
            for o in orbits:
                o.close()
