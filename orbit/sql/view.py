"""The SQLite view of a table store: derived state, read with SQL, written through the log.

:class:`SqlView` keeps one SQLite file (WAL) per table database, holding the user's tables (as the
manifest's SQL creates them) and the provenance of every cell. It follows the store: each applied entry
rewrites the rows it touched, from the store's merged state (O(cells of the rows touched), never a
rebuild). The file is derived state, so it is written with ``synchronous=OFF`` and committed in groups;
it records the admission count and heads it covers (``orbit_meta``). On open it is checked against the
log: it catches up on what was admitted since, and is rebuilt from the store when anything does not
match (another address or schema, a newer count, other heads, different row counts, an unreadable
file). Deleting the file loses nothing.

Reads (:meth:`SqlView.query`) go through a second, read-only connection (``mode=ro``, ``query_only``
and an authorizer that allows only reading). Writes (:meth:`SqlView.run`) execute the statement on
the writable connection inside a savepoint while temporary triggers record every row change, roll the
savepoint back, and hand the changes to the store, which appends them as one signed entry; the view
then applies that entry like any other. Values are captured after SQLite evaluated them, so
``random()`` or ``datetime('now')`` are evaluated once, by the writer.
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
from ipfs_log.codec import IPLDKind, encode
from ipfs_log.entry import DEFAULT_LIMITS, Entry
from ipfs_log.identity import key_to_did
from orbit.sql.errors import DataError, OperationalError, SqlError, translate
from orbit.sql.schema import quote
from stores.base import Update
from stores.errors import InvalidOperationError
from stores.table import Key, Table, TableSchema

__all__ = ["FORMAT", "Result", "SqlView", "key_text"]

FORMAT: Final = 2
"""Version of the view file's layout (``orbit_meta.format``)."""
_COMMIT_EVERY: Final = 1_000
"""Commit the view after this many applied entries (a read commits earlier)."""
_ENTRY_SLACK: Final = 4_096
"""Room left in an entry for its envelope when checking a transaction's size."""

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
    "CREATE TABLE orbit_cells (tbl TEXT NOT NULL, pk TEXT NOT NULL, col TEXT NOT NULL, entry BLOB NOT NULL,"
    " writer INTEGER NOT NULL, clock INTEGER NOT NULL, PRIMARY KEY (tbl, pk, col)) WITHOUT ROWID",
    "CREATE VIEW orbit_provenance AS SELECT c.tbl AS table_name, c.pk AS pk, c.col AS column_name,"
    " w.did AS writer, orbit_cid(c.entry) AS entry, c.clock AS clock FROM orbit_cells c"
    " JOIN orbit_writers w ON w.id = c.writer",
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
    """A writer's open transaction on the view: a savepoint whose changes are rolled back at the end."""

    __slots__ = ("name", "owner")

    def __init__(self, owner: object, name: str) -> None:
        self.owner = owner
        self.name = name


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
        self._width = max(len(t.columns) for t in self._tables)
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._token = secrets.token_hex(6)
        self._tag = f"/*orbit-{self._token}*/ "
        self._user = False
        self._capturing = False
        self._txn: _Txn | None = None
        self._deferred: dict[tuple[str, Key], None] = {}
        self._pending = 0
        self._broken = False
        self._closed = False
        self._covered = (len(store.log), b"".join(store.log.head_cids))
        self._writer_ids: dict[bytes, int] = {}
        self._rw: sqlite3.Connection
        self._ro: sqlite3.Connection
        self._schema_text = json.dumps(list(self._schema.sql))
        self._savepoint = self._sql("SAVEPOINT orbit_txn")
        self._rollback_to = self._sql("ROLLBACK TO orbit_txn")
        self._release = self._sql("RELEASE orbit_txn")
        self._captured_sql = self._sql(f"SELECT * FROM temp.orbit_changes_{self._token} ORDER BY seq")
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
        self._insert_cells = self._sql("INSERT OR REPLACE INTO orbit_cells VALUES (?, ?, ?, ?, ?, ?)")
        self._cell_count = {t.name: len(t.columns) - len(t.primary_key) for t in self._tables}
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
        rw.create_function("orbit_capture", 0, self._is_capturing)
        rw.create_function("orbit_cid", 1, _cid_text, deterministic=True)
        rw.set_authorizer(self._authorize_rw)

    def _is_capturing(self) -> int:
        return 1 if self._capturing else 0

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
        elif late:
            self._begin()
            self._materialise(self.store.touched(late))
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

    def _check(self) -> list[Entry] | None:
        """Return the entries to catch up on (empty if none), or None if the file must be rebuilt."""
        rw = self._rw
        if not rw.execute("SELECT 1 FROM sqlite_schema WHERE name = 'orbit_meta'").fetchone():
            return None
        meta = dict(rw.execute("SELECT key, value FROM orbit_meta").fetchall())
        if (
            meta.get("format") != FORMAT
            or meta.get("address") != self.address
            or meta.get("schema") != self._schema_text
            or type(meta.get("admitted")) is not int
        ):
            return None
        admitted, heads = meta["admitted"], meta.get("heads")
        log = self.store.log
        if admitted > len(log):
            return None
        if admitted == len(log):
            if heads != b"".join(log.head_cids):
                return None
            return [] if self._counts_match() else None
        late = self._admitted_since(admitted) if self._admitted_since is not None else None
        return late or None

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
        rw = self._rw
        rw.execute("BEGIN")
        for statement in self._schema.sql:
            rw.execute(statement)
        for statement in _ORBIT_TABLES:
            rw.execute(statement)
        self._set_meta("format", FORMAT)
        self._set_meta("address", self.address)
        self._set_meta("schema", self._schema_text)
        for table in self._tables:
            self._materialise(((table.name, key) for key in self.store.keys(table.name)), existing=False)
        self._covered = (len(self.store.log), b"".join(self.store.log.head_cids))
        self._commit()
        self._broken = False

    def _set_meta(self, key: str, value: IPLDKind) -> None:
        self._rw.execute(
            self._sql("INSERT OR REPLACE INTO orbit_meta (key, value) VALUES (?, ?)"), (key, value)
        )

    def _install_capture(self) -> None:
        rw, width, token = self._rw, self._width, self._token
        old = [f"o{i}" for i in range(width)]
        new = [f"n{i}" for i in range(width)]
        rw.execute(
            self._sql(
                f"CREATE TEMP TABLE orbit_changes_{token} (seq INTEGER PRIMARY KEY, tbl, kind, "
                + ", ".join(old + new)
                + ")"
            )
        )
        for i, table in enumerate(self._tables):
            names = [quote(c.name) for c in table.columns]
            n = len(names)
            target = f"orbit_changes_{token}"
            olds = ", ".join(old[:n])
            news = ", ".join(new[:n])
            on = f"main.{quote(table.name)} FOR EACH ROW WHEN orbit_capture()"
            triggers = (
                f"AFTER INSERT ON {on} BEGIN INSERT INTO {target} (tbl, kind, {news}) VALUES ({i}, 0, "
                + ", ".join(f"NEW.{c}" for c in names)
                + "); END",
                f"AFTER DELETE ON {on} BEGIN INSERT INTO {target} (tbl, kind, {olds}) VALUES ({i}, 1, "
                + ", ".join(f"OLD.{c}" for c in names)
                + "); END",
                f"AFTER UPDATE ON {on} BEGIN INSERT INTO {target} (tbl, kind, {olds}, {news}) "
                f"VALUES ({i}, 2, "
                + ", ".join([f"OLD.{c}" for c in names] + [f"NEW.{c}" for c in names])
                + "); END",
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
        admitted, heads = self._covered
        self._begin()
        self._set_meta("admitted", admitted)
        self._set_meta("heads", heads)
        self._rw.execute("COMMIT")
        self._pending = 0

    def _on_update(self, update: Update) -> None:
        rows = self.store.touched(update.entries)
        log = self.store.log
        with self._lock:
            if self._closed:
                return
            self._covered = (len(log), b"".join(log.head_cids))
            if self._txn is not None:
                self._deferred.update(rows)
                return
            try:
                self._begin()
                self._materialise(rows)
                self._pending += len(update.entries)
                if self._pending >= _COMMIT_EVERY:
                    self._commit()
            except sqlite3.Error:
                self._broken = True  # rebuilt from the store before the next use

    def _materialise(self, rows: Iterable[tuple[str, Key]], *, existing: bool = True) -> None:
        """Write the store's current state of each row (and its provenance) into the view."""
        store, rw = self.store, self._rw
        upserts: dict[str, list[tuple[Any, ...]]] = {}
        deletes: dict[str, list[Key]] = {}
        forget: list[tuple[str, str]] = []
        cells: list[tuple[str, str, str, bytes, int, int]] = []
        writer_id = self._writer_id
        by_name, cell_count = self._schema.by_name, self._cell_count
        for table, key in rows:
            spec = by_name[table]
            text = key_text(key)
            state = store.row_state(table, key)
            if state is None:
                if existing:
                    forget.append((table, text))
                    deletes.setdefault(table, []).append(key)
                continue
            values, alive, changed = state
            if existing and len(changed) != cell_count[table]:  # some cells unset: forget the old ones
                forget.append((table, text))
            upserts.setdefault(table, []).append(tuple(values.values()))
            (time, writer, cid), _ = alive
            row = (cid, writer_id(writer), time)
            for name in spec.primary_key:
                cells.append((table, text, name, *row))
            for name, ((time, writer, cid), _) in changed.items():
                cells.append((table, text, name, cid, writer_id(writer), time))
        if forget:
            rw.executemany(self._sql("DELETE FROM orbit_cells WHERE tbl = ? AND pk = ?"), forget)
        for table, keys in deletes.items():
            rw.executemany(self._delete_sql[table], keys)
        for table, tuples in upserts.items():
            rw.executemany(self._upsert_sql[table], tuples)
        if cells:
            rw.executemany(self._insert_cells, cells)

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

    def flush(self) -> None:
        """Commit what the view applied, so the read-only connection sees it.

        Raises:
            SqlError: the file could not be written.
        """
        with self._lock:
            self._check_open()
            if self._broken:
                self._repair()
            if self._pending and self._txn is None:
                try:
                    self._commit()
                except sqlite3.Error as e:
                    raise translate(e) from e

    # ------------------------------------------------------------------ reading

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Run a read-only query on the committed view and return its rows and description.

        Raises:
            SqlError: the query failed (bad SQL, wrong parameters) or tried to write
                (:class:`~orbit.sql.errors.ProgrammingError`).
        """
        if self._pending or self._broken:
            self.flush()
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
        if self._pending or self._broken:
            self.flush()
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
            if self._broken:
                self._repair()
            rw = self._rw
            self._begin()
            name = "orbit_txn"
            if txn is None:
                rw.execute(self._savepoint)
            before = rw.total_changes
            self._user = self._capturing = True
            try:
                cursor = rw.executemany(sql, params) if many else rw.execute(sql, params)  # type: ignore[arg-type]
                description = cursor.description
                rows = cursor.fetchall() if description else []
                result = Result(description, rows, cursor.rowcount, cursor.lastrowid)
            except sqlite3.Error as e:
                self._user = self._capturing = False
                if txn is None:
                    self._end(name)
                raise translate(e, sql) from e
            finally:
                self._user = self._capturing = False
            if txn is None:
                if rw.total_changes != before:
                    self._txn = _Txn(owner, name)
                else:
                    self._end(name)
            return result

    def _end(self, name: str) -> None:
        self._rw.execute(self._rollback_to)
        self._rw.execute(self._release)

    def in_transaction(self, owner: object) -> bool:
        """Whether ``owner`` has a transaction open."""
        txn = self._txn
        return txn is not None and txn.owner is owner

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
                self._end(txn.name)
            except sqlite3.Error as e:
                raise translate(e) from e
            finally:
                self._txn = None
                self._catch_up_deferred()

    def commit(self, owner: object) -> CID | None:
        """Append ``owner``'s open transaction to the log as one signed entry; return its CID.

        The transaction's changes are undone in the view and come back when the entry is applied.

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
            try:
                captured = self._rw.execute(self._captured_sql).fetchall()
                self._end(txn.name)
            except sqlite3.Error as e:
                raise translate(e) from e
            finally:
                self._txn = None
                self._catch_up_deferred()
            changes = self._collapse(captured)
        if not changes:
            return None
        try:
            payload = self.store.rows_op(changes)
        except InvalidOperationError as e:
            raise DataError(str(e)) from e
        if len(changes) > 64 or _size_hint(changes) > 64_000:
            size = len(encode(payload))
            if size > DEFAULT_LIMITS.max_entry_bytes - _ENTRY_SLACK:
                raise DataError(
                    f"the transaction's {len(changes)} row changes take {size:,} bytes, more than one entry "
                    f"holds ({DEFAULT_LIMITS.max_entry_bytes:,}); split it into smaller transactions"
                )
        return self.store.append_op(payload)

    def _catch_up_deferred(self) -> None:
        if self._deferred:
            rows, self._deferred = self._deferred, {}
            try:
                self._materialise(rows)
                self._pending += 1
            except sqlite3.Error:
                self._broken = True

    def _collapse(self, captured: list[tuple[Any, ...]]) -> list[tuple[str, Key, dict[str, IPLDKind] | None]]:
        """Turn a transaction's row events into row changes (net effect per row, first-touched first)."""
        width = self._width
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

        for row in captured:
            i, kind = row[1], row[2]
            spec = self._tables[i]
            n = len(spec.columns)
            positions = spec.key_positions
            old, new = row[3 : 3 + n], row[3 + width : 3 + width + n]
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
            others = [j for j in range(len(names)) if j not in spec.key_positions]
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
                    self._end(self._txn.name)
                    self._txn = None
                if not self._broken and self._rw.in_transaction:
                    self._commit()
            except sqlite3.Error as e:
                raise translate(e) from e
            finally:
                with self._read_lock:
                    self._close_connections()


def _cid_text(value: object) -> str | None:
    """``orbit_cid(blob)``: a CID's base32 text (what ``orbit_provenance.entry`` shows)."""
    return CID(value).encode() if isinstance(value, bytes) else None


def _size_hint(changes: list[tuple[str, Key, dict[str, IPLDKind] | None]]) -> int:
    """A lower bound of the encoded size of the changes' text and blob values."""
    total = 0
    for _, key, cells in changes:
        for value in (*key, *(cells.values() if cells else ())):
            if isinstance(value, (str, bytes)):
                total += len(value)
    return total


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
