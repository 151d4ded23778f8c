"""``db.sql()`` sees every committed write while a DB-API connection holds an open transaction.

The view's file holds the transaction's uncommitted rows beside the entries applied since its last
commit; reads must see the latter and never the former. The regression tests are the smallest forms
found from outside; the property interleaves writes of every kind (SQL statements, rows set without
SQL, another writer's entries joined in), transactions opened, committed and rolled back, and reads,
and checks each read against the store (``db.rows``) and each transaction's own reads against it too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orbit import OrbitDB
from orbit.sql import Connection, OperationalError, TableDatabase, connect
from tests.conftest import ALICE, BOB

SCHEMA = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"
WRITERS = [ALICE.public_key, BOB.public_key]


def open_pair(root: Path) -> tuple[OrbitDB, OrbitDB, TableDatabase, TableDatabase]:
    alice, bob = OrbitDB(root / "a", identity=ALICE), OrbitDB(root / "b", identity=BOB)
    a = alice.open("t", type="table", schema=SCHEMA, write=WRITERS)
    b = bob.open("t", type="table", schema=SCHEMA, write=WRITERS)
    assert isinstance(a, TableDatabase)
    assert isinstance(b, TableDatabase)
    return alice, bob, a, b


def committed(db: TableDatabase) -> list[tuple[Any, ...]]:
    return sorted((key[0], row.get("v")) for key, row in db.rows("t"))


def test_sql_sees_an_insert_made_before_a_transaction_opened(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("t", type="table", schema=SCHEMA)
        assert isinstance(db, TableDatabase)
        db.execute("INSERT INTO t VALUES ('a', 1)")
        with connect(db) as conn:
            conn.execute("INSERT INTO t VALUES ('b', 2)")
            assert db.sql("SELECT k, v FROM t ORDER BY k") == [("a", 1)]
            assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [("a", 1), ("b", 2)]
        assert db.sql("SELECT k, v FROM t ORDER BY k") == [("a", 1), ("b", 2)]


def test_sql_sees_deletes_and_updates_while_a_transaction_is_open(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("t", type="table", schema=SCHEMA)
        assert isinstance(db, TableDatabase)
        db.execute("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)")
        db.execute("DELETE FROM t WHERE k = 'a'")
        db.execute("UPDATE t SET v = 20 WHERE k = 'b'")
        conn = connect(db)
        conn.execute("UPDATE t SET v = 200 WHERE k = 'b'")
        assert db.sql("SELECT k, v FROM t ORDER BY k") == [("b", 20), ("c", 3)]
        db.set("t", "d", {"v": 4})  # a write without SQL, during the transaction
        assert db.sql("SELECT k, v FROM t ORDER BY k") == [("b", 20), ("c", 3), ("d", 4)]
        assert conn.execute("SELECT v FROM t WHERE k = 'b'").fetchall() == [(200,)]
        conn.rollback()
        assert db.sql("SELECT k, v FROM t ORDER BY k") == [("b", 20), ("c", 3), ("d", 4)]
        conn.close()


def test_a_row_another_writer_changed_during_the_transaction_merges_per_cell(tmp_path: Path) -> None:
    schema = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, w INTEGER)"
    with OrbitDB(tmp_path / "a", identity=ALICE) as alice, OrbitDB(tmp_path / "b", identity=BOB) as bob:
        a = alice.open("t", type="table", schema=schema, write=WRITERS)
        b = bob.open("t", type="table", schema=schema, write=WRITERS)
        assert isinstance(a, TableDatabase)
        assert isinstance(b, TableDatabase)
        a.execute("INSERT INTO t VALUES ('r', 1, 1)")
        b.log.join(a.log)
        conn = connect(a)
        conn.execute("UPDATE t SET v = 10 WHERE k = 'r'")
        b.execute("UPDATE t SET w = 7 WHERE k = 'r'")
        a.log.join(b.log)
        assert a.sql("SELECT k, v, w FROM t") == [("r", 1, 7)]  # Bob's cell, not Alice's open one
        conn.commit()
        assert a.sql("SELECT k, v, w FROM t") == [("r", 10, 7)]
        assert a.get("t", "r") == {"k": "r", "v": 10, "w": 7}


def test_another_connection_reads_the_committed_view_beside_an_open_transaction(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("t", type="table", schema=SCHEMA)
        assert isinstance(db, TableDatabase)
        db.execute("INSERT INTO t VALUES ('a', 1)")
        writer, reader = connect(db), connect(db)
        writer.execute("INSERT INTO t VALUES ('b', 2)")
        assert reader.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [("a", 1)]
        assert reader.execute("WITH x AS (SELECT v FROM t) SELECT sum(v) FROM x").fetchall() == [(1,)]
        assert db.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
        with pytest.raises(OperationalError, match="another transaction is open"):
            reader.execute("INSERT INTO t VALUES ('c', 3)")  # one writer at a time
        with pytest.raises(OperationalError, match="another transaction is open"):
            db.execute("WITH x AS (SELECT 1) DELETE FROM t")
        assert not reader.in_transaction
        writer.commit()
        assert reader.execute("SELECT k FROM t ORDER BY k").fetchall() == [("a",), ("b",)]


def test_a_delete_that_changes_nothing_opens_no_transaction(tmp_path: Path) -> None:
    """Found by the property below: such a delete leaves no transaction, so a write made after it is
    committed, and the transaction opened later sees it."""
    alice, bob, a, _ = open_pair(tmp_path)
    try:
        conn = connect(a)
        conn.execute("DELETE FROM t WHERE k = 'b'")
        assert not conn.in_transaction
        a.execute("INSERT INTO t VALUES ('b', 0)")
        conn.execute("INSERT INTO t VALUES ('a', 0)")
        assert conn.in_transaction
        assert sorted(conn.execute("SELECT k, v FROM t").fetchall()) == [("a", 0), ("b", 0)]
        assert a.sql("SELECT k, v FROM t") == [("b", 0)]
        conn.close()
    finally:
        alice.close()
        bob.close()


KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.integers(0, 9)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("exec"), KEYS, VALUES),  # db.execute upsert (refused while a txn is open)
        st.tuples(st.just("delete"), KEYS, st.none()),  # db.execute DELETE
        st.tuples(st.just("set"), KEYS, VALUES),  # a row set without SQL
        st.tuples(st.just("remote"), KEYS, VALUES),  # Bob writes, Alice joins
        st.tuples(st.just("txn"), KEYS, VALUES),  # a statement in the DB-API transaction
        st.tuples(st.just("txn-delete"), KEYS, st.none()),
        st.tuples(st.just("commit"), st.none(), st.none()),
        st.tuples(st.just("rollback"), st.none(), st.none()),
        st.tuples(st.just("read"), st.none(), st.none()),
        st.tuples(st.just("other-read"), st.none(), st.none()),  # a second connection's query
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(STEPS)
@example(steps=[("txn-delete", "b", None), ("exec", "b", 0), ("txn", "a", 0), ("read", None, None)])
def test_reads_equal_the_store_whatever_transactions_are_open(steps: list[tuple[str, Any, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        alice, bob, a, b = open_pair(Path(d))
        try:
            conn: Connection = connect(a)
            other: Connection = connect(a)
            mine: dict[str, int | None] = {}  # what the open transaction wrote (None: deleted)
            for kind, key, value in steps:
                if kind == "exec" and not conn.in_transaction:
                    a.execute(
                        "INSERT INTO t VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                        (key, value),
                    )
                elif kind == "delete" and not conn.in_transaction:
                    a.execute("DELETE FROM t WHERE k = ?", (key,))
                elif kind == "set":
                    a.set("t", key, {"v": value})
                elif kind == "remote":
                    b.log.join(a.log)
                    b.set("t", key, {"v": value})
                    a.log.join(b.log)
                elif kind == "txn":
                    conn.execute(
                        "INSERT INTO t VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                        (key, value),
                    )
                    if conn.in_transaction:  # a statement that changes nothing opens none
                        mine[key] = value
                elif kind == "txn-delete":
                    conn.execute("DELETE FROM t WHERE k = ?", (key,))
                    if conn.in_transaction:  # deleting an absent row opens no transaction
                        mine[key] = None
                elif kind == "commit":
                    conn.commit()
                    mine.clear()
                elif kind == "rollback":
                    conn.rollback()
                    mine.clear()
                assert sorted(a.sql("SELECT k, v FROM t")) == committed(a), (kind, key, value)
                if kind == "other-read":
                    assert sorted(other.execute("SELECT k, v FROM t").fetchall()) == committed(a)
                if kind == "read" and conn.in_transaction:
                    seen = dict(conn.execute("SELECT k, v FROM t").fetchall())
                    for k, v in mine.items():
                        assert seen.get(k) == v if v is not None else k not in seen
            conn.commit()
            conn.close()
            assert sorted(a.sql("SELECT k, v FROM t")) == committed(a)
        finally:
            alice.close()
            bob.close()
