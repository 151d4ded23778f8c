"""The SQLite view of a table store: derived state, read with SQL, written through the log.

:class:`SqlView` keeps one SQLite file per table database (:mod:`orbit.sql.viewfile`: its layout, and
its check, catch-up or rebuild on open), holding the user's tables and the provenance of every row.
It follows the store lazily: an applied entry marks the rows it touches dirty, and the dirty rows are
written from the store's merged state in one batch (:mod:`orbit.sql.materialize`) before the view is
next used: a query, a statement, every ``COMMIT_EVERY`` entries, or closing. So a joined batch of
entries costs one pass over the rows it changed, never a rebuild.

Reads (:meth:`SqlView.query`) go through a second, read-only connection (``mode=ro``, ``query_only``
and an authorizer that allows only reading). Writes (:meth:`SqlView.run`) execute the statement on
the writable connection while temporary triggers report every row change (:mod:`orbit.sql.capture`);
the store appends the changes as one signed entry. When the entry is appended the statement's own
effect is kept instead of being undone and redone: the entry sorts after every entry the store has
applied, so merging it gives exactly the rows the statement produced (rows that another entry touched
meanwhile are rewritten from the store). If anything fails (SQLite, a value the log refuses, the
append) or the transaction is rolled back, the rows it touched are rewritten from the store, which
holds none of its changes, before the view is used again; a failing statement inside a longer
transaction is undone alone through a savepoint. A transaction's rows are never committed to the file
before its entry is appended: a read while one is open sets them aside, commits what the log holds,
and puts them back, so ``sql()`` sees every committed write whatever other connections do.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.entry import Entry
from ipfs_log.errors import EntryTooLargeError
from orbit.sql.capture import WriteCapture
from orbit.sql.errors import (
    DataError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SqlError,
    binding_error,
    only_reads,
    translate,
)
from orbit.sql.materialize import DirtyRows, RowWriter
from orbit.sql.viewfile import ViewFile, names_orbit
from stores.base import Update
from stores.errors import InvalidOperationError
from stores.table import Table

__all__ = ["Result", "SqlView"]

_FILE_ERRORS: Final = (sqlite3.Error, OSError)
"""What writing the view's file raises: SQLite's errors, and the OS's when the file is deleted or created."""
_BINDING_ERRORS: Final = (OverflowError, UnicodeEncodeError)
"""What ``sqlite3`` raises, outside its own tree, for a value it cannot bind (or a statement not UTF-8)."""


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


def _statement(sql: object) -> str:
    """The statement's text, checked to be a str.

    Raises:
        ProgrammingError: it is not.
    """
    if not isinstance(sql, str):
        raise ProgrammingError(f"a SQL statement is a str, not {type(sql).__name__}")
    return sql


def _failed_binding(
    error: OverflowError | UnicodeEncodeError, sql: str, params: object, at: int | None = None
) -> SqlError:
    """The error for what ``sqlite3`` raised binding a statement: its text is not UTF-8, or a parameter."""
    try:
        sql.encode()
    except UnicodeEncodeError as e:
        shown = sql.encode("utf-8", "backslashreplace").decode()
        return ProgrammingError(f"the statement is not UTF-8 text ({e.reason} at index {e.start})", shown)
    return binding_error(error, params, sql, at=at)


