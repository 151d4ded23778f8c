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
the statement, and chained. Neither do the builtin ones ``sqlite3`` raises outside its tree: a
parameter value it cannot bind (an int outside 64 bits, a str that is not UTF-8) is a
:class:`DataError` naming the parameter (:func:`binding_error`), and a failure of the view's file
(deleting or creating it) an :class:`OperationalError`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Final

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
    "binding_error",
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


def translate(error: sqlite3.Error | OSError, sql: str | None = None, *, reading: bool = False) -> SqlError:
    """Return the orbit error for a ``sqlite3`` error (the caller raises it ``from`` the original).

    An ``OSError`` (the view's file could not be deleted or created) is an :class:`OperationalError`.
    A statement the authorizer refused is a :class:`ProgrammingError` saying why (``reading``: it ran
    as a read-only query).
    """
    if isinstance(error, OSError):
        return OperationalError(f"the SQL view's file failed: {error}", sql)
    cls = _BY_NAME.get(type(error).__name__, SqlDatabaseError)
    message = str(error)
    if message == "not authorized":
        cls, message = ProgrammingError, "not authorized: " + refused(sql, reading=reading)
    return cls(message, sql)


_WRITES: Final = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
_SCHEMA: Final = frozenset({"CREATE", "DROP", "ALTER", "REINDEX", "VACUUM", "ANALYZE"})
_TRANSACTIONS: Final = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_COMMENT: Final = re.compile(r"\s+|--[^\n]*(\n|$)|/\*.*?(\*/|$)", re.DOTALL)


def refused(sql: str | None, *, reading: bool = False) -> str:
    """Why the view refuses a statement, from its first keyword (for the "not authorized" error).

    >>> refused("DROP TABLE t")
    'the schema is fixed (it is part of the database address): CREATE, DROP and ALTER are refused'
    >>> refused("insert into t values (1)", reading=True)
    'a query only reads: run writes with execute() (on the command line: orbit sql NAME --write "…")'
    """
    word = first_keyword(sql or "")
    if word in _SCHEMA:
        return "the schema is fixed (it is part of the database address): CREATE, DROP and ALTER are refused"
    if word in _TRANSACTIONS:
        return "transactions are the connection's: use commit() and rollback() (orbit.sql.connect)"
    if word in ("ATTACH", "DETACH"):
        return "ATTACH and DETACH are refused"
    if word == "PRAGMA":
        return "only PRAGMAs that describe the schema (table_info, index_list, ...) are allowed"
    if reading and (word in _WRITES or (word == "WITH" and _writes_after_with(sql or ""))):
        return (
            'a query only reads: run writes with execute() (on the command line: orbit sql NAME --write "…")'
        )
    if word in _WRITES or word == "WITH":
        return "statements write the schema's own tables only (orbit_ tables are kept by orbit)"
    return "the view is read-only except through the log"


def first_keyword(sql: str) -> str:
    r"""The statement's first word, upper-cased, after spaces and comments ("" if none).

    >>> first_keyword("  /* hi */ -- there\n select 1")
    'SELECT'
    """
    at = 0
    while (m := _COMMENT.match(sql, at)) is not None and m.end() > at:
        at = m.end()
    word = re.match(r"[A-Za-z]+", sql[at:])
    return word.group(0).upper() if word else ""


def only_reads(sql: str) -> bool:
    """Whether a statement is a query by its text: SELECT, VALUES, EXPLAIN, or a read-only WITH.

    (The read-only connection it then runs on still refuses anything else it would do.)

    >>> only_reads("select 1"), only_reads("WITH x AS (SELECT 1) DELETE FROM t"), only_reads("DELETE FROM t")
    (True, False, False)
    """
    word = first_keyword(sql)
    return word in ("SELECT", "VALUES", "EXPLAIN") or (word == "WITH" and not _writes_after_with(sql))


def _writes_after_with(sql: str) -> bool:
    return re.search(r"\b(insert|update|delete|replace)\b", sql, re.IGNORECASE) is not None


_INT64: Final = range(-(2**63), 2**63)


def binding_error(
    error: Exception, params: object, sql: str | None = None, *, at: int | None = None
) -> DataError:
    """Return the error for a parameter value ``sqlite3`` could not bind (the caller raises it ``from`` it).

    ``sqlite3`` raises ``OverflowError`` for an int outside SQLite's 64 bits and ``UnicodeEncodeError``
    for a str that is not UTF-8 text (lone surrogates), without naming the parameter.

    Args:
        error: what ``sqlite3`` raised.
        params: the parameter set it was binding (a sequence, or a mapping of names).
        sql: the statement.
        at: the number of the parameter set (from 1), for ``executemany``.
    """
    where = "" if at is None else f"parameter set {at}, "
    found = _unbindable(params)
    if found is None:
        return DataError(f"{where}a parameter cannot be bound: {error}", sql)
    name, reason = found
    return DataError(f"{where}parameter {name}: {reason}", sql)


def _unbindable(params: object) -> tuple[str, str] | None:
    """The first parameter ``sqlite3`` cannot bind (its number or ``:name``) and why, if it finds one."""
    try:
        if isinstance(params, Mapping):
            pairs = [(f":{name}", value) for name, value in params.items()]
        elif isinstance(params, list | tuple):
            pairs = [(str(i), value) for i, value in enumerate(params, 1)]
        else:
            return None
    except Exception:  # the caller's own mapping failed: say nothing more
        return None
    for name, value in pairs:
        if isinstance(value, int) and value not in _INT64:
            return name, "an int outside SQLite's INTEGER range (-2**63 to 2**63 - 1)"
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError as e:
                return name, f"a str that is not UTF-8 text ({e.reason} at index {e.start})"
    return None


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 120 else text[:117] + "..."
