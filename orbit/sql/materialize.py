"""Keeping the view file's rows in step with the table store: dirty rows, written in one batch.

An applied entry only marks the rows it touches (:meth:`DirtyRows.mark`, O(changes)); before the view
is next used, the marked rows are written from the store's merged state in one batch
(:meth:`DirtyRows.write`: one ``executemany`` per table and statement, one transaction), values and
provenance alike, by a :class:`RowWriter`. A row is *stale* when its values (and provenance) must be
rewritten, *unsourced* when its values are current but its provenance is not (the rows of an entry the
view itself appended: the statement already left its values in the file).

Provenance is kept per row: ``orbit_rows`` holds, for each visible row, a JSON array with one entry id
per column (``orbit_entries``: CID, writer, clock; the key columns point to the row's newest set, an
unset cell to null). :func:`key_text` is the row key as ``orbit_provenance.pk`` shows it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

from ipfs_log.entry import Entry
from ipfs_log.gc import gc_paused
from ipfs_log.identity import key_to_did
from orbit.sql.schema import quote
from stores.base import SortKey
from stores.table import Key, Table, TableSchema

__all__ = ["COMMIT_EVERY", "DIRTY_MAX", "SOURCES", "VALUES", "DirtyRows", "Row", "RowWriter", "key_text"]

VALUES: Final = 1
"""Write a row's values (a flag of :meth:`RowWriter.write`)."""
SOURCES: Final = 2
"""Write a row's provenance (a flag of :meth:`RowWriter.write`)."""
COMMIT_EVERY: Final = 1_000
"""Write the dirty rows and commit the view after this many applied entries (a read does it earlier)."""
DIRTY_MAX: Final = 50_000
"""Write the dirty rows (and commit) when this many are waiting, whatever the entry count."""

Row = tuple[str, Key]
"""A row of the view: its table's name and its primary key."""


def key_text(key: Key) -> str:
    r"""Return a row key as ``orbit_provenance.pk`` shows it: a compact JSON array (blobs as hex).

    >>> key_text(("t1",)), key_text((1, "a")), key_text((b"\x01",))
    ('["t1"]', '[1,"a"]', '["01"]')
    """
    if len(key) == 1:
        value = key[0]
        kind = type(value)
        if kind is int:
            return f"[{value}]"
        if kind is str:
            return f"[{_string(value)}]"
    return _KEY_JSON(list(key))


def _hex(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not a key value: {value!r}")


_KEY_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_hex).encode
_string: Final = json.JSONEncoder(ensure_ascii=False).encode


