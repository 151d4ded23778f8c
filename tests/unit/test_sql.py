"""The table store's SQL front: schema rules, reads, writes, provenance, the view file, DB-API."""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orbit.sql
from ipfs_log import Identity
from orbit import DatabaseError, OrbitDB
from orbit.registry import Registry, RegistryEntry
from orbit.sql import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SqlError,
    TableDatabase,
    connect,
    format_rows,
    parse_schema,
    run_sql_command,
)
from orbit.sql.capture import WriteCapture
from orbit.sql.viewfile import ViewFile
from stores.errors import SchemaError
from tests.conftest import ALICE, BOB

SCHEMA = """
CREATE TABLE todos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT, done INTEGER NOT NULL DEFAULT 0
                    CHECK (done IN (0, 1)), n REAL, data BLOB, extra ANY);
CREATE TABLE tags (todo TEXT, tag TEXT, PRIMARY KEY (todo, tag)) WITHOUT ROWID;
CREATE INDEX todos_owner ON todos (owner);
"""
WRITERS = [ALICE.public_key, BOB.public_key]


def open_table(orbit: OrbitDB, schema: str = SCHEMA, **kw: Any) -> TableDatabase:
    db = orbit.open("todo", type="table", schema=schema, write=WRITERS, **kw)
    assert isinstance(db, TableDatabase)
    return db


@pytest.fixture
def alice(tmp_path: Path):
    with OrbitDB(tmp_path / "alice", identity=ALICE) as o:
        yield o


@pytest.fixture
def bob(tmp_path: Path):
    with OrbitDB(tmp_path / "bob", identity=BOB) as o:
        yield o


def payload(db: TableDatabase, cid: Any) -> Any:
    assert cid is not None
    return db.log.get(cid).payload


def view_matches_store(db: TableDatabase) -> None:
    """The SQLite view holds exactly the store's merged rows."""
    for spec in db.schema.tables:
        names = ", ".join(f'"{c.name}"' for c in spec.columns)
        in_view = sorted(db.sql(f'SELECT {names} FROM "{spec.name}"'), key=repr)
        in_store = sorted((tuple(r.values()) for _, r in db.rows(spec.name)), key=repr)
        assert in_view == in_store, spec.name


# ---------------------------------------------------------------------- schema rules


@pytest.mark.parametrize(
    ("ddl", "constraint"),
    [
        ("CREATE TABLE t (id TEXT PRIMARY KEY, email TEXT UNIQUE)", "UNIQUE"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, a INT, b INT, UNIQUE (a, b))", "UNIQUE"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, a INT); CREATE UNIQUE INDEX u ON t (a)", "UNIQUE"),
        (
            "CREATE TABLE p (id TEXT PRIMARY KEY); CREATE TABLE t (id TEXT PRIMARY KEY, p TEXT REFERENCES p)",
            "FOREIGN KEY",
        ),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, p TEXT, FOREIGN KEY (p) REFERENCES t (id))", "FOREIGN KEY"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, lo INT, hi INT, CHECK (lo <= hi))", "CHECK"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, lo INT CHECK (lo <= hi), hi INT)", "CHECK"),
        ("CREATE TABLE t (a INT, b TEXT)", "PRIMARY KEY"),
        ("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT)", "AUTOINCREMENT"),
        ("CREATE TABLE t (id REAL PRIMARY KEY)", "PRIMARY KEY"),
    ],
)
def test_refused_schemas_name_the_constraint(ddl: str, constraint: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(ddl)
    assert info.value.constraint == constraint
    assert constraint in str(info.value)


@pytest.mark.parametrize(
    ("ddl", "words"),
    [
        ("CREATE TABLE t (id TEXT PRIMARY KEY, v VARCHAR(10))", "STRICT"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, v)", "STRICT"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY); CREATE VIEW v AS SELECT * FROM t", "CREATE VIEW"),
        (
            "CREATE TABLE t (id TEXT PRIMARY KEY); CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END",
            "TRIGGER",
        ),
        ("CREATE TABLE t (id TEXT PRIMARY KEY, v INT GENERATED ALWAYS AS (1))", "generated"),
        ("CREATE TABLE orbit_x (id TEXT PRIMARY KEY)", "reserved"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY COLLATE NOCASE)", "COLLATE"),
        ("CREATE TABLE t (id TEXT PRIMARY KEY,", "incomplete"),
        ("ATTACH 'x.db' AS x", "only CREATE"),
        ("", "at least one"),
    ],
)
def test_other_refusals_say_why(ddl: str, words: str) -> None:
    with pytest.raises(SchemaError, match=words):
        parse_schema(ddl)


def test_accepted_schema_is_canonical_and_strict() -> None:
    schema = parse_schema(SCHEMA)
    assert schema.sql[0].endswith(" STRICT")
    assert schema.sql[1].endswith("WITHOUT ROWID, STRICT")
    assert schema.sql[2].startswith("CREATE INDEX todos_owner")
    assert parse_schema(list(schema.sql)) == schema  # canonical text is a fixed point
    todos = schema.by_name["todos"]
    assert todos.primary_key == ("id",)
    columns = {c.name: c for c in todos.columns}
    assert columns["done"].check
    assert columns["done"].required
    assert columns["owner"].required
    assert not columns["title"].required
    assert schema.by_name["tags"].primary_key == ("todo", "tag")
    # a single-column CHECK that NULL fails makes the column required
    strict = parse_schema("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT CHECK (v IS NOT NULL))")
    assert strict.tables[0].columns[1].required


