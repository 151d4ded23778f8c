"""Write capture: the row changes a user's statements make to the view, turned into log changes.

Temporary triggers on the view's writable connection report every row change of a user statement to
:class:`WriteCapture`, which keeps them, in order, for the open transaction. Values are captured after
SQLite evaluated them, so ``random()`` or ``datetime('now')`` are evaluated once, by the writer.
:meth:`WriteCapture.changes` folds a transaction's events into its net row changes, the ``changes`` of
one ``ROWS`` entry. While a user statement runs, the connection's authorizer lets it read and change
the schema's tables only (:func:`~orbit.sql.authorize.authorize_write`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ipfs_log.codec import IPLDKind
from orbit.sql.authorize import authorize_write
from orbit.sql.materialize import Row
from orbit.sql.schema import quote
from stores.table import Key, TableSchema

__all__ = ["Change", "WriteCapture"]

Change = tuple[str, Key, dict[str, IPLDKind] | None]
"""A row change as a ``ROWS`` entry carries it: table, key, and the cells set (None: deleted)."""


class WriteCapture:
    """Collects the row changes of user statements on the view's writable connection.

    An event is ``(table position, kind, values...)``: kind 0 with an inserted row, 1 with a deleted
    row, 2 and then 3 with an updated row's old and new values.

    Args:
        tables: the schema's tables, in order.
        token: this view's random token (names the capture function and triggers).
        tag: the comment that starts every statement orbit runs on the file.
    """

    def __init__(self, tables: Sequence[TableSchema], token: str, tag: str) -> None:
        self._tables = list(tables)
        self._table_names = {t.name for t in self._tables}
        self._others = [[j for j in range(len(t.columns)) if j not in t.key_positions] for t in self._tables]
        self._function = f"orbit_capture_{token}"
        self._trigger_prefix = f"orbit_{token}_"
        self._tag = tag
        self._active = False
        self._events: list[tuple[Any, ...]] = []  # row events of the open transaction, in order

    # ------------------------------------------------------------------ the connection

    def attach(self, rw: sqlite3.Connection) -> None:
        """Register the capture function and the authorizer on a new writable connection."""
        rw.create_function(self._function, -1, self._capture)
        rw.set_authorizer(self._authorize)

    def install(self, rw: sqlite3.Connection) -> None:
        """Create the temporary triggers that report each row change of a user statement.

        Each calls ``orbit_capture_<token>(table, kind, values...)`` (see the class).

        Raises:
            sqlite3.Error: the triggers could not be created (the caller translates it).
        """
        call = f"SELECT {self._function}"
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
                rw.execute(self._tag + f"CREATE TEMP TRIGGER {self._trigger_prefix}{kind}{i} {body}")

    def _capture(self, *event: Any) -> None:
        """Called by the capture triggers for each row change: ``(table, kind, values...)``."""
        if self._active:
            self._events.append(event)

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if not self._active:
            return sqlite3.SQLITE_OK
        if trigger is not None and trigger.startswith(self._trigger_prefix):
            return sqlite3.SQLITE_OK
        return authorize_write(action, arg1, db, self._table_names)

    # ------------------------------------------------------------------ a user statement

    def start(self, *, fresh: bool) -> int:
        """A user statement starts: capture (after forgetting the events so far if ``fresh``).

        Returns:
            The number of events before the statement's.
        """
        if fresh:
            self._events.clear()
        self._active = True
        return len(self._events)

    def stop(self) -> None:
        """The user statement ended: orbit's own statements are neither captured nor restricted."""
        self._active = False

    def __len__(self) -> int:
        """The number of events captured for the open transaction."""
        return len(self._events)

    def cut(self, start: int) -> list[tuple[Any, ...]]:
        """Remove and return the events from number ``start`` on (a failed statement's)."""
        tail = self._events[start:]
        del self._events[start:]
        return tail

    def events(self) -> list[tuple[Any, ...]]:
        """Return the open transaction's events (kept)."""
        return list(self._events)

    def take(self) -> list[tuple[Any, ...]]:
        """Remove and return every event (the transaction ended)."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ reading the events

    def rows(self, events: Iterable[tuple[Any, ...]]) -> Iterator[Row]:
        """The rows these events touched (each time one touched a row, so possibly repeated)."""
        tables = self._tables
        for event in events:
            spec = tables[event[0]]
            yield (spec.name, tuple(event[2 + p] for p in spec.key_positions))

    def changes(self) -> list[Change]:
        """Turn the transaction's events into row changes (net effect per row, first-touched first)."""
        captured = self._events
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
        changes: list[Change] = []
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


def _differs(a: object, b: object) -> bool:
    return type(a) is not type(b) or a != b
