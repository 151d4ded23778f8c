"""The table store's SQL front raises orbit errors only: no raw ``sqlite3``, ``OverflowError``,
``UnicodeEncodeError`` or ``OSError`` escapes ``execute``, ``sql``, ``query`` or DB-API calls."""

from __future__ import annotations

import contextlib
import math
import pathlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log.errors import OrbitError
from orbit import OrbitDB
from orbit.errors import BlockStoreError
from orbit.sql import DataError, IntegrityError, OperationalError, ProgrammingError, SqlError, connect
from tests.conftest import ALICE
from tests.unit.test_sql import open_table, view_matches_store

INSERT = "INSERT INTO todos (id, owner, extra) VALUES (?, ?, ?)"
UNBINDABLE = [2**63, -(2**63) - 1, 10**400, "\ud800", "ok \udcff"]


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[OrbitDB]:
    with OrbitDB(tmp_path / "alice", identity=ALICE) as o:
        yield o


def runners(db: Any) -> dict[str, Callable[[str, Any], object]]:
    """Each public way to run a statement with parameters."""
    return {
        "execute": db.execute,
        "sql": db.sql,
        "query": db.query,
        "cursor": lambda sql, params: connect(db, autocommit=True).cursor().execute(sql, params),
        "connection": lambda sql, params: connect(db).execute(sql, params),
    }


@pytest.mark.parametrize(
    "value", UNBINDABLE, ids=["2**63", "-2**63-1", "10**400", "surrogate", "low surrogate"]
)
@pytest.mark.parametrize("way", ["execute", "sql", "query", "cursor", "connection"])
def test_a_value_sqlite3_cannot_bind_is_a_data_error_naming_it(
    alice: OrbitDB, value: object, way: str
) -> None:
    """``sqlite3`` raises a bare OverflowError or UnicodeEncodeError for these, naming no parameter."""
    db = open_table(alice)
    run = runners(db)[way]
    statement = INSERT if way not in ("sql", "query") else "SELECT ?, ?, ?"
    with pytest.raises(DataError, match=r"^parameter 3: ") as info:
        run(statement, ("a", "ann", value))
    assert isinstance(info.value.__cause__, OverflowError | UnicodeEncodeError)
    assert info.value.sql == statement
    with pytest.raises(DataError, match=r"^parameter :v: "):
        run(statement.replace("?, ?, ?", ":k, :o, :v"), {"k": "a", "o": "ann", "v": value})
    assert len(db.log) == 0
    assert db.sql("SELECT count(*) FROM todos") == [(0,)]
    db.execute(INSERT, ("b", "bob", 2**63 - 1))  # the bounds are stored
    db.execute(INSERT, ("c", "cat", -(2**63)))
    assert run("SELECT ?, ?", (2**63 - 1, -(2**63))) is not None
    assert db.sql("SELECT extra FROM todos ORDER BY id") == [(2**63 - 1,), (-(2**63),)]
    view_matches_store(db)


def test_a_binding_error_inside_a_transaction_leaves_it_open(alice: OrbitDB) -> None:
    db = open_table(alice)
    conn = connect(db)
    conn.execute(INSERT, ("a", "ann", 1))
    with pytest.raises(DataError, match="parameter 2: an int outside"):
        conn.execute("UPDATE todos SET extra = ? WHERE id = ?", (2, 2**64))
    with pytest.raises(DataError, match="parameter set 2, parameter 1: a str that is not UTF-8"):
        conn.executemany(INSERT, [("b", "bob", 1), ("\udc80", "x", 2)])
    assert conn.in_transaction
    assert conn.commit() is not None
    assert db.sql("SELECT id FROM todos") == [("a",)]
    view_matches_store(db)


@pytest.mark.parametrize("value", [object(), [1], {"a": 1}, 1j], ids=["object", "list", "dict", "complex"])
def test_a_value_of_an_unsupported_type_is_a_programming_error(alice: OrbitDB, value: object) -> None:
    db = open_table(alice)
    for way, run in runners(db).items():
        statement = INSERT if way not in ("sql", "query") else "SELECT ?, ?, ?"
        with pytest.raises(ProgrammingError, match=r"parameter 3: type '.*' is not supported"):
            run(statement, ("a", "ann", value))
    assert len(db.log) == 0


def test_executemany_tells_its_iterators_errors_from_binding_errors(alice: OrbitDB) -> None:
    """An exception of the caller's iterator is passed on unchanged (even one ``sqlite3`` would raise
    binding a value); a value it yielded that cannot be bound is a DataError naming the set."""
    db = open_table(alice)

    def sets(error: BaseException | None = None, bad: object = None) -> Iterator[tuple[Any, ...]]:
        yield ("a", "ann", 1)
        yield ("b", "bob", 2)
        if error is not None:
            raise error
        yield ("c", "cat", bad)

    for error in (
        OverflowError("mine"),
        UnicodeEncodeError("utf-8", "x", 0, 1, "mine"),
        sqlite3.Error("mine"),
    ):
        with pytest.raises(type(error)) as info:
            db.executemany(INSERT, sets(error))
        assert info.value is error
    for bad, words in ((2**70, "an int outside"), ("\ud800x", "a str that is not UTF-8 text")):
        with pytest.raises(DataError, match=f"^parameter set 3, parameter 3: {words}"):
            db.executemany(INSERT, sets(bad=bad))
    with pytest.raises(ProgrammingError, match="an iterable of parameter sets, not int"):
        db.executemany(INSERT, 5)  # type: ignore[arg-type]
    assert len(db.log) == 0
    assert db.sql("SELECT count(*) FROM todos") == [(0,)]
    db.executemany(INSERT, sets(bad=2**63 - 1))
    assert db.sql("SELECT count(*) FROM todos") == [(3,)]
    view_matches_store(db)


