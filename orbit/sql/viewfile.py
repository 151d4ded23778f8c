"""The view's SQLite file: its connections and layout, checked against the log on open, caught up or rebuilt.

One SQLite file (WAL, ``synchronous=OFF``: derived state) per table database, holding the user's
tables (as the manifest's SQL creates them) and orbit's own (``orbit_meta``, ``orbit_writers``,
``orbit_entries``, ``orbit_columns``, ``orbit_rows`` and the view ``orbit_provenance``). It records the
admission count and heads its rows cover, and the count up to which every row's provenance is written
(``orbit_meta``); it is only committed with every dirty row written, so what it records is what it
holds. On open it is checked against the log: it catches up on what was admitted since (rewriting the
rows the later entries touched), and is rebuilt from the store when anything does not match (another
address, schema or format, a newer count, other heads, different row counts, an unreadable file).
Deleting the file loses nothing.

Every statement orbit runs on the file starts with the view's tag (a comment with a random token).
SQLite calls the authorizer only when it prepares a statement, and ``sqlite3`` reuses a prepared
statement for the same text; so a user's statement, which never carries the tag, can never run one of
orbit's own statements (its ``COMMIT``, say) without the authorizer seeing it.

Internal to :mod:`orbit.sql`: ``sqlite3`` errors raised here, and the ``OSError`` of deleting or
creating the file, are translated by :class:`~orbit.sql.view.SqlView`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from orbit.sql.authorize import authorize_read
from orbit.sql.materialize import SOURCES, VALUES, DirtyRows, RowWriter
from orbit.sql.schema import quote
from stores.table import Table

__all__ = ["FORMAT", "ViewFile", "names_orbit"]

FORMAT: Final = 3
"""Version of the view file's layout (``orbit_meta.format``)."""

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


