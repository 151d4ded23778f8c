"""A PEP 249 (DB-API 2.0) connection to a table database: code written for ``sqlite3`` ports easily.

>>> import tempfile
>>> from orbit import OrbitDB
>>> with tempfile.TemporaryDirectory() as d, OrbitDB(d) as orbit:
...     db = orbit.open("todo", type="table", schema="CREATE TABLE todos (id TEXT PRIMARY KEY, done INT)")
...     with connect(db) as conn:  # commits on success, as with sqlite3
...         cur = conn.cursor()
...         _ = cur.executemany("INSERT INTO todos VALUES (?, ?)", [("a", 0), ("b", 0)])
...         _ = cur.execute("UPDATE todos SET done = 1 WHERE id = ?", ("a",))
...     len(db.log), conn.cursor().execute("SELECT * FROM todos ORDER BY id").fetchall()
(1, [('a', 1), ('b', 0)])

What differs from ``sqlite3``: ``commit()`` appends the transaction's row changes to the log as one
signed entry (nothing is written before); only DML on the schema's tables is allowed (no DDL, PRAGMA
writes, ATTACH, or explicit BEGIN/SAVEPOINT); one connection at a time may hold an open write
transaction on a database (the others' queries read the committed view meanwhile, as ``db.sql()``
does); and with ``autocommit=True`` each statement is its own entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Final, Self

from ipfs_log.cid import CID
from orbit.databases.base import Database
from orbit.sql.errors import InterfaceError, SqlError
from orbit.sql.view import Result, SqlView

__all__ = ["Connection", "Cursor", "apilevel", "connect", "paramstyle", "threadsafety"]

apilevel: Final = "2.0"
threadsafety: Final = 1
paramstyle: Final = "qmark"

Params = Sequence[Any] | dict[str, Any]


def connect(db: Database[Any] | SqlView, *, autocommit: bool = False) -> Connection:
    """Return a DB-API connection to a table database (``orbit.open(..., type="table")``).

    Args:
        db: the database (or its :class:`SqlView`).
        autocommit: append each statement as its own entry instead of waiting for :meth:`Connection.commit`.

    Raises:
        InterfaceError: the database is not a table database.
    """
    view = db if isinstance(db, SqlView) else getattr(db, "sql_view", None)
    if not isinstance(view, SqlView):
        raise InterfaceError("orbit.sql.connect needs a table database (open it with type='table')")
    return Connection(view, autocommit=autocommit, lock=db.lock if isinstance(db, Database) else None)


class Connection:
    """A DB-API connection over a table database's view.

    Statements run against the current view in a transaction; :meth:`commit` appends their row changes
    as one signed entry. Reads outside a write transaction see the view as the log makes it.
    """

    def __init__(
        self, view: SqlView, *, autocommit: bool = False, lock: AbstractContextManager[Any] | None = None
    ) -> None:
        self._view = view
        self._lock: AbstractContextManager[Any] = lock if lock is not None else view.store.guard
        self.autocommit = autocommit
        self._closed = False
        self.last_entry: CID | None = None
        """The CID of the entry the last commit appended (None if it changed nothing)."""

    def _check(self) -> SqlView:
        if self._closed:
            raise InterfaceError("the connection is closed")
        return self._view

    @property
    def in_transaction(self) -> bool:
        """True while a write transaction is open (statements changed rows and are not committed)."""
        return self._view.in_transaction(self)

    def cursor(self) -> Cursor:
        """Return a new cursor.

        Raises:
            InterfaceError: the connection is closed.
        """
        self._check()
        return Cursor(self)

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """Run one statement on a new cursor (a shortcut, as in ``sqlite3``).

        Raises:
            SqlError: the statement failed.
        """
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, seq: Iterable[Params]) -> Cursor:
        """Run one statement for each parameter set on a new cursor.

        Raises:
            SqlError: the statement failed.
        """
        return self.cursor().executemany(sql, seq)

    def commit(self) -> CID | None:
        """Append the open transaction's row changes as one signed entry.

        Returns:
            The entry's CID, or None if nothing changed.

        Raises:
            InterfaceError: the connection is closed.
            DataError: a value cannot go in the log, or the transaction is too large for one entry.
            SqlError: the view failed.
        """
        with self._lock:
            self.last_entry = self._check().commit(self)
        return self.last_entry

    def rollback(self) -> None:
        """Drop the open transaction.

        Raises:
            InterfaceError: the connection is closed.
        """
        self._check().rollback(self)

    def close(self) -> None:
        """Drop any open transaction (as ``sqlite3`` does) and close. Idempotent."""
        if not self._closed:
            if not self._view.closed:
                self._view.rollback(self)
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


class Cursor:
    """A DB-API cursor: ``execute``, ``executemany``, ``fetchone/fetchmany/fetchall``, ``description``."""

    arraysize: int = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._result: Result | None = None
        self._at = 0
        self._closed = False
        self.entry: CID | None = None
        """With ``autocommit``, the CID of the entry the last statement appended (else None)."""

    @property
    def description(self) -> tuple[tuple[str, None, None, None, None, None, None], ...] | None:
        """One 7-tuple per column of the last result (name first), or None."""
        return None if self._result is None else self._result.description

    @property
    def rowcount(self) -> int:
        """Rows changed by the last statement (-1 if none or unknown)."""
        return -1 if self._result is None else self._result.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid of the last inserted row (as SQLite reports it)."""
        return None if self._result is None else self._result.lastrowid

    def _run(self, sql: str, params: Any, many: bool) -> Self:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        connection = self.connection
        view = connection._check()
        self.entry = None
        with connection._lock:
            self._result = view.run(connection, sql, params, many=many)
            self._at = 0
            if connection.autocommit and view.in_transaction(connection):
                self.entry = connection.commit()
        return self

    def execute(self, sql: str, params: Params = ()) -> Self:
        """Run one statement.

        Raises:
            SqlError: the statement failed; its changes are undone (the transaction stays open).
                :class:`~orbit.sql.DataError`: a parameter value SQLite cannot hold (an int outside
                64 bits, a str that is not UTF-8).
            InterfaceError: the cursor or connection is closed.
        """
        return self._run(sql, params, False)

    def executemany(self, sql: str, seq: Iterable[Params]) -> Self:
        """Run one statement for each parameter set.

        An exception raised by ``seq`` itself (a generator's, say) is passed on unchanged, after the
        statement's changes are undone.

        Raises:
            SqlError: the statement failed (:class:`~orbit.sql.DataError`: a value cannot be bound).
            InterfaceError: the cursor or connection is closed.
        """
        return self._run(sql, seq, True)

    def _rows(self) -> list[tuple[Any, ...]]:
        if self._result is None:
            raise InterfaceError("no statement was executed")
        return self._result.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        """Return the next row, or None.

        Raises:
            InterfaceError: no statement was executed.
        """
        rows = self._rows()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Return up to ``size`` (default :attr:`arraysize`) next rows.

        Raises:
            InterfaceError: no statement was executed.
        """
        rows = self._rows()
        n = self.arraysize if size is None else size
        out = rows[self._at : self._at + n]
        self._at += len(out)
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Return the remaining rows.

        Raises:
            InterfaceError: no statement was executed.
        """
        rows = self._rows()
        out = rows[self._at :]
        self._at = len(rows)
        return out

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, sizes: Any) -> None:
        """Do nothing (PEP 249)."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Do nothing (PEP 249)."""

    def close(self) -> None:
        """Close the cursor."""
        self._closed = True


_ = SqlError  # re-exported by orbit.sql
