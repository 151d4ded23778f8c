"""The table database: ``orbit.open(name, type="table", schema=...)``, read and written with SQL.

>>> import tempfile
>>> from orbit import OrbitDB
>>> with tempfile.TemporaryDirectory() as d, OrbitDB(d) as orbit:
...     db = orbit.open("todo", type="table",
...                     schema="CREATE TABLE todos (id TEXT PRIMARY KEY, owner TEXT, done INT DEFAULT 0)")
...     _ = db.execute("INSERT INTO todos (id, owner) VALUES (?, ?), (?, ?)", ("a", "ann", "b", "bob"))
...     _ = db.execute("UPDATE todos SET done = 1 WHERE owner = ?", ("ann",))
...     db.sql("SELECT id, done FROM todos ORDER BY id"), len(db.log)
([('a', 1), ('b', 0)], 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.gc import gc_paused
from orbit.address import Manifest
from orbit.databases.base import Database, DatabaseContext, locked
from orbit.databases.registry import register
from orbit.errors import BlockStoreError, DatabaseError
from orbit.sql.dbapi import Connection, Cursor
from orbit.sql.schema import CheckEvaluator, parse_schema, schema_from_sql
from orbit.sql.view import SqlView
from stores.errors import SchemaError
from stores.table import Key, Schema, Table, TableBatch

if TYPE_CHECKING:
    from orbit.state import RangeProof

__all__ = ["TableDatabase", "table_meta", "table_options"]


def table_meta(schema: str | Iterable[str] | Schema | None, meta: IPLDKind) -> IPLDKind:
    """Return the manifest ``meta`` of a table database: ``{"schema": [SQL statements]}`` (+ ``meta``).

    Raises:
        SchemaError: the schema is missing or refused.
    """
    if schema is None:
        raise SchemaError("a table database needs schema='CREATE TABLE ...'")
    parsed = schema if isinstance(schema, Schema) else parse_schema(schema)
    value: dict[str, IPLDKind] = {"schema": list(parsed.sql)}
    if meta is not None:
        value["meta"] = meta
    return value


def schema_of(manifest: Manifest) -> Schema:
    """Return the schema recorded in a table database's manifest.

    Raises:
        SchemaError: the manifest holds no valid schema.
    """
    meta = manifest.meta
    statements = meta.get("schema") if isinstance(meta, dict) else None
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        raise SchemaError(f"manifest {manifest.address} holds no table schema")
    return schema_from_sql([s for s in statements if isinstance(s, str)])


def table_options(manifest: Manifest, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the table store's constructor options for a manifest (its schema and CHECK evaluator).

    Raises:
        SchemaError: the manifest's schema is refused, or ``schema=`` was given and differs from it.
    """
    schema = schema_of(manifest)
    out = dict(options)
    given = out.pop("schema", None)
    if given is not None and table_meta(given, None) != {"schema": list(schema.sql)}:
        raise SchemaError(f"{manifest.address} has another schema than the one given")
    out["schema"] = schema
    out["check"] = CheckEvaluator.for_schema(schema)
    return out


@register
class TableDatabase(Database[Table]):
    """A table database: SQL tables merged per cell, read and written with SQL.

    - :meth:`sql` runs a read-only query on the view and returns its rows;
    - :meth:`execute` / :meth:`executemany` run a write (INSERT, UPDATE, DELETE, upserts) against the
      current view and append its row changes as one signed entry;
    - :func:`orbit.sql.connect` gives a PEP 249 connection (transactions: one entry per commit);
    - the view also holds ``orbit_provenance`` (table_name, pk, column_name, writer, entry, clock):
      for every cell of every row, the signed entry that set it.
    """

    STORE = Table

    def __init__(self, manifest: Manifest, store: Table, context: DatabaseContext) -> None:
        super().__init__(manifest, store, context)
        path = context.directory / "sql" / f"{manifest.cid.encode()}.sqlite"
        try:
            self.sql_view = SqlView(
                store, path, address=manifest.address, admitted_since=self._admitted_since
            )
        except BaseException:
            store.close()
            raise
        self._connection = Connection(self.sql_view, autocommit=True, lock=self.lock)

    @classmethod
    def manifest_meta(cls, options: dict[str, Any], meta: IPLDKind) -> IPLDKind:
        """The schema is part of the manifest, so of the address (see :func:`table_meta`)."""
        return table_meta(options.get("schema"), meta)

    @classmethod
    def store_options(cls, manifest: Manifest, options: dict[str, Any]) -> dict[str, Any]:
        """The schema and CHECK evaluator come from the manifest (see :func:`table_options`)."""
        return table_options(manifest, options)

    def _admitted_since(self, since: int) -> list[Any] | None:
        """The entries admitted as number ``since`` or later (for the view's catch-up after a kill)."""
        try:
            return list(self._context.admitted_since(since))
        except Exception:  # any doubt: the view is rebuilt instead
            return None

    @property
    def schema(self) -> Schema:
        """The tables (fixed in the manifest)."""
        return self.store.schema

    # ------------------------------------------------------------------ SQL

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the view and return its rows (a list of tuples).

        Raises:
            DatabaseClosedError: the database is closed.
            SqlError: the query failed, or tried to write (:class:`~orbit.sql.ProgrammingError`), or
                a parameter value cannot be bound (:class:`~orbit.sql.DataError`).
        """
        self.check_open()
        return self.sql_view.rows(query, params)

    def query(self, query: str, params: Any = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only query and return ``(column names, rows)``.

        Raises:
            DatabaseClosedError: the database is closed.
            SqlError: the query failed, or tried to write.
        """
        self.check_open()
        result = self.sql_view.query(query, params)
        return [d[0] for d in result.description or ()], result.rows

    @locked
    def execute(self, statement: str, params: Any = ()) -> Cursor:
        """Run one SQL statement; if it changed rows, append the changes as one signed entry.

        Returns:
            A cursor with the statement's rows (a SELECT or RETURNING), ``rowcount``, and ``entry``
            (the CID appended, or None).

        Raises:
            DatabaseClosedError: the database is closed.
            SqlError: the statement failed (nothing was written; :class:`~orbit.sql.DataError`: a
                parameter value cannot be bound), or a DB-API connection holds an open transaction on
                the database.
        """
        return self._connection.cursor().execute(statement, params)

    @locked
    def executemany(self, statement: str, seq: Iterable[Any]) -> Cursor:
        """Run one statement for each parameter set, appending all their changes as one entry.

        An exception raised by ``seq`` itself is passed on unchanged (nothing is written).

        Raises:
            DatabaseClosedError: the database is closed.
            SqlError: the statement failed (nothing was written).
        """
        return self._connection.cursor().executemany(statement, seq)

    def connect(self, *, autocommit: bool = False) -> Connection:
        """Return a PEP 249 connection (same as ``orbit.sql.connect(db)``).

        Raises:
            DatabaseClosedError: the database is closed.
        """
        self.check_open()
        return Connection(self.sql_view, autocommit=autocommit, lock=self.lock)

    # ------------------------------------------------------------------ proofs

    def prove_sql(self, query: str, params: Any = ()) -> RangeProof:
        """Answer a primary-key point or range query with a proof that the rows are all, and only, those.

        ``query`` is ``SELECT * FROM t`` with ``WHERE key = ?``, ``key BETWEEN ? AND ?`` or bounds
        (``>``, ``>=``, ``<``, ``<=``) joined by ``AND``, optionally ``ORDER BY key``
        (:mod:`orbit.sql.proofs`). The answer's ``items`` are ``(row key, row)`` in primary-key order
        (:func:`orbit.state.views.row_key_values` reads a row key back); a client checks it with
        :meth:`~orbit.state.RangeProof.verify` and the write list, and that its bounds are the ones
        :func:`orbit.sql.proofs.provable_range` gives for the query it asked.

        Raises:
            DatabaseClosedError: the database is closed.
            NotSupportedError: a query a proof does not cover (another shape, a column not the key).
            ProgrammingError: an unknown table, wrong parameters, a value not of the key's type.
        """
        from orbit.sql.proofs import provable_range

        self.check_open()
        lo, hi = provable_range(self.store.schema, query, tuple(params))
        return self.prove_range(lo, hi)

    # ------------------------------------------------------------------ rows without SQL

    @locked
    def get(self, table: str, key: object) -> dict[str, IPLDKind] | None:
        """Return a row by primary key (a value, or a tuple for a composite key), or None."""
        return self.store.get(table, key)

    @locked
    def rows(self, table: str) -> list[tuple[Key, dict[str, IPLDKind]]]:
        """Return ``(key, row)`` of every row of ``table``."""
        return list(self.store.rows(table))

    @locked
    def count(self, table: str) -> int:
        """Return the number of rows of ``table``."""
        return self.store.count(table)

    @locked
    def __len__(self) -> int:
        return len(self.store)

    @locked
    def provenance(self, table: str, key: object) -> dict[str, dict[str, Any]] | None:
        """Return, per column of a row, the entry that set it: ``{writer (did:key), entry (CID), clock}``."""
        from ipfs_log.identity import key_to_did

        found = self.store.provenance(table, key)
        if found is None:
            return None
        return {
            column: {"writer": key_to_did(at[0][1]), "entry": CID(at[0][2]), "clock": at[0][0]}
            for column, at in found.items()
        }

    def set(self, table: str, key: object, cells: Mapping[str, IPLDKind]) -> CID:
        """Set cells of a row without SQL; return the entry's CID once committed."""
        return self.store.set(table, key, cells)

    def delete(self, table: str, key: object) -> CID:
        """Delete a row without SQL; return the entry's CID once committed."""
        return self.store.delete(table, key)

    @locked
    def batch(self) -> TableBatch:
        """Return a batch of row changes, appended as one entry when it commits."""
        return self.store.batch()

    # ------------------------------------------------------------------ closing

    def save_checkpoint(self) -> None:
        """Store a checkpoint of the index (see :meth:`Database.save_checkpoint`).

        Raises:
            BlockStoreError: the write failed; the previous checkpoint stays.
        """
        with gc_paused():  # the dump builds a few lists per row
            super().save_checkpoint()

    def close(self) -> None:
        """Commit the view, save a checkpoint and close. Idempotent.

        Raises:
            BlockStoreError: the checkpoint could not be written.
            SqlError: the view's last commit failed (it catches up on the next open).
        """
        with self.lock:
            try:
                self.sql_view.close()
            finally:
                super().close()

    def _discard_derived(self) -> None:
        """Close the SQL view and delete its file.

        Raises:
            BlockStoreError: the file could not be deleted.
            SqlError: the view's last commit failed.
        """
        try:
            self.sql_view.close()
        finally:
            failed: OSError | None = None
            for suffix in ("", "-wal", "-shm"):
                path = Path(str(self.sql_view.path) + suffix)
                try:
                    path.unlink(missing_ok=True)
                except OSError as e:
                    failed = failed or e
            if failed is not None:
                raise BlockStoreError(
                    f"cannot delete the SQL view: {failed.strerror or failed}", failed.filename
                ) from failed


_ = DatabaseError