def test_schema_is_part_of_the_address(alice: OrbitDB, bob: OrbitDB) -> None:
    a = open_table(alice)
    other = bob.open("todo", type="table", schema="CREATE TABLE x (k TEXT PRIMARY KEY)", write=WRITERS)
    assert a.address != other.address
    with pytest.raises(DatabaseError, match="another table database"):  # names are unique in a directory
        alice.open("todo", type="table", schema="CREATE TABLE x (k TEXT PRIMARY KEY)", write=WRITERS)
    assert alice.open(a.address) is a
    with pytest.raises(SchemaError):
        alice.open("todo2", type="table")


# ---------------------------------------------------------------------- writes and reads


def test_execute_appends_one_entry_per_statement(alice: OrbitDB) -> None:
    db = open_table(alice)
    cur = db.execute(
        "INSERT INTO todos (id, owner, title) VALUES (?, ?, ?), (?, ?, ?)",
        ("a", "ann", "milk", "b", "bob", "tea"),
    )
    assert cur.rowcount == 2
    assert cur.entry is not None
    assert len(db.log) == 1
    assert payload(db, cur.entry) == {
        "op": "ROWS",
        "changes": [
            [
                "todos",
                ["a"],
                {"owner": "ann", "title": "milk", "done": 0, "n": None, "data": None, "extra": None},
            ],
            [
                "todos",
                ["b"],
                {"owner": "bob", "title": "tea", "done": 0, "n": None, "data": None, "extra": None},
            ],
        ],
    }
    cur = db.execute("UPDATE todos SET done = 1 WHERE owner = ?", ("ann",))
    assert payload(db, cur.entry) == {"op": "ROWS", "changes": [["todos", ["a"], {"done": 1}]]}
    assert db.sql("SELECT id, done FROM todos ORDER BY id") == [("a", 1), ("b", 0)]
    assert db.execute("UPDATE todos SET done = 1 WHERE owner = 'nobody'").entry is None
    assert db.execute("SELECT count(*) FROM todos").fetchall() == [(2,)]
    cur = db.execute("DELETE FROM todos WHERE id = ? RETURNING title", ("b",))
    assert cur.fetchall() == [("tea",)]
    assert payload(db, cur.entry) == {"op": "ROWS", "changes": [["todos", ["b"], None]]}
    assert len(db.log) == 3
    assert (db.get("todos", "a") or {})["done"] == 1
    assert db.get("todos", "b") is None
    view_matches_store(db)


def test_upserts_and_replace(alice: OrbitDB) -> None:
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner, title) VALUES ('a', 'ann', 'x')")
    cur = db.execute(
        "INSERT INTO todos (id, owner, title) VALUES ('a', 'ann', 'y')"
        " ON CONFLICT (id) DO UPDATE SET title = excluded.title"
    )
    assert payload(db, cur.entry)["changes"] == [["todos", ["a"], {"title": "y"}]]
    cur = db.execute("INSERT OR REPLACE INTO todos (id, owner) VALUES ('a', 'zed')")
    changes = payload(db, cur.entry)["changes"]
    assert changes[0] == ["todos", ["a"], None]  # a replace is a delete, then a full row
    assert changes[1][2]["owner"] == "zed"
    assert changes[1][2]["title"] is None
    cur = db.execute("UPDATE todos SET id = 'b' WHERE id = 'a'")  # a key change: delete + insert
    assert [c[2] is None for c in payload(db, cur.entry)["changes"]] == [True, False]
    assert db.sql("SELECT id, owner FROM todos") == [("b", "zed")]
    view_matches_store(db)


def test_failing_statements_leave_no_entry(alice: OrbitDB) -> None:
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    for statement, error in [
        ("INSERT INTO todos (id, owner) VALUES ('a', 'again')", IntegrityError),
        ("INSERT INTO todos (id) VALUES ('b')", IntegrityError),  # NOT NULL
        ("UPDATE todos SET done = 2", IntegrityError),  # CHECK
        ("INSERT INTO todos (id, owner, done) VALUES ('c', 'x', 'yes')", IntegrityError),  # STRICT type
        ("INSERT INTO nope VALUES (1)", OperationalError),
        ("INSERT INTO todos VALUES (", OperationalError),
        ("INSERT INTO todos (id, owner, n) VALUES ('d', 'x', 1e999)", DataError),  # Inf: not in the log
        ("CREATE TABLE x (a)", ProgrammingError),
        ("DROP TABLE todos", ProgrammingError),
        ("PRAGMA query_only = 1", ProgrammingError),
        ("ATTACH ':memory:' AS other", ProgrammingError),
        ("BEGIN", SqlError),
        ("COMMIT", ProgrammingError),
        ("SAVEPOINT x", ProgrammingError),
        ("DELETE FROM orbit_rows", ProgrammingError),
        ("UPDATE orbit_entries SET clock = 0", ProgrammingError),
        ("INSERT INTO orbit_meta VALUES ('x', 1)", ProgrammingError),
        ("SELECT 1; SELECT 2", ProgrammingError),
    ]:
        with pytest.raises(error):
            db.execute(statement)
        assert len(db.log) == 1, statement
    with pytest.raises(ProgrammingError):
        db.execute("INSERT INTO todos (id, owner) VALUES (?, ?)", ("only one",))
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos") == [("a",)]
    view_matches_store(db)


