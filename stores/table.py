"""Table: rows with a primary key, merged cell by cell, last writer wins (the pure rule behind SQL).

The schema (tables, their columns and primary keys) is fixed when the store is made: orbit derives it
from the SQL in the database's manifest, so every replica agrees on it. One operation carries the row
changes of one statement or transaction::

    {"op": "ROWS", "changes": [[table, [key values], {column: value, ...}],   # set these cells
                               [table, [key values], null], ...]}             # delete the row

Change ``i`` of an entry sorts at ``(entry.sort_key, i)``: the log's total order, then the position in
the entry. The merge rule, per **cell** (table, key, column): the change that sorts last wins. A delete
is a row tombstone at its sort key; cells older than the row's latest delete are gone. A set newer than
the latest delete brings the row back with the cells set since (the others read NULL). A row is visible
when its newest set is newer than its newest delete and every required column (NOT NULL, or a CHECK
that NULL fails) holds a value set since that delete; otherwise it stays hidden until one is set. The
state depends only on the set of entries, not on the order they arrived in.

A change is applied only if it is well formed: a known table, a key with one value per key column, known
non-key columns, values of the column's type (``INTEGER``: a 64-bit int; ``REAL``: a finite float;
``TEXT``: a str; ``BLOB``: bytes; ``ANY``: any of these), no NULL in a NOT NULL column, and each value
passing the column's CHECK (through the ``check`` callback the store is given). An entry with one bad
change is ignored whole, as the other stores ignore operations they cannot apply.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> todos = TableSchema("todos", (Column("id", "TEXT"), Column("title", "TEXT"), Column("done", "INTEGER")),
...                     ("id",))
>>> table = Table(Log(Identity.from_seed(b"t" * 32), MemoryBlockStore(), log_id="t"),
...               schema=Schema((todos,)))
>>> _ = table.set("todos", "t1", {"title": "milk", "done": 0})
>>> _ = table.set("todos", "t1", {"done": 1})
>>> table.get("todos", "t1")
{'id': 't1', 'title': 'milk', 'done': 1}
>>> _ = table.delete("todos", "t1")
>>> table.get("todos", "t1") is None, table.count("todos")
(True, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeAlias, Unpack

from ipfs_log import CID, Entry, Log
from ipfs_log.codec import IPLDKind
from stores.base import Batch, Sharing, SortKey, Store, sort_key_from_ipld
from stores.errors import InvalidCheckpointError, InvalidOperationError, SchemaError

__all__ = [
    "COLUMN_TYPES",
    "CellCheck",
    "Change",
    "ChangeKey",
    "Column",
    "Key",
    "Schema",
    "Table",
    "TableBatch",
    "TableSchema",
]

COLUMN_TYPES: Final = ("INTEGER", "REAL", "TEXT", "BLOB", "ANY")
"""The column types (those of SQLite's STRICT tables)."""
KEY_TYPES: Final = ("INTEGER", "TEXT", "BLOB")
"""The types a primary-key column may have (values that compare equal are the same key)."""
MAX_COLUMNS: Final = 100
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_FLOAT_MAX: Final = 1.7976931348623157e308

Key: TypeAlias = tuple[Any, ...]
"""A row's primary key: one value per key column, in the key's column order."""
ChangeKey: TypeAlias = tuple[SortKey, int]
"""Where a change sorts: its entry's sort key, then its position in the entry."""
Change: TypeAlias = tuple[str, Key, "dict[str, IPLDKind] | None"]
"""``(table, key, cells)``: set ``cells`` (a column → value map) of the row, or delete it (None)."""
CellCheck: TypeAlias = Callable[[str, str, IPLDKind], bool]
"""``check(table, column, value)``: whether ``value`` passes the column's CHECK constraint."""


# ---------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table."""

    name: str
    type: str = "ANY"
    """One of :data:`COLUMN_TYPES`."""
    required: bool = False
    """True if a row needs a value here (NOT NULL, or a CHECK that NULL fails)."""
    check: bool = False
    """True if values must pass a CHECK constraint (evaluated by the store's ``check`` callback)."""
    notnull: bool = False
    """True if NULL is refused in this column (NOT NULL)."""


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A table: its columns, in order, and the names of its primary-key columns, in key order."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    positions: dict[str, int] = field(init=False, repr=False, compare=False)
    key_positions: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"table {self.name!r}"
        if type(self.name) is not str or not self.name:
            raise SchemaError("a table name is a non-empty str", table=str(self.name))
        if self.name.lower().startswith(("orbit_", "sqlite_")):
            raise SchemaError(f"{where}: names starting orbit_ or sqlite_ are reserved", table=self.name)
        if not self.columns:
            raise SchemaError(f"{where} has no columns", table=self.name)
        if len(self.columns) > MAX_COLUMNS:
            raise SchemaError(f"{where} has more than {MAX_COLUMNS} columns", table=self.name)
        positions: dict[str, int] = {}
        for i, column in enumerate(self.columns):
            if type(column.name) is not str or not column.name:
                raise SchemaError(f"{where}: a column name is a non-empty str", table=self.name)
            if column.name.lower() in (n.lower() for n in positions):
                raise SchemaError(f"{where}: duplicate column {column.name!r}", table=self.name)
            if column.type not in COLUMN_TYPES:
                raise SchemaError(
                    f"{where}: column {column.name!r} has type {column.type!r}; use one of "
                    + ", ".join(COLUMN_TYPES),
                    table=self.name,
                )
            positions[column.name] = i
        if not self.primary_key:
            raise SchemaError(f"{where} has no PRIMARY KEY", table=self.name, constraint="PRIMARY KEY")
        for name in self.primary_key:
            if name not in positions:
                raise SchemaError(f"{where}: key column {name!r} is not a column", table=self.name)
            if self.columns[positions[name]].type not in KEY_TYPES:
                raise SchemaError(
                    f"{where}: PRIMARY KEY column {name!r} must be INTEGER, TEXT or BLOB "
                    f"(not {self.columns[positions[name]].type})",
                    table=self.name,
                    constraint="PRIMARY KEY",
                )
        if len(set(self.primary_key)) != len(self.primary_key):
            raise SchemaError(f"{where}: a key column is named twice", table=self.name)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "key_positions", tuple(positions[n] for n in self.primary_key))

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True, slots=True)
class Schema:
    """The tables of a table store, and the SQL they were read from (opaque to the store)."""

    tables: tuple[TableSchema, ...]
    sql: tuple[str, ...] = ()
    """The statements that create the tables and indexes (what orbit puts in the manifest)."""
    by_name: dict[str, TableSchema] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tables:
            raise SchemaError("a schema has at least one table")
        by_name: dict[str, TableSchema] = {}
        for table in self.tables:
            if table.name.lower() in (n.lower() for n in by_name):
                raise SchemaError(f"duplicate table {table.name!r}", table=table.name)
            by_name[table.name] = table
        object.__setattr__(self, "by_name", by_name)

    def table(self, name: str) -> TableSchema:
        """Return the table called ``name``.

        Raises:
            InvalidOperationError: there is no such table.
        """
        try:
            return self.by_name[name]
        except (KeyError, TypeError):
            raise InvalidOperationError(f"no table {name!r} in the schema", Table.TYPE) from None


