"""Table rows by primary key, proven: the tree's order is SQLite's, so a key range is one proven range."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfs_log.codec import IPLDKind
from orbit import OrbitDB
from orbit.errors import ProofError
from orbit.sql.errors import NotSupportedError, ProgrammingError
from orbit.sql.proofs import provable_range
from orbit.state.views import row_key, row_key_values
from stores.table import Column, Schema, TableSchema

KEYS = {
    "INTEGER": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "TEXT": st.text(max_size=12),
    "BLOB": st.binary(max_size=12),
}


@pytest.mark.parametrize("ctype", list(KEYS))
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_row_keys_sort_as_sqlite_sorts_the_key_and_read_back(ctype: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(KEYS[ctype], min_size=1, max_size=30, unique=True))
    extra = data.draw(st.lists(KEYS[ctype], min_size=len(values), max_size=len(values)))
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE t (k {ctype}, j {ctype}, PRIMARY KEY (k, j))")
    db.executemany("INSERT OR IGNORE INTO t VALUES (?, ?)", list(zip(values, extra, strict=True)))
    ordered = db.execute("SELECT k, j FROM t ORDER BY k, j").fetchall()
    keys = [row_key("t", list(pair)) for pair in ordered]
    assert keys == sorted(keys)
    assert [row_key_values(k) for k in keys] == [("t", tuple(pair)) for pair in ordered]


SCHEMA = Schema((TableSchema("t", (Column("id", "INTEGER"), Column("v", "TEXT")), ("id",)),))
QUERIES = [
    ("SELECT * FROM t", ()),
    ("SELECT * FROM t WHERE id = ?", (1,)),
    ("SELECT * FROM t WHERE id BETWEEN ? AND ?", (1, 2)),
    ("select * from t where id > ? and id <= ? order by id", (1, 2)),
    ("SELECT * FROM t WHERE id >= ?", (1,)),
    ("SELECT * FROM t WHERE id < ?;", (1,)),
    ('SELECT * FROM "t" WHERE id > ? AND id > ? AND id < ?', (1, 2, 3)),
]


@pytest.mark.parametrize(("query", "shape"), QUERIES)
@given(ids=st.lists(st.integers(min_value=-50, max_value=50), unique=True, max_size=40), data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_provable_query_selects_the_rows_sqlite_selects(
    query: str, shape: tuple[int, ...], ids: list[int], data: st.DataObject
) -> None:
    params = tuple(data.draw(st.integers(min_value=-60, max_value=60)) for _ in shape)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, 'x')", [(i,) for i in ids])
    expected = [r[0] for r in db.execute(query.replace('"t"', "t"), params).fetchall()]
    lo, hi = provable_range(SCHEMA, query, params)
    selected = sorted(i for i in ids if lo <= row_key("t", [i]) < hi)
    assert selected == sorted(expected)


@pytest.mark.parametrize(
    ("query", "params", "error"),
    [
        ("SELECT v FROM t WHERE id = ?", (1,), NotSupportedError),  # not SELECT *
        ("SELECT * FROM t WHERE v = ?", ("x",), NotSupportedError),  # not the key
        ("SELECT * FROM t WHERE id = 1", (), NotSupportedError),  # a literal, not a placeholder
        ("SELECT * FROM t WHERE id = ? OR id = ?", (1, 2), NotSupportedError),
        ("SELECT * FROM t ORDER BY v", (), NotSupportedError),
        ("SELECT * FROM nope WHERE id = ?", (1,), ProgrammingError),
        ("SELECT * FROM t WHERE id = ?", (), ProgrammingError),  # too few values
        ("SELECT * FROM t WHERE id = ?", ("1",), ProgrammingError),  # text for an INTEGER key
        ("SELECT * FROM t WHERE id = ?", (True,), ProgrammingError),
        ("SELECT * FROM t; DROP TABLE t", (), NotSupportedError),
    ],
)
def test_what_a_proof_does_not_cover_is_refused_by_name(query: str, params: Any, error: type) -> None:
    with pytest.raises(error):
        provable_range(SCHEMA, query, params)


def test_a_replica_answers_a_key_range_with_a_proof_the_client_checks(tmp_path: Path) -> None:
    schema = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE tags (k TEXT PRIMARY KEY)"
    with OrbitDB(tmp_path / "a") as orbit:
        db = orbit.open("people", type="table", schema=schema)
        db.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"p{i}") for i in (-7, 2, 9, 10, 300, 4000)])
        db.execute("INSERT INTO tags VALUES ('a')")
        db.execute("DELETE FROM people WHERE id = ?", (300,))
        writers = [orbit.identity.public_key]

        query, params = "SELECT * FROM people WHERE id BETWEEN ? AND ? ORDER BY id", (2, 4000)
        answer = db.prove_sql(query, params)
        commit = answer.verify(writers, address=db.address)
        assert commit.root == db.state_root()
        assert (answer.lo, answer.hi) == provable_range(
            db.schema, query, params
        )  # the range the client asked
        rows = [(row_key_values(k)[1], row) for k, row in answer.items]
        assert rows == [((i,), {"id": i, "name": f"p{i}"}) for i in (2, 9, 10, 4000)]
        assert [r[0] for r in db.sql(query, params)] == [2, 9, 10, 4000]

        point = db.prove_sql("SELECT * FROM people WHERE id = ?", (300,))  # deleted: proven absent
        point.verify(writers)
        assert point.items == ()
        with pytest.raises(ProofError):  # a row left out
            dataclasses.replace(answer, items=answer.items[1:]).verify(writers)
        mallory: IPLDKind = {"id": 2, "name": "mallory"}
        forged = ((answer.items[0][0], mallory), *answer.items[1:])
        with pytest.raises(ProofError):  # a row changed
            dataclasses.replace(answer, items=forged).verify(writers)
        whole = db.prove_sql("SELECT * FROM tags")
        whole.verify(writers)
        assert [row for _, row in whole.items] == [{"k": "a"}]