def test_sql_cannot_modify_the_view(alice: OrbitDB) -> None:
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    for statement in [
        "INSERT INTO todos (id, owner) VALUES ('b', 'x')",
        "UPDATE todos SET owner = 'mallory'",
        "DELETE FROM todos",
        "DROP TABLE todos",
        "DELETE FROM orbit_rows",
        "UPDATE orbit_entries SET clock = 0",
        "CREATE TABLE x (a)",
        "CREATE TEMP TABLE x (a)",
        "PRAGMA query_only = 0",
        "PRAGMA writable_schema = 1",
        "ATTACH ':memory:' AS other",
        "BEGIN IMMEDIATE",
        "VACUUM",
        "REINDEX",
        "ANALYZE",
    ]:
        with pytest.raises(SqlError):
            db.sql(statement)
    assert db.sql("SELECT id, owner FROM todos") == [("a", "ann")]
    assert db.sql("PRAGMA table_info(todos)")[0][1] == "id"  # read-only pragmas are allowed
    view_matches_store(db)


def test_reads_join_aggregate_and_json(alice: OrbitDB) -> None:
    db = open_table(alice)
    conn = connect(db)
    conn.executemany(
        "INSERT INTO todos (id, owner, title, done) VALUES (?, ?, ?, ?)",
        [("a", "ann", "x", 1), ("b", "ann", "y", 0), ("c", "bob", "z", 1)],
    )
    conn.executemany("INSERT INTO tags VALUES (?, ?)", [("a", "home"), ("c", "home"), ("c", "work")])
    conn.commit()
    assert len(db.log) == 1
    assert db.sql(
        "SELECT owner, count(*), sum(done) FROM todos JOIN tags ON tags.todo = todos.id"
        " GROUP BY owner ORDER BY owner"
    ) == [("ann", 1, 1), ("bob", 2, 2)]
    assert db.sql("SELECT json_group_array(id) FROM (SELECT id FROM todos ORDER BY id)") == [
        ('["a","b","c"]',)
    ]
    plan = db.sql("EXPLAIN QUERY PLAN SELECT * FROM todos WHERE owner = ?", ("ann",))
    assert any("todos_owner" in str(row) for row in plan)  # the schema's index is used


