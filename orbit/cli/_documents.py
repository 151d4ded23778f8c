"""``orbit find`` and ``orbit query``: documents by indexed equality, or by conditions in a scan.

The conditions are the documents query language (:mod:`stores.documents_query`); a value is read as on
the rest of the command line (JSON with DAG-JSON's bytes and links, or else plain text).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ipfs_log.codec import IPLDKind
from orbit.cli._output import Output, UsageError, parse_value, text
from orbit.cli._session import Session, typed
from stores.documents_query import Condition, Query, QuerySyntaxError, parse_query
from stores.errors import UnindexedFieldError

if TYPE_CHECKING:
    from orbit.databases import DocumentsDatabase

__all__ = ["cmd_find", "cmd_query"]


def _value(text: str) -> IPLDKind:
    return parse_value(text, lenient=True)


_ORDERING = ("<", "<=", ">", ">=")


def _query(conditions: list[str]) -> Query:
    """The conditions, parsed and checked: a condition that could only match nothing is a usage error.

    Raises:
        UsageError: a condition is not ``FIELD OP VALUE``, has two operators (``born>>1``) or no value,
            or orders by plain text (``born>abc``: < <= > >= compare numbers, or JSON strings).
    """
    try:
        query = parse_query(conditions, _value)
    except QuerySyntaxError as e:
        raise UsageError(str(e)) from None
    for given, condition in zip(conditions, query.conditions, strict=True):
        rest = given[len(condition.field) + len(condition.op) :]
        if not rest:
            raise UsageError(f"{given!r} has no value (the empty string is '\"\"')")
        if rest[0] in "=!<>~":
            raise UsageError(
                f"{given!r} has two operators: a condition is FIELD OP VALUE, OP one of = != < <= > >= ~"
            )
        value = condition.value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if condition.op in _ORDERING and not number and not rest.lstrip().startswith('"'):
            raise UsageError(
                f"{given!r}: < <= > >= compare numbers, or strings given as JSON "
                f"('{condition.field}{condition.op}\"{rest}\"')"
            )
    return query


def _print_docs(out: Output, docs: list[Any], index_by: str) -> None:
    if out.json:
        for doc in docs:
            out.document(doc)
        return
    out.table(["KEY", "DOCUMENT"], [[str(d.get(index_by)), text(d)] for d in docs])


def cmd_find(args: argparse.Namespace, out: Output) -> int:
    """``orbit find NAME FIELD=VALUE…``: documents whose fields equal these values."""
    query = _query(args.conditions)
    if any(c.op != "=" for c in query.conditions):
        raise UsageError("find takes FIELD=VALUE conditions; `orbit query` takes != < <= > >= ~")
    with Session(args, out) as s:
        db: DocumentsDatabase = typed(s.open(args.name, "find", ("documents",))[0], "documents")
        fields = {c.field: c.value for c in query.conditions}  # a field given twice: the last value
        try:
            docs = db.find(**fields)
        except UnindexedFieldError:  # no index on these fields: scan
            docs = db.query(Query(tuple(Condition(f, "=", v) for f, v in fields.items())))
        _print_docs(out, docs, db.options.index_by)
    return 0


def cmd_query(args: argparse.Namespace, out: Output) -> int:
    """``orbit query NAME COND…``: documents matching every condition (a scan)."""
    query = _query(args.conditions)
    with Session(args, out) as s:
        db: DocumentsDatabase = typed(s.open(args.name, "query", ("documents",))[0], "documents")
        docs = db.query(query)
        if args.limit is not None:
            docs = docs[: max(args.limit, 0)]
        _print_docs(out, docs, db.options.index_by)
    return 0