def _valid(column: Column, value: object) -> bool:
    """Whether ``value`` may be stored in ``column`` (type and NOT NULL; not the CHECK)."""
    kind = type(value)
    if value is None:
        return not column.notnull
    ctype = column.type
    if kind is int:
        return (ctype == "INTEGER" or ctype == "ANY") and _INT_MIN <= value <= _INT_MAX  # type: ignore[operator]
    if kind is float:
        return (ctype == "REAL" or ctype == "ANY") and -_FLOAT_MAX <= value <= _FLOAT_MAX  # type: ignore[operator]
    if kind is str:
        return ctype == "TEXT" or ctype == "ANY"
    if kind is bytes:
        return ctype == "BLOB" or ctype == "ANY"
    return False


# ---------------------------------------------------------------------- the store


_Cell: TypeAlias = tuple[ChangeKey, IPLDKind] | None
_Row: TypeAlias = tuple[ChangeKey | None, ChangeKey | None, tuple[_Cell, ...]]
"""The merge state of one row: ``(dead, alive, cells)``, its newest delete and set, and per non-key
column (in schema order) the change that set it and the value, or None if unset since the delete.

Only tuples and atoms, replaced on change: CPython's cycle collector stops tracking such tuples when it
first sees them, so a table's rows never reach its full collections, which otherwise walked every row
again and again (2.5% of the time of 100k inserts, 30 ms a pause), and a row takes a third of the
memory of an object with a dict of cells."""


class Table(Store):
    """A table store over a log: rows merged per cell, last writer wins.

    Rows returned by reads are new dicts. Keys are given as a tuple of the key columns' values, or as
    the bare value for a one-column key.

    Args:
        log: the log the store follows.
        schema: the tables (fixed for the database: orbit reads it from the manifest).
        checkpoint: restore the index from :meth:`checkpoint` instead of replaying the log.
        catch_up: entries admitted after the checkpoint was taken.
        check: evaluates the CHECK constraint of columns that have one; without it such values pass.

    Raises:
        InvalidCheckpointError: the checkpoint cannot be restored over this log.
    """

    TYPE: ClassVar[str] = "table"

    def __init__(
        self,
        log: Log,
        *,
        schema: Schema,
        checkpoint: IPLDKind | None = None,
        catch_up: Sequence[Entry] = (),
        check: CellCheck | None = None,
        **shared: Unpack[Sharing],
    ) -> None:
        if not isinstance(schema, Schema):
            raise TypeError(f"schema must be a stores.table.Schema, not {type(schema).__name__}")
        self._schema = schema
        self._check_cell = check
        self._trusted: IPLDKind = None
        self._rows: dict[str, dict[Key, _Row]] = {t.name: {} for t in schema.tables}
        self._counts: dict[str, int] = {t.name: 0 for t in schema.tables}
        # per table: the non-key columns by name and their slots in a row's cells, the slots of the
        # required ones, and how to lay a row out in column order: (True, position in the key) for a
        # key column, (False, slot) for the others
        self._cells: dict[str, dict[str, Column]] = {
            t.name: {c.name: c for c in t.columns if c.name not in t.primary_key} for t in schema.tables
        }
        self._names: dict[str, tuple[str, ...]] = {name: tuple(cells) for name, cells in self._cells.items()}
        self._slots: dict[str, dict[str, int]] = {
            name: {column: i for i, column in enumerate(names)} for name, names in self._names.items()
        }
        self._empty: dict[str, tuple[_Cell, ...]] = {
            name: (None,) * len(n) for name, n in self._names.items()
        }
        self._required: dict[str, tuple[int, ...]] = {
            t.name: tuple(
                self._slots[t.name][c.name] for c in t.columns if c.required and c.name not in t.primary_key
            )
            for t in schema.tables
        }
        self._layout: dict[str, tuple[tuple[bool, int], ...]] = {
            t.name: tuple(
                (True, t.primary_key.index(c.name))
                if c.name in t.primary_key
                else (False, self._slots[t.name][c.name])
                for c in t.columns
            )
            for t in schema.tables
        }
        super().__init__(log, checkpoint=checkpoint, catch_up=catch_up, **shared)

    @property
    def schema(self) -> Schema:
        """The store's tables."""
        return self._schema

    # ------------------------------------------------------------------ reading

    def _key(self, table: TableSchema, key: object) -> Key:
        values = key if isinstance(key, tuple) else (key,)
        if len(values) != len(table.primary_key):
            raise InvalidOperationError(
                f"table {table.name!r} has a {len(table.primary_key)}-column key, got {key!r}", self.TYPE
            )
        for name, value in zip(table.primary_key, values, strict=True):
            column = table.columns[table.positions[name]]
            if value is None or not _valid(column, value):
                raise InvalidOperationError(
                    f"table {table.name!r}: {value!r} is not a valid {column.type} key for {name!r}",
                    self.TYPE,
                )
        return values

    def _visible(self, table: str, row: _Row) -> bool:
        dead, alive, cells = row
        if alive is None or (dead is not None and alive < dead):
            return False
        return all(cells[i] is not None for i in self._required[table])

    def _values(self, table: TableSchema, key: Key, row: _Row) -> dict[str, IPLDKind]:
        cells = row[2]
        values: dict[str, IPLDKind] = {}
        for column, (is_key, at) in zip(table.columns, self._layout[table.name], strict=True):
            if is_key:
                values[column.name] = key[at]
            else:
                cell = cells[at]
                values[column.name] = None if cell is None else cell[1]
        return values

    def get(self, table: str, key: object) -> dict[str, IPLDKind] | None:
        """Return the row with this primary key as a column → value dict, or None if there is none.

        Raises:
            InvalidOperationError: no such table, or the key does not fit the table's key columns.
        """
        spec = self._schema.table(table)
        values = self._key(spec, key)
        row = self._rows[spec.name].get(values)
        if row is None or not self._visible(spec.name, row):
            return None
        return self._values(spec, values, row)

    def rows(self, table: str) -> Iterator[tuple[Key, dict[str, IPLDKind]]]:
        """Iterate over ``(key, row)`` of the visible rows of ``table`` (in an order replicas may not share).

        Raises:
            InvalidOperationError: no such table.
        """
        spec = self._schema.table(table)
        name = spec.name
        for key, row in list(self._rows[name].items()):
            if self._visible(name, row):
                yield key, self._values(spec, key, row)

    def count(self, table: str) -> int:
        """Return the number of visible rows of ``table``.

        Raises:
            InvalidOperationError: no such table.
        """
        return self._counts[self._schema.table(table).name]

    def __len__(self) -> int:
        """The number of visible rows in all tables."""
        return sum(self._counts.values())

    def all(self) -> dict[str, dict[Key, dict[str, IPLDKind]]]:
        """Return every visible row: table → key → row."""
        return {t.name: dict(self.rows(t.name)) for t in self._schema.tables}

    def provenance(self, table: str, key: object) -> dict[str, ChangeKey] | None:
        """Return, for a visible row, where each of its values comes from.

        Non-key columns map to the change that set the cell (columns unset since the row's latest
        delete are left out); key columns map to the row's newest set.

        Raises:
            InvalidOperationError: no such table, or a malformed key.
        """
        spec = self._schema.table(table)
        values = self._key(spec, key)
        row = self._rows[spec.name].get(values)
        if row is None or not self._visible(spec.name, row):
            return None
        _, alive, cells = row
        if alive is None:
            return None
        found = {name: alive for name in spec.primary_key}
        found.update(
            (name, cell[0])
            for name, cell in zip(self._names[spec.name], cells, strict=True)
            if cell is not None
        )
        return found

    def keys(self, table: str) -> Iterator[Key]:
        """Iterate over every key the store has seen in ``table``, hidden and deleted rows included.

        Raises:
            InvalidOperationError: no such table.
        """
        return iter(list(self._rows[self._schema.table(table).name]))

    def view_row(self, table: str, key: Key) -> tuple[tuple[Any, ...], list[SortKey | None]] | None:
        """Return a visible row laid out for a materialiser, or None if the row is not visible.

        Returns ``(values, sources)``: the row's values in column order, and for each column the sort
        key of the entry its value comes from (a key column: the row's newest set; an unset cell: None).
        ``table`` and ``key`` must be as :meth:`touched` returns them.
        """
        row = self._rows[table].get(key)
        if row is None:
            return None
        dead, alive, cells = row
        if alive is None or (dead is not None and alive < dead):
            return None
        for i in self._required[table]:
            if cells[i] is None:
                return None
        values: list[Any] = []
        sources: list[SortKey | None] = []
        newest = alive[0]
        for is_key, ref in self._layout[table]:
            if is_key:
                values.append(key[ref])
                sources.append(newest)
            else:
                cell = cells[ref]
                if cell is None:
                    values.append(None)
                    sources.append(None)
                else:
                    values.append(cell[1])
                    sources.append(cell[0][0])
        return tuple(values), sources

    def touched(self, entries: Iterable[Entry]) -> dict[tuple[str, Key], None]:
        """Return the rows the entries change, in order and without repeats (malformed ones skipped)."""
        found: dict[tuple[str, Key], None] = {}
        for entry in entries:
            changes = self._changes(entry.payload)
            if changes is not None:
                for table, key, _ in changes:
                    found[(table, key)] = None
        return found

    # ------------------------------------------------------------------ writing

    def set(self, table: str, key: object, cells: Mapping[str, IPLDKind]) -> CID:
        """Set cells of a row (creating it if needed) with one entry.

        Raises:
            InvalidOperationError: no such table or column, a malformed key, a value of the wrong type,
                NULL in a NOT NULL column or a value failing a CHECK; nothing was written.
            StoreClosedError: the store was closed.
        """
        return self.write([(table, key, dict(cells))])

    def delete(self, table: str, key: object) -> CID:
        """Delete a row with one entry (a tombstone, written even if this replica lacks the row).

        Raises:
            InvalidOperationError: no such table, or a malformed key; nothing was written.
            StoreClosedError: the store was closed.
        """
        return self.write([(table, key, None)])

    def write(self, changes: Iterable[tuple[str, object, Mapping[str, IPLDKind] | None]]) -> CID:
        """Append changes as one ``ROWS`` entry, applied in order (a later change to a row wins).

        Raises:
            InvalidOperationError: a change is malformed (see :meth:`set`), or there are none;
                nothing was written.
            StoreClosedError: the store was closed.
        """
        return self.append_op(self.rows_op(changes))

    def rows_op(self, changes: Iterable[tuple[str, object, Mapping[str, IPLDKind] | None]]) -> IPLDKind:
        """Validate changes and return the ``ROWS`` operation that carries them.

        Raises:
            InvalidOperationError: a change is malformed, or there are none.
        """
        out: list[IPLDKind] = []
        valid, check, all_cells = _valid, self._check_cell, self._cells
        for table, key, cells in changes:
            spec = self._schema.table(table)
            values = self._key(spec, key)
            if cells is None:
                out.append([spec.name, list(values), None])
                continue
            known = all_cells[spec.name]
            copy: dict[str, IPLDKind] = {}
            for name, value in cells.items():
                column = known.get(name) if type(name) is str else None
                if (
                    column is None
                    or not valid(column, value)
                    or (
                        column.check
                        and value is not None
                        and check is not None
                        and not check(spec.name, name, value)
                    )
                ):
                    raise InvalidOperationError(self._check_value(spec, name, value), self.TYPE)
                copy[name] = value
            out.append([spec.name, list(values), copy])
        if not out:
            raise InvalidOperationError("no changes to write", self.TYPE)
        return {"op": "ROWS", "changes": out}

    def append_op(self, payload: IPLDKind) -> CID:
        """Append a ``ROWS`` operation made by :meth:`rows_op` (not validated again) as one entry.

        Raises:
            StoreClosedError: the store was closed.
        """
        self._trusted = payload  # made by rows_op, under the same rules _changes applies
        try:
            return self._write((payload,))[0].cid
        finally:
            self._trusted = None

    def batch(self) -> TableBatch:
        """Return a :class:`TableBatch`: changes collected, then written as one entry."""
        return TableBatch(self)

    def _check_value(self, spec: TableSchema, name: str, value: IPLDKind) -> str:
        """Return why ``value`` cannot go in column ``name`` of ``spec`` ("" if it can)."""
        at = spec.positions.get(name) if type(name) is str else None
        if at is None or name in spec.primary_key:
            return f"table {spec.name!r} has no non-key column {name!r}"
        column = spec.columns[at]
        if not _valid(column, value):
            if value is None:
                return f"NOT NULL constraint failed: {spec.name}.{name}"
            return f"{spec.name}.{name} is {column.type}: cannot store {type(value).__name__} {value!r}"
        check = self._check_cell
        if column.check and value is not None and check is not None and not check(spec.name, name, value):
            return f"CHECK constraint failed: {spec.name}.{name} = {value!r}"
        return ""

    # ------------------------------------------------------------------ index

    def _changes(self, payload: IPLDKind) -> list[tuple[str, Key, dict[str, IPLDKind] | None]] | None:
        """Return the validated changes of a ``ROWS`` payload, or None if it is malformed."""
        if type(payload) is not dict or len(payload) != 2 or payload.get("op") != "ROWS":
            return None
        changes = payload.get("changes")
        if type(changes) is not list or not changes:
            return None
        tables = self._schema.by_name
        all_cells = self._cells
        check = self._check_cell
        valid = _valid
        out: list[tuple[str, Key, dict[str, IPLDKind] | None]] = []
        append = out.append
        for change in changes:
            if type(change) is not list or len(change) != 3:
                return None
            name, key, cells = change
            spec = tables.get(name) if type(name) is str else None
            if spec is None or type(key) is not list or len(key) != len(spec.key_positions):
                return None
            columns = spec.columns
            for at, value in zip(spec.key_positions, key, strict=True):
                if value is None or not valid(columns[at], value):
                    return None
            if cells is not None:
                if type(cells) is not dict:
                    return None
                known = all_cells[name]  # type: ignore[index]
                for column_name, value in cells.items():
                    column = known.get(column_name)
                    if column is None or not valid(column, value):
                        return None
                    if (
                        column.check
                        and value is not None
                        and check is not None
                        and not check(name, column_name, value)  # type: ignore[arg-type]
                    ):
                        return None
            append((name, tuple(key), cells))  # type: ignore[arg-type]
        return out

    def _apply(self, entry: Entry) -> bool:
        payload = entry.payload
        trusted: Any = self._trusted
        changes: list[tuple[str, Key, dict[str, IPLDKind] | None]] | None
        if trusted is not None and payload is trusted:
            changes = _own_changes(self._trusted)
        else:
            changes = self._changes(payload)
        if changes is None:
            return False
        sort_key = entry.sort_key
        for i, (table, key, cells) in enumerate(changes):
            self._merge(table, key, cells, (sort_key, i))
        return True

    def _merge(self, table: str, key: Key, cells: dict[str, IPLDKind] | None, at: ChangeKey) -> None:
        rows, slots = self._rows[table], self._slots[table]
        row = rows.get(key)
        if row is None:  # a row not seen before: its first change decides it alone
            if cells is None:
                rows[key] = (at, None, self._empty[table])
                return
            fresh = list(self._empty[table])
            for name, value in cells.items():
                fresh[slots[name]] = (at, value)
            rows[key] = (None, at, tuple(fresh))
            for i in self._required[table]:
                if fresh[i] is None:
                    return
            self._counts[table] += 1
            return
        was = self._visible(table, row)
        dead, alive, current = row
        if dead is not None and at < dead:
            return
        if cells is None:
            if alive is not None and alive < at:
                alive = None
            row = rows[key] = (at, alive, tuple(c if c is not None and c[0] > at else None for c in current))
        else:
            if alive is None or alive < at:
                alive = at
            merged = list(current)
            for name, value in cells.items():
                i = slots[name]
                cell = merged[i]
                if cell is None or cell[0] < at:
                    merged[i] = (at, value)
            row = rows[key] = (dead, alive, tuple(merged))
        now = self._visible(table, row)
        if now != was:
            self._counts[table] += 1 if now else -1

    def _dump(self) -> IPLDKind:
        # {"entries": [[time, writer, cid], ...],
        #  "tables": {table: [[key, dead, alive, {column: [entry, index, value]}], ...]}}
        # where dead and alive are [entry, index] or null, and entry is a position in "entries".
        refs: dict[SortKey, int] = {}
        entries: list[IPLDKind] = []
        last_key: SortKey | None = None  # a row's cells mostly come from one entry, whose sort key
        last_ref = 0  # is one shared object: looked up once

        def ref(sort_key: SortKey) -> int:
            nonlocal last_key, last_ref
            if sort_key is not last_key:
                found = refs.get(sort_key)
                if found is None:
                    found = refs[sort_key] = len(entries)
                    entries.append([sort_key[0], sort_key[1], sort_key[2]])
                last_key, last_ref = sort_key, found
            return last_ref

        tables: dict[str, IPLDKind] = {}
        for table, rows in self._rows.items():
            records: list[IPLDKind] = []
            names = self._names[table]
            for key, (dead, alive, cells) in rows.items():
                records.append(
                    [
                        list(key),
                        None if dead is None else [ref(dead[0]), dead[1]],
                        None if alive is None else [ref(alive[0]), alive[1]],
                        {
                            names[i]: [ref(c[0][0]), c[0][1], c[1]]
                            for i, c in enumerate(cells)
                            if c is not None
                        },
                    ]
                )
            tables[table] = records
        return {"entries": entries, "tables": tables}

    def _load(self, state: IPLDKind) -> None:
        if type(state) is not dict or set(state) != {"entries", "tables"}:
            raise InvalidCheckpointError("table state is {entries, tables}")
        raw_entries, tables = state["entries"], state["tables"]
        if type(raw_entries) is not list or type(tables) is not dict or set(tables) != set(self._rows):
            raise InvalidCheckpointError("table state: entries is a list, tables has one list per table")
        keys = [sort_key_from_ipld(e) for e in raw_entries]

        def at(value: IPLDKind) -> ChangeKey | None:
            if value is None:
                return None
            if type(value) is list and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
                return (keys[value[0]], value[1])
            raise InvalidCheckpointError(f"table state: bad change reference {value!r}")

        for table, records in tables.items():
            if type(records) is not list:
                raise InvalidCheckpointError(f"table state: {table!r} is not a list")
            rows, slots = self._rows[table], self._slots[table]
            for record in records:
                if type(record) is not list or len(record) != 4:
                    raise InvalidCheckpointError(f"table state: bad row record in {table!r}")
                key, dead, alive, cells = record
                if not isinstance(key, list) or type(cells) is not dict:
                    raise InvalidCheckpointError(f"table state: bad row record in {table!r}")
                merged: list[_Cell] = list(self._empty[table])
                for name, cell in cells.items():
                    if type(cell) is not list or len(cell) != 3 or name not in slots:
                        raise InvalidCheckpointError(f"table state: bad cell {name!r} in {table!r}")
                    change_key = at(cell[:2])
                    if change_key is None:
                        raise InvalidCheckpointError(f"table state: cell {name!r} without a change key")
                    merged[slots[name]] = (change_key, cell[2])
                row = rows[tuple(key)] = (at(dead), at(alive), tuple(merged))
                if self._visible(table, row):
                    self._counts[table] += 1


def _own_changes(payload: Any) -> list[tuple[str, Key, dict[str, IPLDKind] | None]]:
    return [(c[0], tuple(c[1]), c[2]) for c in payload["changes"]]


class TableBatch(Batch):
    """Row changes collected, then written as one ``ROWS`` entry (see :class:`stores.base.Batch`).

    >>> from ipfs_log import Identity, Log, MemoryBlockStore
    >>> spec = TableSchema("t", (Column("k", "INTEGER"), Column("v", "TEXT")), ("k",))
    >>> table = Table(Log(Identity.from_seed(b"t" * 32), MemoryBlockStore(), log_id="t"),
    ...               schema=Schema((spec,)))
    >>> with table.batch() as batch:
    ...     batch.set("t", 1, {"v": "a"})
    ...     batch.set("t", 2, {"v": "b"})
    ...     batch.delete("t", 1)
    >>> len(table.log), sorted(k for k, _ in table.rows("t"))
    (1, [(2,)])
    """

    _store: Table

    def __init__(self, store: Table) -> None:
        super().__init__(store)
        self._changes: list[tuple[str, object, Mapping[str, IPLDKind] | None]] = []

    def __len__(self) -> int:
        return len(self._changes)

    def set(self, table: str, key: object, cells: Mapping[str, IPLDKind]) -> None:
        """Add a set of cells of a row.

        Raises:
            InvalidOperationError: the change is malformed (see :meth:`Table.set`).
        """
        change = (table, key, dict(cells))
        self._store.rows_op([change])
        self._changes.append(change)

    def delete(self, table: str, key: object) -> None:
        """Add a deletion of a row.

        Raises:
            InvalidOperationError: no such table, or a malformed key.
        """
        change = (table, key, None)
        self._store.rows_op([change])
        self._changes.append(change)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._changes.clear()

    def commit(self) -> list[Entry]:
        """Write the collected changes as one entry now, and start a new batch.

        Returns:
            The entry written (none if the batch was empty).

        Raises:
            StoreClosedError: the store was closed.
        """
        changes, self._changes = self._changes, []
        if not changes:
            return []
        self._store.append_op(self._store.rows_op(changes))
        entries = self._store.log.heads[-1:]
        self.entries.extend(entries)
        return entries