def test_non_deterministic_sql_is_evaluated_once(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    a.execute("INSERT INTO todos (id, owner, n, title) VALUES ('r', 'ann', random(), datetime('now'))")
    b.sync_from(a)
    assert a.sql("SELECT n, title FROM todos") == b.sql("SELECT n, title FROM todos")


def test_provenance(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    first = a.execute("INSERT INTO todos (id, owner, title) VALUES ('a', 'ann', 'x')").entry
    b.sync_from(a)
    second = b.execute("UPDATE todos SET title = 'y' WHERE id = 'a'").entry
    a.sync_from(b)
    rows = a.sql(
        "SELECT column_name, writer, entry, clock FROM orbit_provenance WHERE table_name = 'todos' AND pk = ?"
        " ORDER BY column_name",
        ('["a"]',),
    )
    by_column = {r[0]: r[1:] for r in rows}
    assert by_column["title"] == (BOB.did, str(second), 2)
    assert by_column["owner"] == (ALICE.did, str(first), 1)
    assert by_column["id"] == (BOB.did, str(second), 2)  # the key: the row's newest set
    assert a.provenance("todos", "a")["title"] == {"writer": BOB.did, "entry": second, "clock": 2}  # type: ignore[index]
    assert set(by_column) == {"id", "owner", "title", "done", "n", "data", "extra"}


# ---------------------------------------------------------------------- merges


def test_concurrent_edits_to_different_columns_both_survive(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    a.execute("INSERT INTO todos (id, owner, title) VALUES ('t', 'ann', 'milk')")
    b.sync_from(a)
    a.execute("UPDATE todos SET title = 'oat milk' WHERE id = 't'")
    b.execute("UPDATE todos SET done = 1 WHERE id = 't'")
    a.sync_from(b)
    b.sync_from(a)
    for db in (a, b):
        assert db.sql("SELECT title, done FROM todos") == [("oat milk", 1)]
        view_matches_store(db)


def test_delete_versus_update(alice: OrbitDB, bob: OrbitDB, tmp_path: Path) -> None:
    a, b = open_table(alice), open_table(bob)
    a.execute("INSERT INTO todos (id, owner, title) VALUES ('t', 'ann', 'milk'), ('u', 'ann', 'tea')")
    b.sync_from(a)
    # t: the update is newer than the delete (bob wrote twice), so the row comes back with the cells
    # set since the delete (owner, which is NOT NULL, was not: so bob sets it too) and NULL elsewhere
    a.execute("DELETE FROM todos WHERE id = 't'")
    b.execute("UPDATE todos SET done = 1 WHERE id = 'u'")
    b.execute("UPDATE todos SET owner = 'bob', done = 1 WHERE id = 't'")
    # u: the delete is newer than the update
    a.execute("UPDATE todos SET title = 'x' WHERE id = 'u'")
    a.execute("DELETE FROM todos WHERE id = 'u'")
    a.sync_from(b)
    b.sync_from(a)
    for db in (a, b):
        assert db.sql("SELECT id, owner, title, done FROM todos") == [("t", "bob", None, 1)]
        view_matches_store(db)


def test_a_resurrected_row_without_its_required_cells_stays_deleted(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    a.execute("INSERT INTO todos (id, owner) VALUES ('t', 'ann')")
    b.sync_from(a)
    a.execute("DELETE FROM todos")
    b.execute("UPDATE todos SET title = 'late'")
    b.execute("UPDATE todos SET done = 1")  # newer than the delete, but owner was not set since
    a.sync_from(b)
    b.sync_from(a)
    assert a.sql("SELECT * FROM todos") == b.sql("SELECT * FROM todos") == []
    b.execute("INSERT INTO todos (id, owner) VALUES ('t', 'bo')")  # a full row brings it back
    a.sync_from(b)
    assert a.sql("SELECT id, owner, title, done FROM todos") == [("t", "bo", None, 0)]


def test_malformed_ops_from_a_permitted_writer_are_ignored(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    a.execute("INSERT INTO todos (id, owner) VALUES ('t', 'ann')")
    bad: list[Any] = [
        {"op": "ROWS", "changes": [["todos", ["t"], {"done": 7}]]},  # fails the CHECK
        {"op": "ROWS", "changes": [["todos", ["t"], {"owner": None}]]},  # NULL in NOT NULL
        {"op": "ROWS", "changes": [["todos", ["t"], {"done": "1"}]]},  # wrong type
        {"op": "ROWS", "changes": [["todos", ["t"], {"nope": 1}]]},
        {"op": "ROWS", "changes": [["todos", [1], None]]},  # key type
        {"op": "ROWS", "changes": [["todos", ["t"], {"n": 1}]]},  # int in a REAL column
        {"op": "ROWS", "changes": [["orbit_cells", ["t"], None]]},
        {"op": "ROWS", "changes": [["todos", ["t"], None]], "extra": 1},
        {"op": "ROWS", "changes": []},
        {"op": "PUT", "key": "t", "value": 1},
        "junk",
    ]
    for payload in bad:
        b.store.log.append(payload)  # signed by bob, a permitted writer
    b.execute("UPDATE todos SET title = 'ok'") if b.sql("SELECT 1 FROM todos") else None
    a.sync_from(b)
    assert len(a.log) == 1 + len(bad)
    assert a.sql("SELECT id, owner, done FROM todos") == [("t", "ann", 0)]
    view_matches_store(a)


# ---------------------------------------------------------------------- DB-API


def test_dbapi_transactions(alice: OrbitDB) -> None:
    db = open_table(alice)
    assert (orbit.sql.apilevel, orbit.sql.paramstyle) == ("2.0", "qmark")
    conn = connect(db)
    cur = conn.cursor()
    cur.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    cur.execute("UPDATE todos SET title = 'x' WHERE id = 'a'")
    assert conn.in_transaction
    assert cur.execute("SELECT id, title FROM todos").fetchall() == [("a", "x")]  # sees its own writes
    assert db.sql("SELECT * FROM todos") == []  # others do not
    with pytest.raises(OperationalError):
        db.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')")  # one writer at a time
    with pytest.raises(IntegrityError):
        cur.execute("INSERT INTO todos (id) VALUES ('c')")
    assert conn.in_transaction  # a failed statement leaves the transaction open
    entry = conn.commit()
    assert entry is not None
    assert len(db.log) == 1
    assert payload(db, entry)["changes"][0][2]["title"] == "x"
    cur.execute("DELETE FROM todos")
    conn.rollback()
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos") == [("a",)]

    def fail_inside() -> None:
        with conn:
            cur.execute("DELETE FROM todos")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail_inside()
    assert db.sql("SELECT id FROM todos") == [("a",)]
    cur.execute("SELECT id, owner FROM todos")
    assert [d[0] for d in cur.description or ()] == ["id", "owner"]
    assert cur.fetchmany(5) == [("a", "ann")]
    assert cur.fetchone() is None
    auto = connect(db, autocommit=True)
    c2 = auto.execute("INSERT INTO todos (id, owner) VALUES ('z', 'zed')")
    assert c2.entry is not None
    assert len(db.log) == 2
    conn.close()
    with pytest.raises(InterfaceError):
        conn.cursor()
    with pytest.raises(InterfaceError):
        connect(alice.open("kv", type="keyvalue"))


def test_joined_entries_during_a_transaction_reach_the_view_after_it(alice: OrbitDB, bob: OrbitDB) -> None:
    a, b = open_table(alice), open_table(bob)
    b.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')")
    conn = connect(a)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    a.sync_from(b)
    conn.commit()
    assert a.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("b",)]
    view_matches_store(a)


def test_rows_another_writer_changed_during_a_transaction_are_redone_from_the_store(
    alice: OrbitDB, bob: OrbitDB
) -> None:
    """The committed statement's effect is kept in the view only for rows no other entry touched."""
    a, b = open_table(alice), open_table(bob)
    a.executemany("INSERT INTO todos (id, owner) VALUES (?, ?)", [("a", "ann"), ("c", "cat"), ("d", "dan")])
    b.sync_from(a)
    b.execute("UPDATE todos SET title = 'from bob' WHERE id = 'a'")  # another column of a row ann edits
    b.execute("DELETE FROM todos WHERE id = 'c'")  # a row ann updates
    conn = connect(a)
    conn.execute("UPDATE todos SET done = 1 WHERE id IN ('a', 'c', 'd')")
    a.sync_from(b)  # joined while the transaction is open
    conn.execute("UPDATE todos SET n = 2.5 WHERE id = 'a'")
    conn.commit()
    # c: bob's delete, then ann's newer set of one cell: the row lacks its NOT NULL owner, so it hides
    assert a.sql("SELECT id, owner, title, done, n FROM todos ORDER BY id") == [
        ("a", "ann", "from bob", 1, 2.5),
        ("d", "dan", None, 1, None),
    ]
    view_matches_store(a)
    b.sync_from(a)
    assert b.sql("SELECT * FROM todos ORDER BY id") == a.sql("SELECT * FROM todos ORDER BY id")
    assert b.sql("SELECT * FROM orbit_provenance ORDER BY 1, 2, 3") == a.sql(
        "SELECT * FROM orbit_provenance ORDER BY 1, 2, 3"
    )


def test_or_rollback_and_or_fail_leave_the_view_equal_to_the_store(alice: OrbitDB) -> None:
    """``OR ROLLBACK`` ends the whole transaction (the view's uncommitted work with it); ``OR FAIL``
    keeps a failed statement's first rows in SQLite."""
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann'), ('b', 'bob')")
    with pytest.raises(IntegrityError):
        db.execute("INSERT OR ROLLBACK INTO todos (id, owner) VALUES ('c', 'cat'), ('a', 'again')")
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("b",)]
    # OR FAIL keeps the rows before the failing one in SQLite; no entry carries them, so they go
    with pytest.raises(IntegrityError):
        db.execute("INSERT OR FAIL INTO todos (id, owner) VALUES ('c', 'cat'), ('a', 'again')")
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("b",)]
    conn = connect(db)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('d', 'dan')")
    with pytest.raises(IntegrityError):
        conn.execute("UPDATE OR ROLLBACK todos SET id = 'a' WHERE id = 'b'")
    assert not conn.in_transaction  # as in sqlite3: the transaction is gone
    assert conn.commit() is None
    db.execute("INSERT INTO todos (id, owner) VALUES ('e', 'eve')")
    assert db.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("b",), ("e",)]
    view_matches_store(db)


@pytest.mark.parametrize("entry_written", [False, True])
def test_a_failed_append_leaves_the_view_equal_to_the_store(
    alice: OrbitDB, monkeypatch: pytest.MonkeyPatch, entry_written: bool
) -> None:
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    append = db.store.append_op

    def failing(payload: Any) -> Any:
        if entry_written:
            append(payload)
        raise OSError("disk on fire")

    monkeypatch.setattr(db.store, "append_op", failing)
    with pytest.raises(OSError, match="fire"):
        db.execute("UPDATE todos SET title = 'x', done = 1 WHERE id = 'a'")
    monkeypatch.undo()
    assert len(db.log) == (2 if entry_written else 1)
    assert db.sql("SELECT title, done FROM todos") == ([("x", 1)] if entry_written else [(None, 0)])
    view_matches_store(db)
    db.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')")
    view_matches_store(db)


def test_too_large_a_transaction_is_refused(alice: OrbitDB) -> None:
    db = open_table(alice)
    with pytest.raises(DataError, match="split"):
        db.executemany(
            "INSERT INTO todos (id, owner, data) VALUES (?, 'x', ?)",
            [(str(i), b"x" * 2000) for i in range(600)],
        )
    assert len(db.log) == 0
    assert db.sql("SELECT count(*) FROM todos") == [(0,)]
    db.execute("INSERT INTO todos (id, owner) VALUES ('keep', 'ann')")
    with pytest.raises(DataError, match="split"):  # one row, one value too large for an entry
        db.execute("UPDATE todos SET data = ? WHERE id = 'keep'", (b"x" * 1_100_000,))
    assert len(db.log) == 1
    assert db.sql("SELECT owner, data FROM todos") == [("ann", None)]
    view_matches_store(db)


def test_the_view_writes_in_transactions(alice: OrbitDB, bob: OrbitDB) -> None:
    """Every write orbit makes to the view runs inside a transaction: outside one SQLite commits (and
    writes the WAL) once per row, which made closing a 3,000-row table take 3,000 commits."""
    db = open_table(alice)
    outside: list[str] = []

    def trace(statement: str, in_transaction: bool) -> None:
        bare = re.sub(r"^/\*orbit-\w+\*/ ", "", statement)  # orbit's own statements carry its tag
        if not in_transaction and not bare.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            outside.append(statement)

    db.sql_view.trace_writes(trace)
    for i in range(30):
        db.execute("INSERT INTO todos (id, owner) VALUES (?, 'ann')", (str(i),))
    assert db.sql("SELECT count(*) FROM orbit_provenance") != []  # provenance written for a query
    db.execute("UPDATE todos SET done = 1")
    replica = open_table(bob)
    replica.sql_view.trace_writes(trace)
    replica.sync_from(db)  # rows from joined entries
    assert replica.sql("SELECT count(*) FROM todos") == [(30,)]
    db.execute("DELETE FROM todos WHERE id = '3'")
    for i in range(30, 60):
        db.execute("INSERT INTO todos (id, owner) VALUES (?, 'ann')", (str(i),))
    assert db.sql("SELECT count(*) FROM todos") == [(59,)]  # commits the rows, not their provenance
    db.close()  # writes the provenance
    replica.close()
    assert outside == []


# ---------------------------------------------------------------------- the view file


def view_path(db: TableDatabase) -> Path:
    return db.sql_view.path


def test_reopen_keeps_the_view_and_a_deleted_view_is_rebuilt(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = open_table(o)
        db.executemany("INSERT INTO todos (id, owner) VALUES (?, ?)", [(str(i), "x") for i in range(20)])
        db.execute("DELETE FROM todos WHERE id < '1'")
        address, path = db.address, view_path(db)
        before = db.sql("SELECT * FROM orbit_provenance ORDER BY 1, 2, 3")
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO orbit_meta VALUES ('marker', 1)")  # survives a reopen that trusts the file
    raw.commit()
    raw.close()
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = o.open(address)  # type: ignore[assignment]
        assert db.sql("SELECT value FROM orbit_meta WHERE key = 'marker'") == [(1,)]
        assert db.sql("SELECT * FROM orbit_provenance ORDER BY 1, 2, 3") == before
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = o.open(address)  # type: ignore[assignment]
        assert db.sql("SELECT count(*) FROM todos") == [(19,)]
        assert db.sql("SELECT * FROM orbit_provenance ORDER BY 1, 2, 3") == before
        view_matches_store(db)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE orbit_meta SET value = 'elsewhere' WHERE key = 'address'",
        "UPDATE orbit_meta SET value = value + 5 WHERE key = 'admitted'",
        "UPDATE orbit_meta SET value = value + 5 WHERE key = 'provenance'",
        "DELETE FROM orbit_meta WHERE key = 'provenance'",
        "UPDATE orbit_meta SET value = x'00' WHERE key = 'heads'",
        "UPDATE orbit_meta SET value = 99 WHERE key = 'format'",
        "DELETE FROM todos WHERE id = '3'",
        "DROP TABLE orbit_meta",
    ],
)
def test_a_view_that_does_not_match_is_rebuilt(tmp_path: Path, tamper: str) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = open_table(o)
        db.executemany("INSERT INTO todos (id, owner) VALUES (?, ?)", [(str(i), "x") for i in range(5)])
        address, path = db.address, view_path(db)
    raw = sqlite3.connect(path)
    raw.execute(tamper)
    raw.commit()
    raw.close()
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = o.open(address)  # type: ignore[assignment]
        assert db.sql("SELECT count(*) FROM todos") == [(5,)]
        view_matches_store(db)


