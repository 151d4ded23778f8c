"""The SQLite view of a table store: derived state, read with SQL, written through the log.

:class:`SqlView` keeps one SQLite file (WAL) per table database, holding the user's tables (as the
manifest's SQL creates them) and the provenance of every row. It follows the store lazily: an applied
entry marks the rows it touches dirty (O(changes)), and the dirty rows are written from the store's
merged state in one batch (``executemany``) before the view is next used: a query, a statement, every
``_COMMIT_EVERY`` entries, or closing. So a joined batch of entries costs one pass over the rows it
changed, never a rebuild. The file is derived state, written with ``synchronous=OFF`` and committed in
groups; it records the admission count and heads it covers (``orbit_meta``), and is only committed
with every dirty row written, so what it records is what it holds. On open it is checked against the
log: it catches up on what was admitted since, and is rebuilt from the store when anything does not
match (another address or schema, a newer count, other heads, different row counts, an unreadable
file). Deleting the file loses nothing.

Provenance is kept per row: ``orbit_rows`` holds, for each visible row, a JSON array with one entry id
per column (``orbit_entries``: CID, writer, clock; the key columns point to the row's newest set, an
unset cell to null), and the view ``orbit_provenance`` unfolds it into one line per cell.

Reads (:meth:`SqlView.query`) go through a second, read-only connection (``mode=ro``, ``query_only``
and an authorizer that allows only reading). Writes (:meth:`SqlView.run`) execute the statement on
the writable connection while temporary triggers report every row change; the store appends the
changes as one signed entry. Values are captured after SQLite evaluated them, so ``random()`` or
``datetime('now')`` are evaluated once, by the writer. When the entry is appended the statement's own
effect is kept instead of being undone and redone: the entry sorts after every entry the store has
applied, so merging it gives exactly the rows the statement produced (rows that another entry touched
meanwhile are rewritten from the store). If anything fails (SQLite, a value the log refuses, the
append) or the transaction is rolled back, the rows it touched are rewritten from the store, which
holds none of its changes, before the view is used again; a failing statement inside a longer
transaction is undone alone through a savepoint. Nothing is committed to the file while a
transaction is open.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.errors import EntryTooLargeError
from ipfs_log.gc import gc_paused
from ipfs_log.identity import key_to_did
from orbit.sql.errors import DataError, OperationalError, SqlError, translate
from orbit.sql.schema import quote
from stores.base import SortKey, Update
from stores.errors import InvalidOperationError
from stores.table import Key, Table, TableSchema

__all__ = ["FORMAT", "Result", "SqlView", "key_text"]

FORMAT: Final = 3
"""Version of the view file's layout (``orbit_meta.format``)."""
_VALUES: Final = 1
_SOURCES: Final = 2
_COMMIT_EVERY: Final = 1_000
"""Write the dirty rows and commit the view after this many applied entries (a read does it earlier)."""
_DIRTY_MAX: Final = 50_000
"""Write the dirty rows (and commit) when this many are waiting, whatever the entry count."""

_READ_ACTIONS: Final = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_WRITE_ACTIONS: Final = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
_READ_PRAGMAS: Final = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "table_list", "collation_list"}
)

_ORBIT_TABLES: Final = (
    "CREATE TABLE orbit_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE orbit_writers (id INTEGER PRIMARY KEY, did TEXT NOT NULL UNIQUE)",
    "CREATE TABLE orbit_entries (id INTEGER PRIMARY KEY, cid BLOB NOT NULL, writer INTEGER NOT NULL,"
    " clock INTEGER NOT NULL)",
    "CREATE TABLE orbit_columns (tbl INTEGER NOT NULL, pos INTEGER NOT NULL, table_name TEXT NOT NULL,"
    " column_name TEXT NOT NULL, PRIMARY KEY (tbl, pos)) WITHOUT ROWID",
    "CREATE TABLE orbit_rows (tbl INTEGER NOT NULL, pk TEXT NOT NULL, cells TEXT NOT NULL,"
    " PRIMARY KEY (tbl, pk)) WITHOUT ROWID",
    "CREATE VIEW orbit_provenance AS SELECT c.table_name AS table_name, r.pk AS pk,"
    " c.column_name AS column_name, w.did AS writer, orbit_cid(e.cid) AS entry, e.clock AS clock"
    " FROM orbit_rows r JOIN json_each(r.cells) j"
    " JOIN orbit_columns c ON c.tbl = r.tbl AND c.pos = j.key"
    " JOIN orbit_entries e ON e.id = j.value JOIN orbit_writers w ON w.id = e.writer",
)


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