class RowWriter:
    """Writes the store's current state of rows into the view file: values and provenance.

    It numbers the entries and writers provenance points to (``orbit_entries``, ``orbit_writers``),
    remembering the numbers it gave; :meth:`reset` starts over for another file.

    Args:
        store: the table store whose rows are written.
        tables: the schema's tables, in order (a row of ``orbit_rows`` names its table by position).
        tag: the comment that starts every statement orbit runs on the file.
    """

    def __init__(self, store: Table, tables: Sequence[TableSchema], tag: str) -> None:
        self._store = store
        self._table_index = {t.name: i for i, t in enumerate(tables)}
        self._tag = tag
        self._writer_ids: dict[bytes, int] = {}
        self._entry_ids: dict[SortKey, int] = {}
        self._next_entry = 1
        self._upsert_sql = {
            t.name: tag
            + f"INSERT OR REPLACE INTO main.{quote(t.name)} VALUES ({', '.join('?' * len(t.columns))})"
            for t in tables
        }
        self._delete_sql = {
            t.name: tag
            + f"DELETE FROM main.{quote(t.name)} WHERE "
            + " AND ".join(f"{quote(k)} = ?" for k in t.primary_key)
            for t in tables
        }
        self._select_sql = {
            t.name: tag
            + f"SELECT * FROM main.{quote(t.name)} WHERE "
            + " AND ".join(f"{quote(k)} IS ?" for k in t.primary_key)
            for t in tables
        }
        self._insert_rows = tag + "INSERT OR REPLACE INTO orbit_rows VALUES (?, ?, ?)"
        self._forget_rows = tag + "DELETE FROM orbit_rows WHERE tbl = ? AND pk = ?"
        self._insert_entries = tag + "INSERT INTO orbit_entries VALUES (?, ?, ?, ?)"
        self._begin = tag + "BEGIN"

    def begin(self, rw: sqlite3.Connection) -> None:
        """Open a transaction on ``rw`` unless one is open (tagged: a user's ``BEGIN`` cannot reuse it).

        Raises:
            sqlite3.Error: the transaction could not be opened (the caller translates it).
        """
        if not rw.in_transaction:
            rw.execute(self._begin)

    def reset(self, next_entry: int) -> None:
        """Forget the numbers given so far; number new provenance entries from ``next_entry``."""
        self._writer_ids.clear()
        self._entry_ids.clear()
        self._next_entry = next_entry

    def write(self, rw: sqlite3.Connection, rows: dict[Row, int], *, existing: bool = True) -> None:
        """Write the store's current state of rows: values (:data:`VALUES`), provenance (:data:`SOURCES`).

        Args:
            rw: the file's writable connection, in a transaction.
            rows: the rows, each with the flags of what to write.
            existing: whether the rows may be in the file already (a row the store no longer shows
                is then deleted).

        Raises:
            sqlite3.Error: the file could not be written (the caller translates it).
        """
        with gc_paused():  # a few tuples per row, no cycles
            self._write(rw, rows, existing)

    def _write(self, rw: sqlite3.Connection, rows: dict[Row, int], existing: bool) -> None:
        view_row = self._store.view_row
        table_index = self._table_index
        upserts: dict[str, list[tuple[Any, ...]]] = {}
        deletes: dict[str, list[Key]] = {}
        forget: list[tuple[int, str]] = []
        provenance: list[tuple[int, str, str]] = []
        entry_ids = self._entry_ids
        new_entries: list[tuple[int, bytes, int, int]] = []
        for (table, key), what in rows.items():
            state = view_row(table, key)
            if state is None:
                if existing:
                    if what & SOURCES:
                        forget.append((table_index[table], key_text(key)))
                    if what & VALUES:
                        deletes.setdefault(table, []).append(key)
                continue
            values, sources = state
            if what & VALUES:
                found = upserts.get(table)
                if found is None:
                    upserts[table] = [values]
                else:
                    found.append(values)
                if not what & SOURCES:
                    continue
            ids: list[str] = []
            last: SortKey | None = None
            text = "null"
            for source in sources:
                if source is not last:
                    last = source
                    if source is None:
                        text = "null"
                    else:
                        number = entry_ids.get(source)
                        if number is None:
                            number = entry_ids[source] = self._next_entry
                            self._next_entry += 1
                            new_entries.append((number, source[2], self._writer_id(rw, source[1]), source[0]))
                        text = str(number)
                ids.append(text)
            provenance.append((table_index[table], key_text(key), "[" + ",".join(ids) + "]"))
        if forget:
            rw.executemany(self._forget_rows, forget)
        for table, keys in deletes.items():
            rw.executemany(self._delete_sql[table], keys)
        for table, tuples in upserts.items():
            rw.executemany(self._upsert_sql[table], tuples)
        if new_entries:
            rw.executemany(self._insert_entries, new_entries)
        if provenance:
            rw.executemany(self._insert_rows, provenance)

    def save(self, rw: sqlite3.Connection, rows: Iterable[Row]) -> list[tuple[Row, tuple[Any, ...] | None]]:
        """Return the values the file holds for rows, as ``rw`` sees them (None: no such row).

        With :meth:`restore`, this sets an open transaction's rows aside while the file is committed
        without them.

        Raises:
            sqlite3.Error: the file could not be read (the caller translates it).
        """
        select = self._select_sql
        return [((table, key), rw.execute(select[table], key).fetchone()) for table, key in rows]

    def restore(self, rw: sqlite3.Connection, saved: Iterable[tuple[Row, tuple[Any, ...] | None]]) -> None:
        """Write rows back as :meth:`save` returned them (``rw`` in a transaction; provenance untouched).

        Raises:
            sqlite3.Error: the file could not be written (the caller translates it).
        """
        for (table, key), values in saved:
            rw.execute(self._delete_sql[table], key)
            if values is not None:
                rw.execute(self._upsert_sql[table], values)

    def _writer_id(self, rw: sqlite3.Connection, writer: bytes) -> int:
        found = self._writer_ids.get(writer)
        if found is None:
            did = key_to_did(writer)
            rw.execute(self._tag + "INSERT OR IGNORE INTO orbit_writers (did) VALUES (?)", (did,))
            (found,) = rw.execute(self._tag + "SELECT id FROM orbit_writers WHERE did = ?", (did,)).fetchone()
            self._writer_ids[writer] = found
        assert found is not None
        return found