def test_a_garbage_view_file_is_rebuilt(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = open_table(o)
        db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'x')")
        address, path = db.address, view_path(db)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 100)
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = o.open(address)  # type: ignore[assignment]
        assert db.sql("SELECT id FROM todos") == [("a",)]


def test_a_lagging_view_catches_up(tmp_path: Path) -> None:
    """As after a kill: the file covers fewer entries than the log; only the rows they touch are redone."""
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = open_table(o)
        for i in range(6):
            db.execute("INSERT INTO todos (id, owner) VALUES (?, 'x')", (str(i),))
        db.execute("UPDATE todos SET title = 'new' WHERE id = '1'")
        address, path = db.address, view_path(db)
    raw = sqlite3.connect(path)
    # entries 4, 5, 6 not covered (rows and provenance), as after a kill
    raw.execute("UPDATE orbit_meta SET value = 4 WHERE key IN ('admitted', 'provenance')")
    raw.execute("DELETE FROM orbit_rows WHERE pk IN ('[\"1\"]', '[\"4\"]')")
    raw.execute("DELETE FROM todos WHERE id IN ('4', '5')")
    raw.execute("UPDATE todos SET title = NULL WHERE id = '1'")
    raw.execute("INSERT INTO orbit_meta VALUES ('marker', 1)")  # kept: this is a catch-up, not a rebuild
    raw.commit()
    raw.close()
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = o.open(address)  # type: ignore[assignment]
        assert db.sql("SELECT value FROM orbit_meta WHERE key = 'marker'") == [(1,)]
        assert db.sql("SELECT count(*) FROM todos") == [(6,)]
        assert db.sql("SELECT title FROM todos WHERE id = '1'") == [("new",)]
        view_matches_store(db)
        assert sorted(db.sql("SELECT DISTINCT pk FROM orbit_provenance")) == [(f'["{i}"]',) for i in range(6)]


