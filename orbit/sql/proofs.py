"""The SQL reads a table database can prove: a primary-key point or range, as one key range of its tree.

A table's rows are keyed in the state tree by :func:`orbit.state.views.row_key`, which sorts as SQLite
sorts the primary key, so ``WHERE key = ?`` and ``WHERE key BETWEEN ? AND ?`` (or ``>``, ``>=``, ``<``,
``<=``, joined by ``AND``) select one range of tree keys, and a range proof
(:class:`~orbit.state.RangeProof`) shows that the answer holds every such row and nothing else.
:func:`provable_range` reads the query (the shapes below, nothing else) and returns that range:

- ``SELECT * FROM t`` — the whole table;
- ``SELECT * FROM t WHERE k = ?`` — one row (all key columns given, for a compound key);
- ``SELECT * FROM t WHERE k >= ? AND k < ?`` (any of ``> >= < <=``, either bound), or
  ``WHERE k BETWEEN ? AND ?`` — a range of a one-column key;

each optionally ended by ``ORDER BY k`` (the proof's order). Values come from ``params`` (``?``
placeholders only), and must be of the key column's type.

>>> from stores.table import Column, Schema, TableSchema
>>> schema = Schema((TableSchema("t", (Column("id", "INTEGER"), Column("v", "TEXT")), ("id",)),))
>>> lo, hi = provable_range(schema, "SELECT * FROM t WHERE id BETWEEN ? AND ?", (3, 7))
>>> from orbit.state.views import row_key
>>> lo == row_key("t", [3]) and hi == row_key("t", [7]) + bytes(1)
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, cast

from ipfs_log.codec import IPLDKind
from orbit.sql.errors import NotSupportedError, ProgrammingError
from orbit.state.views import row_key, table_range
from stores.table import Schema, TableSchema

__all__ = ["provable_range"]

_NAME: Final = r'(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))'
_QUERY: Final = re.compile(
    rf"\s*SELECT\s+\*\s+FROM\s+{_NAME}(?:\s+WHERE\s+(?P<where>.+?))?"
    rf"(?:\s+ORDER\s+BY\s+{_NAME}(?:\s+ASC)?)?\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
_BETWEEN: Final = re.compile(rf"\s*{_NAME}\s+BETWEEN\s+\?\s+AND\s+\?\s*", re.IGNORECASE)
_COMPARE: Final = re.compile(rf"\s*{_NAME}\s*(=|==|<=|>=|<|>)\s*\?\s*", re.IGNORECASE)
_AND: Final = re.compile(r"\s+AND\s+", re.IGNORECASE)
_TYPES: Final = {"INTEGER": int, "TEXT": str, "BLOB": bytes}
_NEXT: Final = b"\x00"
"""Appended to a whole row key: the smallest tree key after it (no row key extends another's)."""


def _name(match: re.Match[str], first: int) -> str:
    return match.group(first) or match.group(first + 1)


def provable_range(schema: Schema, query: str, params: Sequence[Any] = ()) -> tuple[bytes, bytes]:
    """Return the tree-key range ``[lo, hi)`` holding exactly the rows ``query`` selects.

    Raises:
        NotSupportedError: the query is not one of the shapes a proof covers (see the module's text).
        ProgrammingError: an unknown table or column, a condition on a column that is not the key, the
            wrong number of parameters, or a value not of the key column's type.
    """
    whole = _QUERY.fullmatch(query)
    if whole is None:
        raise NotSupportedError(
            "a proof covers SELECT * FROM t [WHERE key = ? | key BETWEEN ? AND ? | key > ? AND key < ? …] "
            f"[ORDER BY key], not {query!r:.120}"
        )
    name = _name(whole, 1)
    try:
        table = schema.table(name)
    except Exception as e:  # SchemaError: no such table
        raise ProgrammingError(f"no table {name!r}") from e
    order = whole.group(4) or whole.group(5)
    if order is not None and (len(table.primary_key) != 1 or order != table.primary_key[0]):
        raise NotSupportedError(f"a proof's rows come in primary-key order, not by {order!r}")
    conditions = _conditions(whole.group("where"))
    if sum(len(ops) for _, ops in conditions) != len(params):
        raise ProgrammingError(
            f"the query has {sum(len(o) for _, o in conditions)} placeholders, {len(params)} given"
        )
    values = iter(params)
    bounds: dict[str, list[tuple[str, IPLDKind]]] = {}
    for column, ops in conditions:
        if column not in table.primary_key:
            raise NotSupportedError(
                f"a proof selects by the primary key {table.primary_key}, not by {column!r}"
            )
        bounds.setdefault(column, []).extend((op, _typed(table, column, next(values))) for op in ops)
    if not bounds:
        return table_range(table.name, None, None)
    if all(ops == [("=", ops[0][1])] for ops in bounds.values()) and len(bounds) == len(table.primary_key):
        key = row_key(table.name, [bounds[c][0][1] for c in table.primary_key])
        return key, key + _NEXT
    if len(table.primary_key) != 1:
        raise NotSupportedError("a proof of a compound key's range is not supported: give every key column =")
    return _one_column_range(table, bounds[table.primary_key[0]])


def _conditions(where: str | None) -> list[tuple[str, list[str]]]:
    """The ``WHERE`` clause as ``(column, [operator…])``, BETWEEN as ``>=`` then ``<=``."""
    if where is None:
        return []
    between = _BETWEEN.fullmatch(where)
    if between is not None:
        return [(_name(between, 1), [">=", "<="])]
    found = []
    for part in _AND.split(where):
        compare = _COMPARE.fullmatch(part)
        if compare is None:
            raise NotSupportedError(
                f"a proof's condition is KEY OP ? or KEY BETWEEN ? AND ?, not {part!r:.80}"
            )
        found.append((_name(compare, 1), ["=" if compare.group(3) == "==" else compare.group(3)]))
    return found


def _typed(table: TableSchema, column: str, value: Any) -> IPLDKind:
    ctype = next(c.type for c in table.columns if c.name == column)
    if type(value) is not _TYPES[ctype]:
        raise ProgrammingError(f"{column!r} is {ctype}: {value!r:.60} would not select by the key's order")
    return cast("IPLDKind", value)


def _one_column_range(table: TableSchema, ops: list[tuple[str, IPLDKind]]) -> tuple[bytes, bytes]:
    lo, hi = table_range(table.name, None, None)
    for op, value in ops:
        key = row_key(table.name, [value])
        if op == "=":
            lo, hi = max(lo, key), min(hi, key + _NEXT)
        elif op in (">", ">="):
            lo = max(lo, key if op == ">=" else key + _NEXT)
        else:
            hi = min(hi, key if op == "<" else key + _NEXT)
    return lo, max(lo, hi)