@dataclass(frozen=True, slots=True)
class Result:
    """What running one statement gave."""

    description: tuple[tuple[str, None, None, None, None, None, None], ...] | None
    """PEP 249 ``description``: one 7-tuple per result column (name first), or None."""
    rows: list[tuple[Any, ...]]
    """The rows the statement returned (a SELECT, or a RETURNING clause)."""
    rowcount: int
    """The rows the statement changed (-1 for a SELECT)."""
    lastrowid: int | None
    """The rowid of the last inserted row, as SQLite reports it."""


class _Txn:
    """A writer's open transaction on the view: its changes stay if its entry is appended."""

    __slots__ = ("owner",)

    def __init__(self, owner: object) -> None:
        self.owner = owner


class SqlView:
    """The SQLite view of a :class:`stores.table.Table`, kept in ``path``.

    Args:
        store: the table store the view follows.
        path: the SQLite file (created, checked, caught up or rebuilt).
        address: the database address (recorded, and checked on open).
        admitted_since: returns the entries admitted as number ``n`` or later (or None if it cannot
            tell); used to catch up after a kill. Without it, a view that lags is rebuilt.

    Raises:
        SqlError: the file cannot be created or written.
    """

    def __init__(
        self,
        store: Table,
        path: Path,
        *,
        address: str,
        admitted_since: Callable[[int], list[Entry] | None] | None = None,
    ) -> None:
        self.store = store
        self.path = Path(path)
        self.address = address
        self._admitted_since = admitted_since
        self._schema = store.schema
        self._tables: list[TableSchema] = list(self._schema.tables)
        self._table_index = {t.name: i for i, t in enumerate(self._tables)}
        self._others = [[j for j in range(len(t.columns)) if j not in t.key_positions] for t in self._tables]
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._token = secrets.token_hex(6)
        self._tag = f"/*orbit-{self._token}*/ "
        self._user = False
        self._capturing = False
        self._captured: list[tuple[Any, ...]] = []  # row events of the open transaction, in order
        self._txn: _Txn | None = None
        self._own: object = None  # the payload of the entry this view is appending
        self._stale: dict[tuple[str, Key], None] = {}  # rows to write from the store (values, provenance)
        self._unsourced: dict[tuple[str, Key], None] = {}  # rows whose values are current, not provenance
        self._pending = 0  # entries applied since the last commit
        self._broken = False
        self._closed = False
        self._writer_ids: dict[bytes, int] = {}
        self._entry_ids: dict[SortKey, int] = {}
        self._next_entry = 1
        self._sourced = 0  # the admission count up to which the file holds every row's provenance
        self._rw: sqlite3.Connection
        self._ro: sqlite3.Connection
        self._schema_text = json.dumps(list(self._schema.sql))
        self._stmt_savepoint = self._sql("SAVEPOINT orbit_stmt")
        self._stmt_rollback_to = self._sql("ROLLBACK TO orbit_stmt")
        self._stmt_release = self._sql("RELEASE orbit_stmt")
        self._upsert_sql = {
            t.name: self._sql(
                f"INSERT OR REPLACE INTO main.{quote(t.name)} VALUES ({', '.join('?' * len(t.columns))})"
            )
            for t in self._tables
        }
        self._delete_sql = {
            t.name: self._sql(
                f"DELETE FROM main.{quote(t.name)} WHERE "
                + " AND ".join(f"{quote(k)} = ?" for k in t.primary_key)
            )
            for t in self._tables
        }
        self._insert_rows = self._sql("INSERT OR REPLACE INTO orbit_rows VALUES (?, ?, ?)")
        self._forget_rows = self._sql("DELETE FROM orbit_rows WHERE tbl = ? AND pk = ?")
        self._insert_entries = self._sql("INSERT INTO orbit_entries VALUES (?, ?, ?, ?)")
        with self._lock:
            try:
                self._open()
            except sqlite3.Error as e:
                raise SqlError(f"cannot open the SQL view {self.path}: {e}") from e
        self._unsubscribe: Callable[[], None] | None = store.subscribe(self._on_update)

    # ------------------------------------------------------------------ opening, checking, rebuilding

    def _sql(self, text: str) -> str:
        return self._tag + text

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=512)
        self._rw = rw
        for pragma in (
            "journal_mode = WAL",
            "synchronous = OFF",
            "recursive_triggers = ON",
            "temp_store = MEMORY",
            "foreign_keys = OFF",
        ):
            rw.execute(f"PRAGMA {pragma}")
        rw.create_function(f"orbit_capture_{self._token}", -1, self._capture)
        rw.create_function("orbit_cid", 1, _cid_text, deterministic=True)
        rw.set_authorizer(self._authorize_rw)

    def _capture(self, *event: Any) -> None:
        """Called by the capture triggers for each row change: ``(table, kind, values...)``."""
        if self._capturing:
            self._captured.append(event)

    def _open(self) -> None:
        try:
            self._connect()
            late = self._check()
        except sqlite3.DatabaseError:
            self._close_connections()
            self._remove_files()
            self._connect()
            late = None
        if late is None:
            self._rebuild()
        else:
            values, provenance = late
            self._load_ids()
            self._unsourced.update(dict.fromkeys(self.store.touched(provenance)))
            if values:
                self._stale.update(dict.fromkeys(self.store.touched(values)))
                self._write_dirty(provenance=False)
                self._commit()
                if not self._counts_match():
                    self._rebuild()
        self._install_capture()
        self._open_reader()

    def _open_reader(self) -> None:
        ro = sqlite3.connect(
            f"file:{self.path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
        )
        ro.execute("PRAGMA query_only = ON")
        ro.create_function("orbit_cid", 1, _cid_text, deterministic=True)
        ro.set_authorizer(_authorize_read)
        self._ro = ro

    def _check(self) -> tuple[list[Entry], list[Entry]] | None:
        """Return the entries whose rows, and those whose provenance, the file lacks; None: rebuild it."""
        rw = self._rw
        if not rw.execute("SELECT 1 FROM sqlite_schema WHERE name = 'orbit_meta'").fetchone():
            return None
        meta = dict(rw.execute("SELECT key, value FROM orbit_meta").fetchall())
        admitted, sourced = meta.get("admitted"), meta.get("provenance")
        if (
            meta.get("format") != FORMAT
            or meta.get("address") != self.address
            or meta.get("schema") != self._schema_text
            or type(admitted) is not int
            or type(sourced) is not int
            or not 0 <= sourced <= admitted
        ):
            return None
        log = self.store.log
        if admitted > len(log):
            return None
        values: list[Entry] | None = []
        if admitted == len(log):
            if meta.get("heads") != b"".join(log.head_cids) or not self._counts_match():
                return None
        else:
            values = self._since(admitted)
        provenance = self._since(sourced) if sourced < admitted else []
        if values is None or provenance is None:
            return None
        self._sourced = sourced
        return values, provenance

    def _since(self, admitted: int) -> list[Entry] | None:
        """The entries admitted as number ``admitted`` or later, or None if that cannot be told."""
        late = self._admitted_since(admitted) if self._admitted_since is not None else None
        return late or None

    def _load_ids(self) -> None:
        """Start numbering new provenance entries after the file's (the id caches start empty)."""
        self._writer_ids.clear()
        self._entry_ids.clear()
        (last,) = self._rw.execute(self._sql("SELECT coalesce(max(id), 0) FROM orbit_entries")).fetchone()
        self._next_entry = last + 1

    def _counts_match(self) -> bool:
        rw, store = self._rw, self.store
        for table in self._tables:
            (count,) = rw.execute(self._sql(f"SELECT count(*) FROM main.{quote(table.name)}")).fetchone()
            if count != store.count(table.name):
                return False
        return True

    def _close_connections(self) -> None:
        for name in ("_rw", "_ro"):
            conn = self.__dict__.pop(name, None)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def _rebuild(self) -> None:
        """Recreate the file from the store's state: every visible row and its provenance."""
        self._close_connections()
        self._remove_files()
        self._connect()
        self._writer_ids.clear()
        self._entry_ids.clear()
        self._next_entry = 1
        self._stale.clear()
        self._unsourced.clear()
        self._sourced = 0
        rw = self._rw
        rw.execute("BEGIN")
        for statement in self._schema.sql:
            rw.execute(statement)
        for statement in _ORBIT_TABLES:
            rw.execute(statement)
        rw.executemany(
            self._sql("INSERT INTO orbit_columns VALUES (?, ?, ?, ?)"),
            [(i, j, t.name, c.name) for i, t in enumerate(self._tables) for j, c in enumerate(t.columns)],
        )
        self._set_meta("format", FORMAT)
        self._set_meta("address", self.address)
        self._set_meta("schema", self._schema_text)
        for table in self._tables:
            self._write_rows(
                dict.fromkeys(((table.name, key) for key in self.store.keys(table.name)), _VALUES | _SOURCES),
                existing=False,
            )
        self._commit()
        self._broken = False

    def _set_meta(self, key: str, value: IPLDKind) -> None:
        self._rw.execute(
            self._sql("INSERT OR REPLACE INTO orbit_meta (key, value) VALUES (?, ?)"), (key, value)
        )

    def _install_capture(self) -> None:
        """Create the temporary triggers that report each row change of a user statement.

        Each calls ``orbit_capture_<token>(table, kind, values...)``: kind 0 with the inserted row, 1
        with the deleted row, 2 and then 3 with an updated row's old and new values.
        """
        rw, token = self._rw, self._token
        call = f"SELECT orbit_capture_{token}"
        for i, table in enumerate(self._tables):
            names = [quote(c.name) for c in table.columns]
            on = f"main.{quote(table.name)} FOR EACH ROW"
            new = ", ".join(f"NEW.{c}" for c in names)
            old = ", ".join(f"OLD.{c}" for c in names)
            triggers = (
                f"AFTER INSERT ON {on} BEGIN {call}({i}, 0, {new}); END",
                f"AFTER DELETE ON {on} BEGIN {call}({i}, 1, {old}); END",
                f"AFTER UPDATE ON {on} BEGIN {call}({i}, 2, {old}); {call}({i}, 3, {new}); END",
            )
            for kind, body in zip("idu", triggers, strict=True):
                rw.execute(self._sql(f"CREATE TEMP TRIGGER orbit_{token}_{kind}{i} {body}"))

    # ------------------------------------------------------------------ authorizers

    def _authorize_rw(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if not self._user:
            return sqlite3.SQLITE_OK
        if trigger is not None and trigger.startswith(f"orbit_{self._token}_"):
            return sqlite3.SQLITE_OK
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        if action in _WRITE_ACTIONS and db == "main" and arg1 in self._table_index:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg1 in _READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    # ------------------------------------------------------------------ following the store

    def _begin(self) -> None:
        if not self._rw.in_transaction:
            self._rw.execute("BEGIN")

    def _commit(self) -> None:
        """Record what the file covers and commit (every stale row written, no transaction open).

        ``admitted`` and ``heads``: the rows are those of the log with these; ``provenance``: every
        row's provenance is written up to that admission count (later ones wait in ``_unsourced``).
        """
        log = self.store.log
        if not self._unsourced:
            self._sourced = len(log)
        self._begin()
        self._set_meta("admitted", len(log))
        self._set_meta("heads", b"".join(log.head_cids))
        self._set_meta("provenance", self._sourced)
        self._rw.execute("COMMIT")
        self._pending = 0

    def _mark(self, entries: Iterable[Entry], own: object) -> None:
        """Mark the rows the (applied) entries change.

        The rows of the entry carrying ``own`` (the statement this view is committing, whose effect
        it holds) need only their provenance.
        """
        stale, unsourced = self._stale, self._unsourced
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

    def _on_update(self, update: Update) -> None:
        with self._lock:
            if self._closed:
                return
            self._mark(update.entries, self._own)
            self._pending += len(update.entries)
            if self._txn is None and (self._pending >= _COMMIT_EVERY or len(self._stale) >= _DIRTY_MAX):
                try:
                    self._write_dirty(provenance=len(self._unsourced) >= _DIRTY_MAX)
                    self._commit()
                except sqlite3.Error:
                    self._broken = True  # rebuilt from the store before the next use

    def _write_dirty(self, *, values: bool = True, provenance: bool = True) -> None:
        """Write the stale rows' values (``values``) and the pending provenance (``provenance``).

        A stale row written without its provenance waits for it in ``_unsourced``.
        """
        stale, unsourced = self._stale, self._unsourced
        rows: dict[tuple[str, Key], int] = {}
        if values and stale:
            rows = dict.fromkeys(stale, _VALUES | _SOURCES if provenance else _VALUES)
            self._stale = {}
        if provenance and unsourced:
            self._unsourced = {}
            for row in unsourced:
                if row not in self._stale:  # a stale row is written whole later
                    rows.setdefault(row, _SOURCES)
        if not rows:
            return
        self._begin()  # one transaction for them all (outside one, SQLite would commit each row)
        try:
            self._write_rows(rows)
        except BaseException:
            for row, what in rows.items():
                if what & _VALUES:
                    self._stale[row] = None
                else:
                    self._unsourced[row] = None
            raise
        if not provenance:
            self._unsourced.update(dict.fromkeys(rows))

    def _write_rows(self, rows: dict[tuple[str, Key], int], *, existing: bool = True) -> None:
        """Write the store's current state of rows: values (flag ``_VALUES``), provenance (``_SOURCES``)."""
        with gc_paused():  # a few tuples per row, no cycles
            self._write_rows_now(rows, existing=existing)

    def _write_rows_now(self, rows: dict[tuple[str, Key], int], *, existing: bool) -> None:
        view_row, rw = self.store.view_row, self._rw
        table_index = self._table_index
        upserts: dict[str, list[tuple[Any, ...]]] = {}
        deletes: dict[str, list[Key]] = {}
        forget: list[tuple[int, str]] = []
        provenance: list[tuple[int, str, str]] = []
        entry_ids = self._entry_ids
        new_entries: list[tuple[int, bytes, int, int]] = []
        writer_id = self._writer_id
        for (table, key), what in rows.items():
            state = view_row(table, key)
            if state is None:
                if existing:
                    if what & _SOURCES:
                        forget.append((table_index[table], key_text(key)))
                    if what & _VALUES:
                        deletes.setdefault(table, []).append(key)
                continue
            values, sources = state
            if what & _VALUES:
                found = upserts.get(table)
                if found is None:
                    upserts[table] = [values]
                else:
                    found.append(values)
                if not what & _SOURCES:
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
                            new_entries.append((number, source[2], writer_id(source[1]), source[0]))
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

    def _writer_id(self, writer: bytes) -> int:
        found = self._writer_ids.get(writer)
        if found is None:
            rw, did = self._rw, key_to_did(writer)
            rw.execute(self._sql("INSERT OR IGNORE INTO orbit_writers (did) VALUES (?)"), (did,))
            (found,) = rw.execute(self._sql("SELECT id FROM orbit_writers WHERE did = ?"), (did,)).fetchone()
            self._writer_ids[writer] = found
        assert found is not None
        return found

    def _repair(self) -> None:
        """Rebuild after a failed write to the file (called with the lock held)."""
        if self._broken and self._txn is None:
            with contextlib.suppress(sqlite3.Error):
                self._rw.execute("ROLLBACK")
            self._rebuild()
            self._install_capture()
            self._open_reader()

    def _lost(self) -> None:
        """Rebuild after SQLite rolled back the whole transaction (``OR ROLLBACK``; lock held).

        What was written since the last commit is gone; if the rebuild fails, the next use retries.
        """
        self._txn = None
        self._broken = True
        with contextlib.suppress(sqlite3.Error):
            self._repair()

    def flush(self, *, provenance: bool = True) -> None:
        """Write the stale rows (and the pending provenance) and commit, for the read-only connection.

        Raises:
            SqlError: the file could not be written.
        """
        with self.store.guard, self._lock:
            self._check_open()
            try:
                if self._broken:
                    self._repair()
                if self._txn is None and (self._pending or (provenance and self._unsourced)):
                    self._write_dirty(provenance=provenance or len(self._unsourced) >= _DIRTY_MAX)
                    self._commit()
            except sqlite3.Error as e:
                self._broken = True
                raise translate(e) from e

    # ------------------------------------------------------------------ reading

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Run a read-only query on the committed view and return its rows and description.

        Raises:
            SqlError: the query failed (bad SQL, wrong parameters) or tried to write
                (:class:`~orbit.sql.errors.ProgrammingError`).
        """
        if self._pending or self._broken or (self._unsourced and _names_orbit(sql)):
            self.flush(provenance=_names_orbit(sql))
        with self._read_lock:
            self._check_open()
            try:
                cursor = self._ro.execute(sql, params)
                rows = cursor.fetchall()
            except sqlite3.Error as e:
                raise translate(e, sql) from e
            return Result(cursor.description, rows, -1, None)

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the view and return its rows (see :meth:`query`).

        Raises:
            SqlError: the query failed, or tried to write.
        """
        if self._pending or self._broken or (self._unsourced and _names_orbit(sql)):
            self.flush(provenance=_names_orbit(sql))
        with self._read_lock:
            try:
                return self._ro.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise translate(e, sql) from e
            except AttributeError:
                self._check_open()
                raise

    # ------------------------------------------------------------------ writing

    def run(
        self,
        owner: object,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | Iterable[Sequence[Any] | dict[str, Any]] = (),
        *,
        many: bool = False,
    ) -> Result:
        """Run a statement inside ``owner``'s transaction on the view (opened if the statement writes).

        Raises:
            SqlError: the statement failed (its own changes are undone; the transaction stays open),
                or another owner has a transaction open (:class:`~orbit.sql.errors.OperationalError`).
        """
        with self._lock:
            self._check_open()
            txn = self._txn
            if txn is not None and txn.owner is not owner:
                raise OperationalError("another transaction is open on this database", sql)
            rw = self._rw
            try:
                if self._broken:
                    self._repair()
                # the statement runs against the current rows (as of its transaction's start);
                # provenance is written first only if the statement can read it (it names an orbit_
                # table: the schema has no views that could hide one)
                reads_provenance = self._unsourced and _names_orbit(sql)
                if txn is None:
                    if self._stale or reads_provenance:
                        self._write_dirty(provenance=bool(reads_provenance))
                elif reads_provenance:
                    self._write_dirty(values=False)
                self._begin()
                if txn is not None:  # a failing statement inside a transaction is undone alone
                    rw.execute(self._stmt_savepoint)
            except sqlite3.Error as e:
                self._broken = True
                raise translate(e, sql) from e
            captured = self._captured
            if txn is None:
                captured.clear()
            before = len(captured)
            self._user = self._capturing = True
            try:
                cursor = rw.executemany(sql, params) if many else rw.execute(sql, params)  # type: ignore[arg-type]
                description = cursor.description
                rows = cursor.fetchall() if description else []
                result = Result(description, rows, cursor.rowcount, cursor.lastrowid)
            except BaseException as e:  # SQLite's error, or e.g. one raised by executemany's parameters
                self._user = self._capturing = False
                if not rw.in_transaction:  # INSERT OR ROLLBACK: SQLite dropped the whole transaction
                    self._lost()
                elif txn is None:  # SQLite undid the statement (or, under OR FAIL, part of it)
                    self._undo(captured[before:])
                    del captured[before:]
                else:
                    del captured[before:]
                    try:
                        rw.execute(self._stmt_rollback_to)
                        rw.execute(self._stmt_release)
                    except sqlite3.Error:
                        self._lost()
                if isinstance(e, sqlite3.Error):
                    raise translate(e, sql) from e
                raise
            finally:
                self._user = self._capturing = False
            if txn is not None:
                try:
                    rw.execute(self._stmt_release)
                except sqlite3.Error as e:
                    self._lost()
                    raise translate(e, sql) from e
            elif len(captured) != before:
                self._txn = _Txn(owner)
            return result

    def _undo(self, events: Iterable[tuple[Any, ...]]) -> None:
        """Mark the rows these captured events touched stale.

        Rewritten from the store before the view is next used, they lose what statements did to them
        that no entry carries.
        """
        stale, tables = self._stale, self._tables
        for event in events:
            spec = tables[event[0]]
            stale[(spec.name, tuple(event[2 + p] for p in spec.key_positions))] = None

    def in_transaction(self, owner: object) -> bool:
        """Whether ``owner`` has a transaction open."""
        txn = self._txn
        return txn is not None and txn.owner is owner

    def _drop(self, txn: _Txn) -> None:
        """Roll back ``txn`` (lock held): the rows it changed are rewritten from the store."""
        self._txn = None
        events, self._captured = self._captured, []
        self._undo(events)

    def rollback(self, owner: object) -> None:
        """Drop ``owner``'s open transaction (nothing is written).

        Raises:
            SqlError: the view could not be written.
        """
        with self._lock:
            txn = self._txn
            if txn is None or txn.owner is not owner:
                return
            try:
                self._drop(txn)
            except sqlite3.Error as e:
                raise translate(e) from e

    def commit(self, owner: object) -> CID | None:
        """Append ``owner``'s open transaction to the log as one signed entry; return its CID.

        The transaction's changes stay in the view once the entry is appended (they are what merging
        the entry gives); if anything fails the rows are rewritten from the store.

        Returns:
            The entry's CID, or None if the transaction changed nothing.

        Raises:
            DataError: a value cannot be stored in the log (an infinite REAL), or the transaction is
                too large for one entry; nothing was written.
            SqlError: the view could not be read or written.
        """
        with self._lock:
            txn = self._txn
            if txn is None or txn.owner is not owner:
                return None
            captured = self._captured
            try:
                changes = self._collapse(captured)
                if not changes:
                    self._drop(txn)
                    return None
                try:
                    payload = self.store.rows_op(changes)
                except InvalidOperationError as e:
                    raise DataError(str(e)) from e
            except BaseException:
                if self._txn is txn:
                    self._drop(txn)
                raise
            self._own = payload
        # appended without the view's lock (the store takes its guard, which joins hold while they
        # call back into the view); the open transaction keeps other writers out meanwhile
        try:
            cid = self.store.append_op(payload)
        except BaseException as e:
            with self._lock:
                self._own = None
                self._drop(txn)  # its rows are redone from the store, whether the entry got in or not
            if isinstance(e.__cause__, EntryTooLargeError):  # the log refused to sign it
                raise DataError(
                    f"the transaction's {len(changes)} row changes make an entry of {e.__cause__.size:,} "
                    f"bytes, more than one entry holds ({e.__cause__.limit:,}); split it into smaller "
                    "transactions"
                ) from e
            raise
        with self.store.guard, self._lock:
            self._own = None
            self._txn = None
            self._captured = []
            try:
                if self._pending >= _COMMIT_EVERY or len(self._stale) >= _DIRTY_MAX:
                    self._write_dirty(provenance=len(self._unsourced) >= _DIRTY_MAX)
                    self._commit()
            except sqlite3.Error:
                self._broken = True  # the entry is in the log: the view is rebuilt before its next use
        return cid

    def _collapse(self, captured: list[tuple[Any, ...]]) -> list[tuple[str, Key, dict[str, IPLDKind] | None]]:
        """Turn a transaction's row events into row changes (net effect per row, first-touched first)."""
        if len(captured) == 1 and captured[0][1] == 0:  # one inserted row
            event = captured[0]
            spec = self._tables[event[0]]
            key = tuple(event[2 + p] for p in spec.key_positions)
            names = spec.column_names
            return [(spec.name, key, {names[j]: event[2 + j] for j in self._others[event[0]]})]
        state: dict[tuple[int, Key], list[Any]] = {}  # [before, after, replaced]

        def inserted(i: int, key: Key, new: tuple[Any, ...]) -> None:
            found = state.get((i, key))
            if found is None:
                state[(i, key)] = [None, new, False]
            else:
                if found[1] is None and found[0] is not None:
                    found[2] = True
                found[1] = new

        def deleted(i: int, key: Key, old: tuple[Any, ...]) -> None:
            found = state.get((i, key))
            if found is None:
                state[(i, key)] = [old, None, False]
            else:
                found[1] = None

        events = iter(captured)
        for event in events:
            i, kind = event[0], event[1]
            spec = self._tables[i]
            positions = spec.key_positions
            old = new = event[2:]
            if kind == 2:
                new = next(events)[2:]  # the same row's new values follow its old ones
            if kind == 0:
                inserted(i, tuple(new[p] for p in positions), new)
            elif kind == 1:
                deleted(i, tuple(old[p] for p in positions), old)
            else:
                old_key, new_key = tuple(old[p] for p in positions), tuple(new[p] for p in positions)
                if old_key == new_key:
                    found = state.get((i, old_key))
                    if found is None:
                        state[(i, old_key)] = [old, new, False]
                    else:
                        found[1] = new
                else:
                    deleted(i, old_key, old)
                    inserted(i, new_key, new)
        changes: list[tuple[str, Key, dict[str, IPLDKind] | None]] = []
        for (i, key), (before, after, replaced) in state.items():
            spec = self._tables[i]
            names = spec.column_names
            others = self._others[i]
            if after is None:
                if before is not None:
                    changes.append((spec.name, key, None))
            elif before is None or replaced:
                if replaced:
                    changes.append((spec.name, key, None))
                changes.append((spec.name, key, {names[j]: after[j] for j in others}))
            else:
                cells = {names[j]: after[j] for j in others if _differs(before[j], after[j])}
                if cells:
                    changes.append((spec.name, key, cells))
        return changes

    # ------------------------------------------------------------------ closing

    def _check_open(self) -> None:
        if self._closed:
            from orbit.sql.errors import InterfaceError

            raise InterfaceError(f"the SQL view of {self.address} is closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Commit what was applied, drop any open transaction, close the file. Idempotent.

        Raises:
            SqlError: the last commit failed (the view catches up on the next open).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            try:
                if self._txn is not None:
                    self._drop(self._txn)
                if not self._broken and (self._pending or self._unsourced or self._rw.in_transaction):
                    self._write_dirty()
                    self._commit()
            except sqlite3.Error as e:
                raise translate(e) from e
            finally:
                with self._read_lock:
                    self._close_connections()


_NAMES_ORBIT: dict[str, bool] = {}


def _names_orbit(sql: str) -> bool:
    """Whether a statement's text names an ``orbit_`` table (case-insensitive; remembered per text)."""
    found = _NAMES_ORBIT.get(sql)
    if found is None:
        if len(_NAMES_ORBIT) >= 1_024:
            _NAMES_ORBIT.clear()
        found = _NAMES_ORBIT[sql] = "orbit_" in sql.lower()
    return found


def _cid_text(value: object) -> str | None:
    """``orbit_cid(blob)``: a CID's base32 text (what ``orbit_provenance.entry`` shows)."""
    return CID(value).encode() if isinstance(value, bytes) else None


def _differs(a: object, b: object) -> bool:
    return type(a) is not type(b) or a != b


def _authorize_read(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY
