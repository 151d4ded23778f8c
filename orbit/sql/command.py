r"""What ``orbit sql NAME "SELECT …"`` prints: rows as an aligned table, or as JSON.

The CLI calls :func:`run_sql_command`; it is a thin shell over :meth:`TableDatabase.query` (and, for
``orbit sql --write``, :meth:`TableDatabase.execute`).

>>> print(format_rows(["id", "done"], [("a", 1), ("bb", None)]))
id  done
--  ----
a   1
bb  NULL
>>> format_rows(["id"], [(b"\x01",)], as_json=True)
'[{"id": "01"}]'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from orbit.address import is_address
from orbit.errors import DatabaseError
from orbit.registry import Registry

__all__ = ["SqlHost", "format_rows", "run_sql_command"]


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)


def _json(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, as_json: bool = False) -> str:
    """Return rows as an aligned text table (NULL for None, blobs as ``x'hex'``), or as a JSON array.

    With ``as_json``, each row is an object keyed by column name (blobs as hex strings).
    """
    if as_json:
        return json.dumps([{c: _json(v) for c, v in zip(columns, row, strict=False)} for row in rows])
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() for r in cells]
    return "\n".join(lines)


class SqlHost(Protocol):
    """What :func:`run_sql_command` needs of an :class:`orbit.OrbitDB`."""

    @property
    def directory(self) -> Path:
        """The OrbitDB directory (its registry names the databases)."""

    def open(self, name: str) -> Any:
        """Open a database by address."""


def run_sql_command(
    orbit: SqlHost,
    name: str,
    query: str,
    params: Sequence[Any] = (),
    *,
    as_json: bool = False,
    write: bool = False,
) -> str:
    """Open the table database ``name`` (or address) in ``orbit``, run a statement, format its result.

    Args:
        orbit: an open :class:`orbit.OrbitDB`.
        name: the database's address, or the name the directory's registry (:mod:`orbit.registry`,
            kept by the command line) knows it by.
        query: the SQL query (read-only, unless ``write``).
        params: its parameters.
        as_json: print a JSON array of row objects instead of a table (with ``write`` and no rows
            returned: a JSON object ``{"rowcount": n, "entry": CID or null}``).
        write: run it with :meth:`TableDatabase.execute` (INSERT, UPDATE, DELETE: one signed entry)
            instead of the read-only :meth:`TableDatabase.query`.

    Raises:
        DatabaseError: no table database of that name here, or it is not a table database.
        SqlError: the statement failed (nothing was written), or a read tried to write.
    """
    address = name
    if not is_address(name):
        entry = Registry(orbit.directory).get(name)
        if entry is None or entry.type != "table":
            raise DatabaseError(f"no table database named {name!r} in {orbit.directory}")
        address = entry.address
    db = orbit.open(address)
    if db.store_type != "table":
        raise DatabaseError(f"{name} is a {db.store_type} database, not a table database")
    if not write:
        columns, rows = db.query(query, list(params))
        return format_rows(columns, rows, as_json=as_json)
    cursor = db.execute(query, list(params))
    if cursor.description:
        return format_rows([d[0] for d in cursor.description], cursor.fetchall(), as_json=as_json)
    entry_cid = None if cursor.entry is None else str(cursor.entry)
    if as_json:
        return json.dumps({"rowcount": cursor.rowcount, "entry": entry_cid})
    changed = f"{cursor.rowcount} row{'' if cursor.rowcount == 1 else 's'} changed"
    return changed if entry_cid is None else f"{changed} (entry {entry_cid})"
