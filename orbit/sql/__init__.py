"""SQL over the verified log: the ``table`` store's SQLite view, SQL reads and writes, and DB-API.

- :func:`parse_schema` checks ``CREATE TABLE``/``CREATE INDEX`` statements (refusing constraints that
  concurrent writers would break) for ``orbit.open(name, type="table", schema=...)``;
- :class:`TableDatabase` (what ``open`` returns) has ``sql()`` for read-only queries and ``execute()``
  for writes that become signed entries;
- :func:`connect` gives a PEP 249 connection (module globals ``apilevel``, ``threadsafety``,
  ``paramstyle`` and the PEP 249 exception classes are here too);
- :func:`run_sql_command` and :func:`format_rows` are what ``orbit sql NAME "SELECT …"`` prints.

Importing it registers the ``table`` type (:func:`orbit.databases.register`). May import:
:mod:`ipfs_log`, :mod:`stores`, :mod:`orbit.databases`, :mod:`orbit.errors`, :mod:`orbit.address`.
"""

from orbit.sql.command import format_rows, run_sql_command
from orbit.sql.database import TableDatabase, table_meta, table_options
from orbit.sql.dbapi import Connection, Cursor, apilevel, connect, paramstyle, threadsafety
from orbit.sql.errors import (
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    SqlDatabaseError,
    SqlError,
    Warning,
)
from orbit.sql.schema import CheckEvaluator, parse_schema, schema_from_sql
from orbit.sql.view import Result, SqlView

Error = SqlError
"""PEP 249's ``Error``."""
DatabaseError = SqlDatabaseError
"""PEP 249's ``DatabaseError``."""

__all__ = [
    "CheckEvaluator",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Result",
    "SqlDatabaseError",
    "SqlError",
    "SqlView",
    "TableDatabase",
    "Warning",
    "apilevel",
    "connect",
    "format_rows",
    "paramstyle",
    "parse_schema",
    "run_sql_command",
    "schema_from_sql",
    "table_meta",
    "table_options",
    "threadsafety",
]
