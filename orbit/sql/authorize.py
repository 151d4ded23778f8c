"""What SQL may do on the view's connections: SQLite authorizer rules.

A query (the read-only connection) may only read; a user's statement on the writable connection may
also insert, update and delete rows of the schema's own tables, and nothing else (no DDL, no writes to
``orbit_`` tables, no PRAGMA that changes anything, no ATTACH, no transaction control).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Container
from typing import Final

__all__ = ["authorize_read", "authorize_write"]

_READ_ACTIONS: Final = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_WRITE_ACTIONS: Final = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
_READ_PRAGMAS: Final = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "table_list", "collation_list"}
)


def authorize_read(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    """The read-only connection's authorizer: reads, and PRAGMAs that only describe the schema."""
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def authorize_write(action: int, arg1: str | None, db: str | None, tables: Container[str | None]) -> int:
    """Whether a user's statement may take this action: reads, and DML on ``tables`` in ``main``."""
    if action in _WRITE_ACTIONS and db == "main" and arg1 in tables:
        return sqlite3.SQLITE_OK
    return authorize_read(action, arg1, None, db, None)