class ViewFile:
    """The SQLite file of a table store's view, kept in ``path``.

    Args:
        path: the SQLite file.
        store: the table store the file holds the rows of.
        address: the database address (recorded, and checked on open).
        tag: the comment that starts every statement orbit runs on the file (see the module).
        dirty: the rows the file lags the store on (emptied by a rebuild, filled by a catch-up).
        writer: writes the store's rows into the file.
        on_connect: called with each new writable connection (before anything runs on it).
        admitted_since: returns the entries admitted as number ``n`` or later (or None if it cannot
            tell); used to catch up after a kill. Without it, a file that lags is rebuilt.
    """

    def __init__(
        self,
        path: Path,
        *,
        store: Table,
        address: str,
        tag: str,
        dirty: DirtyRows,
        writer: RowWriter,
        on_connect: Callable[[sqlite3.Connection], None],
        admitted_since: Callable[[int], list[Entry] | None] | None = None,
    ) -> None:
        self.path = Path(path)
        """The SQLite file."""
        self._store = store
        self._address = address
        self._tag = tag
        self._dirty = dirty
        self._writer = writer
        self._on_connect = on_connect
        self._admitted_since = admitted_since
        self._schema = store.schema
        self._tables = list(self._schema.tables)
        self._schema_text = json.dumps(list(self._schema.sql))
        self._sourced = 0  # the admission count up to which the file holds every row's provenance
        self._trace: Callable[[str, bool], None] | None = None
        self.rw: sqlite3.Connection
        """The writable connection (orbit's statements, and user statements under capture)."""
        self.ro: sqlite3.Connection
        """The read-only connection (queries): absent until :meth:`open_reader`, and once closed."""

    # ------------------------------------------------------------------ connections

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=512)
        self.rw = rw
        for pragma in (
            "journal_mode = WAL",
            "synchronous = OFF",
            "recursive_triggers = ON",
            "temp_store = MEMORY",
            "foreign_keys = OFF",
        ):
            rw.execute(self._tag + f"PRAGMA {pragma}")
        rw.create_function("orbit_cid", 1, _cid_text, deterministic=True)
        self._on_connect(rw)
        if self._trace is not None:
            self._set_trace(rw, self._trace)

    def open_reader(self) -> None:
        """Open the read-only connection (:attr:`ro`: ``mode=ro``, ``query_only``, reads only)."""
        ro = sqlite3.connect(
            f"file:{self.path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
        )
        ro.execute(self._tag + "PRAGMA query_only = ON")
        ro.create_function("orbit_cid", 1, _cid_text, deterministic=True)
        ro.set_authorizer(authorize_read)
        self.ro = ro

    def close(self) -> None:
        """Close both connections (errors ignored); :attr:`rw` and :attr:`ro` are absent after."""
        for name in ("rw", "ro"):
            conn = self.__dict__.pop(name, None)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def trace(self, callback: Callable[[str, bool], None] | None) -> None:
        """Call ``callback(statement, in_transaction)`` for each statement the writable connection runs.

        A test and debugging seam (``sqlite3``'s trace callback), kept across reconnections; None stops it.
        """
        self._trace = callback
        rw = self.__dict__.get("rw")
        if rw is not None:
            self._set_trace(rw, callback)

    @staticmethod
    def _set_trace(rw: sqlite3.Connection, callback: Callable[[str, bool], None] | None) -> None:
        if callback is None:
            rw.set_trace_callback(None)
        else:
            rw.set_trace_callback(lambda statement: callback(statement, rw.in_transaction))

    # ------------------------------------------------------------------ opening, checking, rebuilding

    def open(self) -> None:
        """Open the writable connection on the file, and check it: catch up, or rebuild it.

        Raises:
            sqlite3.Error: the file cannot be created or written.
            OSError: the file (or its directory) cannot be deleted or created.
        """
        try:
            self._connect()
            late = self._check()
        except sqlite3.DatabaseError:
            self.close()
            self._remove_files()
            self._connect()
            late = None
        if late is None:
            self.rebuild()
            return
        values, provenance = late
        (last,) = self.rw.execute(self._tag + "SELECT coalesce(max(id), 0) FROM orbit_entries").fetchone()
        self._writer.reset(last + 1)  # new provenance entries are numbered after the file's
        dirty = self._dirty
        dirty.mark_unsourced(self._store.touched(provenance))
        if values:
            dirty.mark_stale(self._store.touched(values))
            dirty.write(self._writer, self.rw, provenance=False)
            self.commit()
            if not self._counts_match():
                self.rebuild()

    def _check(self) -> tuple[list[Entry], list[Entry]] | None:
        """Return the entries whose rows, and those whose provenance, the file lacks; None: rebuild it."""
        rw = self.rw
        if not rw.execute(self._tag + "SELECT 1 FROM sqlite_schema WHERE name = 'orbit_meta'").fetchone():
            return None
        meta = dict(rw.execute(self._tag + "SELECT key, value FROM orbit_meta").fetchall())
        admitted, sourced = meta.get("admitted"), meta.get("provenance")
        if (
            meta.get("format") != FORMAT
            or meta.get("address") != self._address
            or meta.get("schema") != self._schema_text
            or type(admitted) is not int
            or type(sourced) is not int
            or not 0 <= sourced <= admitted
        ):
            return None
        log = self._store.log
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

    def _counts_match(self) -> bool:
        rw, store = self.rw, self._store
        for table in self._tables:
            (count,) = rw.execute(self._tag + f"SELECT count(*) FROM main.{quote(table.name)}").fetchone()
            if count != store.count(table.name):
                return False
        return True

    def rebuild(self) -> None:
        """Recreate the file from the store's state: every visible row and its provenance.

        The read-only connection is closed too (reopen it with :meth:`open_reader`).

        Raises:
            sqlite3.Error: the file cannot be created or written.
            OSError: the file (or its directory) cannot be deleted or created.
        """
        self.close()
        self._remove_files()
        self._connect()
        self._writer.reset(1)
        self._dirty.clear()
        self._sourced = 0
        rw = self.rw
        self.begin()
        for statement in (*self._schema.sql, *_ORBIT_TABLES):
            rw.execute(self._tag + statement)
        rw.executemany(
            self._tag + "INSERT INTO orbit_columns VALUES (?, ?, ?, ?)",
            [(i, j, t.name, c.name) for i, t in enumerate(self._tables) for j, c in enumerate(t.columns)],
        )
        self._set_meta("format", FORMAT)
        self._set_meta("address", self._address)
        self._set_meta("schema", self._schema_text)
        store = self._store
        for table in self._tables:
            self._writer.write(
                rw,
                dict.fromkeys(((table.name, key) for key in store.keys(table.name)), VALUES | SOURCES),
                existing=False,
            )
        self.commit()

    def _set_meta(self, key: str, value: IPLDKind) -> None:
        self.rw.execute(
            self._tag + "INSERT OR REPLACE INTO orbit_meta (key, value) VALUES (?, ?)", (key, value)
        )

    # ------------------------------------------------------------------ following the store

    def begin(self) -> None:
        """Open a transaction on the writable connection unless one is open.

        Raises:
            sqlite3.Error: the transaction could not be opened.
        """
        self._writer.begin(self.rw)

    def in_transaction(self) -> bool:
        """Whether the writable connection has a transaction open (False if it is closed or absent)."""
        rw = self.__dict__.get("rw")
        try:
            return rw is not None and rw.in_transaction
        except sqlite3.Error:  # closed
            return False

    def rollback(self) -> None:
        """Roll back the writable connection's open transaction, if it has one (errors ignored).

        For a file about to be rebuilt: the connection may be closed, or absent after a failed rebuild.
        """
        if self.in_transaction():
            with contextlib.suppress(sqlite3.Error):
                self.rw.execute(self._tag + "ROLLBACK")

    def write_dirty(self, *, values: bool = True, provenance: bool = True) -> None:
        """Write the dirty rows' values (``values``) and the pending provenance (``provenance``).

        Raises:
            sqlite3.Error: the file could not be written (the rows stay marked).
        """
        self._dirty.write(self._writer, self.rw, values=values, provenance=provenance)

    def commit(self) -> None:
        """Record what the file covers and commit (every stale row written, no transaction open).

        ``admitted`` and ``heads``: the rows are those of the log with these; ``provenance``: every
        row's provenance is written up to that admission count (later ones wait, unsourced).

        Raises:
            sqlite3.Error: the file could not be written.
        """
        log = self._store.log
        if not self._dirty.unsourced:
            self._sourced = len(log)
        self.begin()
        self._set_meta("admitted", len(log))
        self._set_meta("heads", b"".join(log.head_cids))
        self._set_meta("provenance", self._sourced)
        self.rw.execute(self._tag + "COMMIT")
        self._dirty.committed()


_NAMES_ORBIT: dict[str, bool] = {}


def names_orbit(sql: str) -> bool:
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