class _ParameterSets(Iterator[Any]):
    """An ``executemany``'s parameter sets: counts them, and keeps what the caller's iterator raised.

    So a binding error of a set it yielded (an orbit error) is told apart from an exception of the
    iterator itself (passed on unchanged).
    """

    __slots__ = ("_sets", "count", "current", "raised")

    def __init__(self, sets: Iterable[Any], sql: str) -> None:
        if not isinstance(sets, Iterable) and not hasattr(sets, "__getitem__"):
            raise ProgrammingError(
                f"executemany needs an iterable of parameter sets, not {type(sets).__name__}", sql
            )
        self._sets = iter(sets)
        self.count = 0
        """How many sets were taken."""
        self.current: object = None
        """The last set taken (the one being bound)."""
        self.raised: BaseException | None = None
        """What the caller's iterator raised."""

    def __next__(self) -> Any:
        try:
            found = next(self._sets)
        except StopIteration:
            raise
        except BaseException as e:
            self.raised = e
            raise
        self.count += 1
        self.current = found
        return found


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
        self.address = address
        tables = list(store.schema.tables)
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        token = secrets.token_hex(6)
        tag = self._tag = f"/*orbit-{token}*/ "
        self._capture = WriteCapture(tables, token, tag)
        self._dirty = DirtyRows()
        self._writer = RowWriter(store, tables, tag)
        self._file = ViewFile(
            path,
            store=store,
            address=address,
            tag=tag,
            dirty=self._dirty,
            writer=self._writer,
            on_connect=self._capture.attach,
            admitted_since=admitted_since,
        )
        self.path = self._file.path
        """The SQLite file."""
        self._txn: _Txn | None = None
        self._own: object = None  # the payload of the entry this view is appending
        self._broken = False
        self._closed = False
        self._stmt_savepoint = tag + "SAVEPOINT orbit_stmt"
        self._stmt_rollback_to = tag + "ROLLBACK TO orbit_stmt"
        self._stmt_release = tag + "RELEASE orbit_stmt"
        with self._lock:
            try:
                self._file.open()
                self._ready()
            except _FILE_ERRORS as e:
                raise SqlError(f"cannot open the SQL view {self.path}: {e}") from e
        self._unsubscribe: Callable[[], None] | None = store.subscribe(self._on_update)

    # ------------------------------------------------------------------ the file

    def _ready(self) -> None:
        """Install the capture triggers and open the reader, on a file just opened or rebuilt."""
        self._capture.install(self._file.rw)
        self._file.open_reader()

    def _repair(self) -> None:
        """Rebuild after a failed write to the file (called with the lock held).

        Readers wait meanwhile (the rebuild replaces both connections). The view stays broken until
        the rebuilt file has its capture triggers and reader: a failure anywhere is retried on the
        next use.

        Raises:
            sqlite3.Error, OSError: the file could not be rebuilt.
        """
        if self._broken and self._txn is None:
            with self._read_lock:
                self._file.rollback()
                self._file.rebuild()
                self._ready()
            self._broken = False

    def _lost(self) -> None:
        """Rebuild after SQLite dropped the whole transaction (``OR ROLLBACK``, a lost connection; lock held).

        What was written since the last commit is gone; if the rebuild fails, the next use retries.
        """
        self._txn = None
        self._broken = True
        with contextlib.suppress(*_FILE_ERRORS):
            self._repair()

    def trace_writes(self, callback: Callable[[str, bool], None] | None) -> None:
        """Call ``callback(statement, in_transaction)`` for each statement run on the writable connection.

        A test and debugging seam: it sees orbit's own writes to the file and users' statements, and
        whether a transaction was open when each started. None stops it.
        """
        with self._lock:
            self._file.trace(callback)

    # ------------------------------------------------------------------ following the store

    def _on_update(self, update: Update) -> None:
        with self._lock:
            if self._closed:
                return
            dirty = self._dirty
            dirty.applied(update.entries, self._own)
            if self._txn is None and dirty.due and not self._broken:  # broken: rebuilt before next use
                try:
                    self._file.write_dirty(provenance=dirty.provenance_due)
                    self._file.commit()
                except sqlite3.Error:
                    self._broken = True  # rebuilt from the store before the next use

    def flush(self, *, provenance: bool = True) -> None:
        """Write the stale rows (and the pending provenance) and commit, for the read-only connection.

        Raises:
            SqlError: the file could not be written.
        """
        with self.store.guard, self._lock:
            self._check_open()
            dirty = self._dirty
            try:
                if self._broken:
                    self._repair()
                if self._txn is None:
                    if dirty.pending or (provenance and dirty.unsourced):
                        self._file.write_dirty(provenance=provenance or dirty.provenance_due)
                        self._file.commit()
                elif dirty.pending or dirty.stale or (provenance and dirty.unsourced):
                    self._commit_beside_txn(provenance=provenance or dirty.provenance_due)
            except _FILE_ERRORS as e:
                self._broken = True
                if self._txn is not None and not self._file.in_transaction():
                    self._lost()
                raise translate(e) from e

    def _commit_beside_txn(self, *, provenance: bool) -> None:
        """Commit what the log holds while a transaction is open, without the transaction's rows.

        The file's open SQLite transaction holds both the entries applied since the last commit and
        the writer's uncommitted rows; the read-only connection sees neither. So the writer's rows are
        set aside, rewritten from the store, everything written and committed, and the writer's rows
        put back in a new SQLite transaction (its captured changes are untouched). Rows another entry
        changed during the transaction stay stale: they are rewritten from the store after it ends.
        Called with both locks held.

        Raises:
            sqlite3.Error, OSError: the file could not be written; if SQLite dropped the transaction,
                the caller drops the writer's too.
        """
        capture, dirty, file = self._capture, self._dirty, self._file
        rows = list(dict.fromkeys(capture.rows(capture.events())))
        changed_meanwhile = [row for row in rows if row in dirty.stale]
        saved = self._writer.save(file.rw, rows)
        dirty.mark_stale(rows)
        file.write_dirty(provenance=provenance)
        file.commit()
        file.begin()
        self._writer.restore(file.rw, saved)
        dirty.mark_stale(changed_meanwhile)

    # ------------------------------------------------------------------ reading

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Run a read-only query on the committed view and return its rows and description.

        Raises:
            SqlError: the query failed (bad SQL, wrong parameters) or tried to write
                (:class:`~orbit.sql.errors.ProgrammingError`); a parameter value SQLite cannot hold
                (an int outside 64 bits, a str that is not UTF-8) is a
                :class:`~orbit.sql.errors.DataError`.
        """
        description, rows = self._read(sql, params)
        return Result(description, rows, -1, None)

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the view and return its rows (see :meth:`query`).

        Raises:
            SqlError: the query failed, or tried to write.
        """
        return self._read(sql, params)[1]

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, list[tuple[Any, ...]]]:
        """Run a read-only query: its ``description`` and rows (see :meth:`query`)."""
        sql = _statement(sql)
        dirty = self._dirty
        if dirty.pending or self._broken or (dirty.unsourced and names_orbit(sql)):
            self.flush(provenance=names_orbit(sql))
        with self._read_lock:
            self._check_open()
            try:
                reader = self._file.ro
            except AttributeError:
                raise self._no_reader(sql) from None
            try:
                cursor = reader.execute(sql, params)
                return cursor.description, cursor.fetchall()
            except sqlite3.Error as e:
                raise translate(e, sql, reading=True) from e
            except _BINDING_ERRORS as e:
                raise _failed_binding(e, sql, params) from e

    def _no_reader(self, sql: str) -> SqlError:
        """The error for a read that found no read-only connection (read lock held).

        Raises:
            InterfaceError: the view is closed.
        """
        self._check_open()
        # a rebuild after a failed write failed while this read waited; the next use retries it
        return OperationalError("the SQL view could not be rebuilt after a failed write; try again", sql)

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

        With ``many``, ``params`` is an iterable of parameter sets; what its iterator raises is passed
        on unchanged (after the statement's changes are undone).

        While another owner has a transaction open, a query (``SELECT``, ``VALUES``, ``EXPLAIN``, a
        ``WITH`` that does not write) reads the committed view, as :meth:`query` does.

        Raises:
            SqlError: the statement failed (its own changes are undone; the transaction stays open),
                or another owner has a transaction open and it may write
                (:class:`~orbit.sql.errors.OperationalError`);
                a parameter value SQLite cannot hold is a :class:`~orbit.sql.errors.DataError`.
        """
        with self._lock:
            self._check_open()
            sql = _statement(sql)
            txn = self._txn
            if txn is not None and txn.owner is not owner:
                if not many and only_reads(sql):  # beside another's transaction: the committed view
                    description, rows = self._read(sql, params)  # type: ignore[arg-type]
                    return Result(description, rows, -1, None)
                raise OperationalError("another transaction is open on this database", sql)
            if sql.startswith(self._tag):  # the text of one of orbit's own, already prepared, statements
                raise translate(sqlite3.DatabaseError("not authorized"), sql)
            sets = _ParameterSets(params, sql) if many else None
            file, dirty, capture = self._file, self._dirty, self._capture
            try:
                if self._broken:
                    self._repair()
                rw = file.rw  # after the repair: a rebuild replaces the connection
                # the statement runs against the current rows (as of its transaction's start);
                # provenance is written first only if the statement can read it (it names an orbit_
                # table: the schema has no views that could hide one)
                reads_provenance = dirty.unsourced and names_orbit(sql)
                if txn is None:
                    if dirty.stale or reads_provenance:
                        file.write_dirty(provenance=bool(reads_provenance))
                elif reads_provenance:
                    file.write_dirty(values=False)
                file.begin()
                if txn is not None:  # a failing statement inside a transaction is undone alone
                    rw.execute(self._stmt_savepoint)
            except _FILE_ERRORS as e:
                self._broken = True
                if txn is not None and not file.in_transaction():  # SQLite's is gone, and so is the owner's
                    self._lost()
                raise translate(e, sql) from e
            before = capture.start(fresh=txn is None)
            try:
                cursor = rw.execute(sql, params) if sets is None else rw.executemany(sql, sets)  # type: ignore[arg-type]
                description = cursor.description
                rows = cursor.fetchall() if description else []
                result = Result(description, rows, cursor.rowcount, cursor.lastrowid)
            except BaseException as e:  # SQLite's, a value it cannot bind, executemany's iterator's
                capture.stop()
                if not rw.in_transaction:  # INSERT OR ROLLBACK: SQLite dropped the whole transaction
                    self._lost()
                elif txn is None:  # SQLite undid the statement (or, under OR FAIL, part of it)
                    dirty.mark_stale(capture.rows(capture.cut(before)))
                else:
                    capture.cut(before)
                    try:
                        rw.execute(self._stmt_rollback_to)
                        rw.execute(self._stmt_release)
                    except sqlite3.Error:
                        self._lost()
                if sets is not None and e is sets.raised:  # the caller's own: passed on unchanged
                    raise
                if isinstance(e, sqlite3.Error):
                    raise translate(e, sql) from e
                if isinstance(e, _BINDING_ERRORS):
                    if sets is None:
                        raise _failed_binding(e, sql, params) from e
                    raise _failed_binding(e, sql, sets.current, sets.count) from e
                raise
            finally:
                capture.stop()
            if txn is not None:
                try:
                    rw.execute(self._stmt_release)
                except sqlite3.Error as e:
                    self._lost()
                    raise translate(e, sql) from e
            elif len(capture) != before:
                self._txn = _Txn(owner)
            return result

    def in_transaction(self, owner: object) -> bool:
        """Whether ``owner`` has a transaction open."""
        txn = self._txn
        return txn is not None and txn.owner is owner

    def _drop(self) -> None:
        """Roll back the open transaction (lock held): the rows it changed are rewritten from the store."""
        self._txn = None
        capture = self._capture
        self._dirty.mark_stale(capture.rows(capture.take()))

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
                self._drop()
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
            try:
                changes = self._capture.changes()
                if not changes:
                    self._drop()
                    return None
                try:
                    payload = self.store.rows_op(changes)
                except InvalidOperationError as e:
                    raise DataError(str(e)) from e
            except BaseException:
                if self._txn is txn:
                    self._drop()
                raise
            self._own = payload
        # appended without the view's lock (the store takes its guard, which joins hold while they
        # call back into the view); the open transaction keeps other writers out meanwhile
        try:
            cid = self.store.append_op(payload)
        except BaseException as e:
            with self._lock:
                self._own = None
                self._drop()  # its rows are redone from the store, whether the entry got in or not
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
            self._capture.take()
            dirty = self._dirty
            try:
                if dirty.due and not self._broken:
                    self._file.write_dirty(provenance=dirty.provenance_due)
                    self._file.commit()
            except sqlite3.Error:
                self._broken = True  # the entry is in the log: the view is rebuilt before its next use
        return cid

    # ------------------------------------------------------------------ closing

    def _check_open(self) -> None:
        if self._closed:
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
            dirty = self._dirty
            try:
                if self._txn is not None:
                    self._drop()
                if not self._broken and (dirty.pending or dirty.unsourced or self._file.rw.in_transaction):
                    self._file.write_dirty()
                    self._file.commit()
            except sqlite3.Error as e:
                raise translate(e) from e
            finally:
                with self._read_lock:
                    self._file.close()