def test_two_databases_and_close(alice: OrbitDB) -> None:
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'x')")
    db.close()
    with pytest.raises(Exception, match="closed"):
        db.sql("SELECT 1")
    again = open_table(alice)
    assert again.sql("SELECT id FROM todos") == [("a",)]
    alice.drop(again.address)
    assert not view_path(again).exists()


# ---------------------------------------------------------------------- command


def test_run_sql_command(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as o:
        db = open_table(o)
        db.execute("INSERT INTO todos (id, owner, data, n) VALUES ('a', 'ann', x'01ff', 1.5)")
        address = db.address
    Registry(tmp_path).add(RegistryEntry("todo", address, "table"))  # names are the registry's
    with OrbitDB(tmp_path, identity=ALICE) as o:
        text = run_sql_command(o, "todo", "SELECT id, owner, title, data, n FROM todos")
        assert text.splitlines() == [
            "id  owner  title  data     n",
            "--  -----  -----  -------  ---",
            "a   ann    NULL   x'01ff'  1.5",
        ]
        assert run_sql_command(
            o, address, "SELECT id, data FROM todos WHERE id = ?", ["a"], as_json=True
        ) == ('[{"id": "a", "data": "01ff"}]')
        with pytest.raises(Exception, match="no table database"):
            run_sql_command(o, "nope", "SELECT 1")
        with pytest.raises(ProgrammingError):
            run_sql_command(o, "todo", "DELETE FROM todos")
    assert format_rows(["x"], []) == "x\n-"


def test_check_evaluator_and_inf() -> None:
    schema = parse_schema("CREATE TABLE t (id TEXT PRIMARY KEY, v REAL CHECK (v > 0))")
    check = orbit.sql.CheckEvaluator.for_schema(schema)
    assert check("t", "v", 1.0)
    assert not check("t", "v", -1.0)
    assert check("t", "v", None)
    assert check("t", "id", "anything")
    assert not math.isfinite(float("inf"))


def test_identity_of_writers_is_did_key() -> None:
    assert Identity.from_seed(b"x" * 32).did.startswith("did:key:z6Mk")


def test_an_exception_from_executemany_parameters_leaves_no_trace(alice: OrbitDB) -> None:
    """executemany runs the statement once per parameter set: rows inserted before the iterator failed
    are in SQLite, but no entry carries them, so they must not stay in the view."""
    db = open_table(alice)

    def params() -> Any:
        yield ("a", "ann")
        yield ("b", "bob")
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        db.executemany("INSERT INTO todos (id, owner) VALUES (?, ?)", params())
    assert len(db.log) == 0
    assert db.sql("SELECT count(*) FROM todos") == [(0,)]
    conn = connect(db)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('c', 'cat')")
    with pytest.raises(RuntimeError, match="source broke"):
        conn.executemany("INSERT INTO todos (id, owner) VALUES (?, ?)", params())
    conn.commit()
    assert db.sql("SELECT id FROM todos") == [("c",)]
    view_matches_store(db)


# ---------------------------------------------------------------------- transaction control, failed writes


def committed_ids(db: TableDatabase) -> list[tuple[Any, ...]]:
    """The todos committed to the view file, as another process reading the file sees them."""
    with contextlib.closing(sqlite3.connect(f"file:{view_path(db)}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT id FROM todos ORDER BY id").fetchall()


@pytest.mark.parametrize(
    "statement",
    ["COMMIT", "BEGIN", "ROLLBACK", "SAVEPOINT x", "RELEASE x", "END", "BEGIN IMMEDIATE", "ROLLBACK TO x"],
)
def test_transaction_control_through_execute_is_refused(alice: OrbitDB, statement: str) -> None:
    """orbit's own BEGIN and COMMIT are prepared statements of the view's connection, which SQLite does
    not authorize again: a user's ``COMMIT`` reused orbit's and committed an open transaction's rows
    to the view file."""
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    db.sql("SELECT * FROM orbit_provenance")  # orbit commits the view file (and prepares its COMMIT)
    with pytest.raises(ProgrammingError, match="not authorized"):
        db.execute(statement)
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos") == [("a",)]
    conn = connect(db)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')")
    with pytest.raises(ProgrammingError, match="not authorized"):
        conn.execute(statement)
    assert conn.in_transaction  # a refused statement leaves the transaction open
    assert committed_ids(db) == [("a",)]  # nothing of it reached the file
    conn.rollback()
    assert len(db.log) == 1
    assert db.sql("SELECT id FROM todos") == [("a",)]
    assert committed_ids(db) == [("a",)]
    view_matches_store(db)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('c', 'cat')")
    assert conn.commit() is not None
    assert db.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("c",)]


def test_orbits_statements_on_the_view_file_carry_its_tag(alice: OrbitDB, bob: OrbitDB) -> None:
    """Every statement orbit runs on the view's connection starts with the view's tag, so no user
    statement (without it) reuses one; one with it is refused, even from a user who read the tag."""
    db, replica = open_table(alice), open_table(bob)
    ran: list[str] = []
    db.sql_view.trace_writes(lambda statement, _: ran.append(statement))
    mine = [
        "INSERT INTO todos (id, owner) VALUES ('a', 'ann')",
        "INSERT OR ROLLBACK INTO todos (id, owner) VALUES ('a', 'again')",  # fails: the view is rebuilt
        "UPDATE todos SET title = 'x'",
        "SELECT name FROM temp.sqlite_master WHERE type = 'trigger'",
    ]
    db.execute(mine[0])
    with pytest.raises(IntegrityError):
        db.execute(mine[1])
    db.execute(mine[2])
    replica.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')")
    db.sync_from(replica)
    assert db.sql("SELECT count(*) FROM orbit_provenance") != []
    trigger = db.execute(mine[3]).fetchone()
    assert trigger is not None
    tag = f"/*orbit-{trigger[0].split('_')[1]}*/ "  # the capture triggers are named after the token
    assert {s for s in ran if not s.startswith(tag)} == set(mine)
    for statement in ("COMMIT", "BEGIN", "ROLLBACK"):
        with pytest.raises(ProgrammingError, match="not authorized"):
            db.execute(tag + statement)
    assert len(db.log) == 3
    view_matches_store(db)


def fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, *, close: bool = False) -> list[str]:
    """Make ``cls.method`` raise a ``sqlite3`` error the next time it runs (after closing the view's
    connection under it if ``close``); return the list it records that in."""
    failed: list[str] = []
    original = getattr(cls, method)

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failed:
            return original(self, *args, **kwargs)
        failed.append(method)
        if close:
            self.rw.close()
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(cls, method, failing)
    return failed