@pytest.mark.parametrize("statement", [5, None, b"SELECT 1", "SELECT '\ud800'"])
def test_a_statement_that_is_not_utf8_text_is_a_programming_error(alice: OrbitDB, statement: Any) -> None:
    db = open_table(alice)
    conn = connect(db)
    for run in (db.sql, db.query, db.execute, conn.execute, lambda s: db.executemany(s, [()])):
        with pytest.raises(ProgrammingError, match=r"not UTF-8 text|is a str, not"):
            run(statement)
    assert len(db.log) == 0


# ---------------------------------------------------------------------- the view's file


def fail_on_view_files(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """Make ``Path.method`` raise PermissionError on the view's files while the returned list is empty."""
    original = getattr(pathlib.Path, method)
    stop: list[str] = []

    def failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        if not stop and (self.name.endswith((".sqlite", ".sqlite-wal", ".sqlite-shm")) or self.name == "sql"):
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, failing)
    return stop


@pytest.mark.parametrize("method", ["unlink", "mkdir"])
def test_an_os_error_rebuilding_the_view_is_an_operational_error(
    alice: OrbitDB, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A rebuild deletes the file and creates it again: its OSError escaped raw."""
    db = open_table(alice)
    db.execute(INSERT, ("a", "ann", 1))
    stop = fail_on_view_files(monkeypatch, method)
    with pytest.raises(IntegrityError):  # SQLite drops the transaction: the rebuild fails, quietly
        db.execute("INSERT OR ROLLBACK INTO todos (id, owner) VALUES ('a', 'again')")
    for run in (
        lambda: db.sql("SELECT id FROM todos"),
        lambda: db.execute(INSERT, ("b", "bob", 2)),
        lambda: connect(db).execute("SELECT 1"),
    ):
        with pytest.raises(OperationalError, match="Permission denied") as info:
            run()
        assert isinstance(info.value.__cause__, PermissionError)
    assert len(db.log) == 1
    stop.append("done")
    assert db.sql("SELECT id FROM todos") == [("a",)]
    assert db.execute(INSERT, ("b", "bob", 2)).entry is not None
    view_matches_store(db)


def test_an_os_error_creating_the_view_on_open_is_a_sql_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OrbitDB(tmp_path / "o", identity=ALICE) as orbit:
        stop = fail_on_view_files(monkeypatch, "mkdir")
        with pytest.raises(SqlError, match=r"cannot open the SQL view.*Permission denied"):
            open_table(orbit)
        stop.append("done")
        db = open_table(orbit)
        db.execute(INSERT, ("a", "ann", 1))
        assert db.sql("SELECT id FROM todos") == [("a",)]


def test_an_os_error_deleting_the_view_on_drop_is_a_block_store_error(
    alice: OrbitDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_table(alice)
    db.execute(INSERT, ("a", "ann", 1))
    fail_on_view_files(monkeypatch, "unlink")
    with pytest.raises(BlockStoreError, match="cannot delete the SQL view: Permission denied") as info:
        db.drop()
    assert str(info.value.path).endswith(".sqlite")


# ---------------------------------------------------------------------- any value


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(2**63 - 2, 2**63 + 1),
    st.integers(-(2**63) - 1, -(2**63) + 1),
    st.integers().map(lambda n: n * 2**64),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=4),
    st.binary(max_size=4),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(object),
    st.complex_numbers(allow_nan=False),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=4,
)
KEYS = st.text(max_size=2) | VALUES


def outcome(call: Callable[[], object]) -> None:
    """Run a call: it succeeds or raises an orbit error (anything else fails the test)."""
    with contextlib.suppress(OrbitError):
        call()


def test_any_parameter_value_gives_success_or_an_orbit_error(alice: OrbitDB) -> None:
    db = open_table(alice)
    conn = connect(db)

    @given(key=KEYS, values=st.lists(VALUES, min_size=3, max_size=3), params=VALUES)
    def check(key: Any, values: list[Any], params: Any) -> None:
        a, b, c = values
        outcome(
            lambda: db.execute(
                "INSERT OR REPLACE INTO todos (id, owner, extra) VALUES (?, ?, ?)", (key, a, b)
            )
        )
        outcome(
            lambda: db.execute("UPDATE todos SET n = ?, data = ?, title = ? WHERE id = ?", (a, b, c, key))
        )
        outcome(
            lambda: db.executemany(
                "INSERT OR IGNORE INTO todos (id, owner) VALUES (?, ?)", [(key, a), (b, c)]
            )
        )
        outcome(lambda: db.sql("SELECT ?, ?, ?", values))
        outcome(lambda: db.query("SELECT :a, :b", {"a": a, "b": b}))
        outcome(lambda: db.sql("SELECT ?", params))  # the parameter set itself may be anything
        outcome(lambda: db.execute("DELETE FROM todos WHERE id = ?", params))
        outcome(lambda: conn.execute("INSERT INTO todos (id, owner, extra) VALUES (?, ?, ?)", (key, a, c)))
        outcome(conn.commit)

    check()
    view_matches_store(db)