class DirtyRows:
    """The rows the view file lags the store on, and the entries applied since its last commit.

    ``stale`` rows are rewritten whole from the store (values and provenance); ``unsourced`` rows hold
    current values and wait for their provenance only. Both keep the order rows were first marked in.
    """

    __slots__ = ("pending", "stale", "unsourced")

    def __init__(self) -> None:
        self.stale: dict[Row, None] = {}
        """Rows to write from the store (values, provenance)."""
        self.unsourced: dict[Row, None] = {}
        """Rows whose values are current, not their provenance."""
        self.pending = 0
        """Entries applied since the file's last commit."""

    @property
    def due(self) -> bool:
        """Whether enough is waiting to write the dirty rows and commit now (whatever reads next)."""
        return self.pending >= COMMIT_EVERY or len(self.stale) >= DIRTY_MAX

    @property
    def provenance_due(self) -> bool:
        """Whether enough provenance is waiting to write it now, even when no read needs it."""
        return len(self.unsourced) >= DIRTY_MAX

    def applied(self, entries: Sequence[Entry], own: object) -> None:
        """Mark the rows the (applied) entries change, and count the entries.

        The rows of the entry carrying ``own`` (the statement the view is committing, whose effect it
        holds) need only their provenance.
        """
        stale, unsourced = self.stale, self.unsourced
        for entry in entries:
            changes: Any = entry.payload["changes"]  # type: ignore[index, call-overload]  # applied: well formed
            if own is not None and entry.payload is own:
                for change in changes:
                    row = (change[0], tuple(change[1]))
                    if row not in stale:
                        unsourced[row] = None
            else:
                for change in changes:
                    stale[(change[0], tuple(change[1]))] = None
        self.pending += len(entries)

    def mark_stale(self, rows: Iterable[Row]) -> None:
        """Mark rows to be rewritten whole from the store."""
        stale = self.stale
        for row in rows:
            stale[row] = None

    def mark_unsourced(self, rows: Iterable[Row]) -> None:
        """Mark rows whose provenance is to be written."""
        self.unsourced.update(dict.fromkeys(rows))

    def committed(self) -> None:
        """The file was committed: no applied entry is waiting for it."""
        self.pending = 0

    def clear(self) -> None:
        """Forget every mark (the file was rebuilt from the store)."""
        self.stale.clear()
        self.unsourced.clear()

    def write(
        self, writer: RowWriter, rw: sqlite3.Connection, *, values: bool = True, provenance: bool = True
    ) -> None:
        """Write the stale rows' values (``values``) and the pending provenance (``provenance``).

        A stale row written without its provenance waits for it in ``unsourced``. If the write fails,
        the rows stay marked.

        Raises:
            sqlite3.Error: the file could not be written (the caller translates it).
        """
        stale, unsourced = self.stale, self.unsourced
        rows: dict[Row, int] = {}
        if values and stale:
            rows = dict.fromkeys(stale, VALUES | SOURCES if provenance else VALUES)
            self.stale = {}
        if provenance and unsourced:
            self.unsourced = {}
            for row in unsourced:
                if row not in self.stale:  # a stale row is written whole later
                    rows.setdefault(row, SOURCES)
        if not rows:
            return
        writer.begin(rw)  # one transaction for them all (outside one, SQLite commits each row)
        try:
            writer.write(rw, rows)
        except BaseException:
            for row, what in rows.items():
                if what & VALUES:
                    self.stale[row] = None
                else:
                    self.unsourced[row] = None
            raise
        if not provenance:
            self.unsourced.update(dict.fromkeys(rows))