def first_error(*calls: Callable[[], object]) -> SqlError:
    """Run the calls up to the first that fails and return its error: an orbit one (any other, a
    ``sqlite3`` error say, fails the test)."""
    for call in calls:
        try:
            call()
        except SqlError as e:
            return e
    pytest.fail("no call failed")


@pytest.mark.parametrize("close", [False, True], ids=["error", "closed"])
@pytest.mark.parametrize("method", ["begin", "write_dirty", "commit"])
def test_after_a_failed_write_to_the_view_the_next_statement_runs(
    alice: OrbitDB, monkeypatch: pytest.MonkeyPatch, method: str, close: bool
) -> None:
    """A failed write marks the view for a rebuild before its next use; the next statement ran on the
    connection the rebuild had closed (a raw ``sqlite3.ProgrammingError``)."""
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    failed = fail_once(monkeypatch, ViewFile, method, close=close)
    error = first_error(
        lambda: db.execute("UPDATE todos SET title = 'x' WHERE id = 'a'"),  # ViewFile.begin fails here
        lambda: db.sql("SELECT count(*) FROM orbit_provenance"),  # write_dirty or commit fails here
    )
    assert isinstance(error, OperationalError)
    assert "disk I/O error" in str(error)
    assert failed == [method]
    assert db.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')").entry is not None
    assert db.sql("SELECT id FROM todos ORDER BY id") == [("a",), ("b",)]
    conn = connect(db)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('c', 'cat')")
    failed.clear()  # fails again, inside a DB-API transaction
    error = first_error(
        lambda: conn.execute("INSERT INTO todos (id, owner) VALUES ('d', 'dan')"),  # begin fails here
        lambda: conn.execute("SELECT * FROM orbit_provenance"),  # write_dirty fails here
        conn.commit,
        lambda: db.sql("SELECT count(*) FROM orbit_provenance"),  # commit fails here
    )
    assert isinstance(error, OperationalError)
    assert "disk I/O error" in str(error)
    assert failed == [method]
    # a transaction survives a failed write, unless its connection closed (as under OR ROLLBACK)
    lost = close and method != "commit"
    assert conn.in_transaction is (method != "commit" and not close)
    conn.execute("INSERT INTO todos (id, owner) VALUES ('e', 'eve')")
    assert conn.commit() is not None
    kept = ["b"] + ([] if lost else ["c"]) + ([] if lost or method == "begin" else ["d"]) + ["e"]
    assert db.sql("SELECT id FROM todos WHERE id <> 'a' ORDER BY id") == [(k,) for k in kept]
    assert db.sql("SELECT count(*) FROM orbit_provenance") != []
    view_matches_store(db)


@pytest.mark.parametrize(("cls", "method"), [(ViewFile, "open_reader"), (WriteCapture, "install")])
def test_a_rebuild_that_fails_half_way_is_retried(
    alice: OrbitDB, monkeypatch: pytest.MonkeyPatch, cls: type, method: str
) -> None:
    """The view counted as repaired once its file was rebuilt, before it had a reader and capture
    triggers: reads failed with a raw AttributeError, and writes changed the view without an entry."""
    db = open_table(alice)
    db.execute("INSERT INTO todos (id, owner) VALUES ('a', 'ann')")
    failed = fail_once(monkeypatch, cls, method)
    with pytest.raises(IntegrityError):  # SQLite drops the transaction: the view is rebuilt, half way
        db.execute("INSERT OR ROLLBACK INTO todos (id, owner) VALUES ('a', 'again')")
    assert failed == [method]
    assert db.sql("SELECT id FROM todos") == [("a",)]
    assert db.execute("INSERT INTO todos (id, owner) VALUES ('b', 'bob')").entry is not None
    assert len(db.log) == 2
    assert db.query("SELECT id FROM todos ORDER BY id") == (["id"], [("a",), ("b",)])
    view_matches_store(db)
