"""Errors of the SQL front, in PEP 249's shape and inside orbit's one tree.

::

    OrbitError                                  ipfs_log/errors.py
    └── DatabaseError                           orbit/errors.py
        └── SqlError            (PEP 249 Error)             a statement or query failed; nothing written
            ├── InterfaceError                              misuse of a connection or cursor (closed, ...)
            └── SqlDatabaseError (PEP 249 DatabaseError)
                ├── DataError                               a value cannot be stored (Inf, too large)
                ├── OperationalError                        SQLite could not run it (locked, no such table)
                ├── IntegrityError                          a constraint failed (NOT NULL, CHECK, key)
                ├── InternalError
                ├── ProgrammingError                        bad SQL, wrong parameters, a refused action
                └── NotSupportedError

A refused schema raises :class:`stores.errors.SchemaError` (naming the constraint). SQLite's own
exceptions never escape: each is translated to the class of the same name here, with its message and
the statement, and chained.
"""

from __future__ import annotations

import sqlite3

from orbit.errors import DatabaseError

__all__ = [
    "DataError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "SqlDatabaseError",
    "SqlError",
    "Warning",
    "translate",
]


class Warning(Exception):
    """PEP 249's Warning (never raised: orbit reports problems as errors)."""


class SqlError(DatabaseError):
    """A SQL statement or query failed; nothing was written to the log (PEP 249 ``Error``).

    Attributes:
        sql: the statement, if known.
    """

    def __init__(self, message: str, sql: str | None = None) -> None:
        self.sql = sql
        super().__init__(message if sql is None else f"{message} (in: {_short(sql)})")


class InterfaceError(SqlError):
    """The connection or cursor was misused (closed, or no statement executed)."""


class SqlDatabaseError(SqlError):
    """An error of the database itself (PEP 249 ``DatabaseError``)."""


class DataError(SqlDatabaseError):
    """A value cannot be stored in the log (an infinite REAL, a transaction too large for one entry)."""


class OperationalError(SqlDatabaseError):
    """SQLite could not run the statement (a missing table, another open transaction, ...)."""


class IntegrityError(SqlDatabaseError):
    """A constraint failed (NOT NULL, CHECK, a duplicate primary key)."""


class InternalError(SqlDatabaseError):
    """SQLite reported an internal error."""


class ProgrammingError(SqlDatabaseError):
    """Bad SQL, wrong parameters, or an action the view refuses (writing through ``sql()``, DDL)."""


class NotSupportedError(SqlDatabaseError):
    """The operation is not supported."""


_BY_NAME: dict[str, type[SqlError]] = {
    "DataError": DataError,
    "OperationalError": OperationalError,
    "IntegrityError": IntegrityError,
    "InternalError": InternalError,
    "ProgrammingError": ProgrammingError,
    "NotSupportedError": NotSupportedError,
    "InterfaceError": InterfaceError,
}


def translate(error: sqlite3.Error, sql: str | None = None) -> SqlError:
    """Return the orbit error for a ``sqlite3`` error (the caller raises it ``from`` the original)."""
    cls = _BY_NAME.get(type(error).__name__, SqlDatabaseError)
    message = str(error)
    if message == "not authorized":
        cls, message = ProgrammingError, "not authorized: the view is read-only except through the log"
    return cls(message, sql)


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 120 else text[:117] + "..."
