"""Values by store type: ``add``, ``put``, ``get``, ``del``, ``list``, ``inc``, ``dec``, ``value``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Final, cast

from ipfs_log.cid import CID
from ipfs_log.errors import CodecError
from ipfs_log.identity import key_to_did
from orbit.cli._input import value_arg
from orbit.cli._output import CliError, Output, UsageError, parse_value, short_cid, short_did, text
from orbit.cli._session import TYPES, Session, typed

if TYPE_CHECKING:  # by type name below: a command imports only its database's type
    from orbit.databases import (
        CounterDatabase,
        DocumentsDatabase,
        EventLogDatabase,
        KeyValueDatabase,
    )

__all__ = [
    "cmd_add",
    "cmd_dec",
    "cmd_del",
    "cmd_get",
    "cmd_inc",
    "cmd_list",
    "cmd_put",
    "cmd_value",
]

_MISSING: Final[Any] = object()


def cmd_add(args: argparse.Namespace, out: Output) -> int:
    """``orbit add NAME VALUE``: append an event."""
    with Session(args, out, create=args.type is not None) as s:
        db: EventLogDatabase = typed(s.open(args.name, "add", ("eventlog",), args.type)[0], "eventlog")
        value = value_arg(args, args.value)
        cid = db.add(value)
    if out.json:
        out.document({"cid": str(cid)})
    else:
        out.line(str(cid))
    return 0


def cmd_put(args: argparse.Namespace, out: Output) -> int:
    """``orbit put NAME KEY VALUE`` (keyvalue) or ``orbit put NAME DOC`` (documents)."""
    with Session(args, out, create=args.type is not None) as s:
        db, _ = s.open(args.name, "put", ("keyvalue", "documents"), args.type)
        if db.store_type == "keyvalue":
            kv: KeyValueDatabase = typed(db, "keyvalue")
            if args.value is None:
                raise UsageError(
                    "usage: orbit put NAME KEY VALUE (a keyvalue database takes a key and a value)"
                )
            key = args.key_or_doc
            cid = kv.put(key, value_arg(args, args.value))
            facts: dict[str, Any] = {"key": key, "cid": str(cid)}
        else:
            if args.value is not None:
                raise UsageError("usage: orbit put NAME DOC (a documents database takes one JSON object)")
            docs: DocumentsDatabase = typed(db, "documents")
            doc = value_arg(args, args.key_or_doc, "DOC")
            if isinstance(doc, list):
                many = docs.put_many(doc)  # type: ignore[arg-type]  # the store checks each document
                facts = {"documents": len(doc), "cid": None if many is None else str(many)}
            else:
                cid = docs.put(doc)  # type: ignore[arg-type]  # the store checks it is a map
                facts = {
                    "key": doc.get(docs.options.index_by) if isinstance(doc, dict) else None,
                    "cid": str(cid),
                }
    if out.json:
        out.document(facts)
    else:
        out.line(str(facts["cid"]))
    return 0


def _missing(args: argparse.Namespace, out: Output, what: str) -> int:
    if args.default is not None:
        out.value(parse_value(args.default, "--default"))
        return 0
    raise CliError(f"{what} (--default VALUE prints a value instead)")


def _find_event(db: EventLogDatabase, text: str) -> CID | None:
    try:
        cid = CID.parse(text)
    except CodecError:
        cid = None
    if cid is not None:
        return cid if db.get(cid, _MISSING) is not _MISSING else None
    if len(text) < 6:
        raise UsageError(f"give a whole CID or at least its last 6 characters, not {text!r}")
    found = [e.cid for e in db.iter() if str(e.cid).endswith(text)]
    if len(found) > 1:
        raise CliError(f"{text!r} ends {len(found)} event CIDs; give more characters")
    return found[0] if found else None


def cmd_get(args: argparse.Namespace, out: Output) -> int:
    """``orbit get NAME KEY``: a key's value, a document, or an event by CID."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "get", ("keyvalue", "documents", "eventlog"))
        if db.store_type == "eventlog":
            events: EventLogDatabase = typed(db, "eventlog")
            cid = _find_event(events, args.key)
            if cid is None:
                return _missing(args, out, f"no event {args.key} in {entry.name}")
            value = events.get(cid)
        else:
            keyed = cast("KeyValueDatabase | DocumentsDatabase", db)
            value = keyed.get(args.key, _MISSING)
            if value is _MISSING:
                kind = "key" if entry.type == "keyvalue" else "document"
                return _missing(args, out, f"no {kind} {args.key!r} in {entry.name}")
    out.value(value)
    return 0


def cmd_del(args: argparse.Namespace, out: Output) -> int:
    """``orbit del NAME KEY``: delete a key or a document."""
    with Session(args, out) as s:
        db0, entry = s.open(args.name, "del", ("keyvalue", "documents"))
        db = cast("KeyValueDatabase | DocumentsDatabase", db0)
        if args.key not in db:
            kind = "key" if entry.type == "keyvalue" else "document"
            raise CliError(f"no {kind} {args.key!r} in {entry.name}")
        cid = db.delete(args.key)
    if out.json:
        out.document({"key": args.key, "cid": str(cid)})
    else:
        out.line(str(cid))
    return 0


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    """``orbit list NAME``: every event, key, document, or each writer's count."""
    with Session(args, out) as s:
        if s.lookup(args.name).type == "table":
            raise CliError(
                f"{args.name!r} is a table database: read it with SQL, "
                f"orbit sql {args.name} 'SELECT * FROM …' (`.tables` lists its tables)"
            )
        db, entry = s.open(args.name, "list", TYPES)
        rows: list[list[str]] = []
        full = args.full
        if db.store_type == "eventlog":
            events: EventLogDatabase = typed(db, "eventlog")
            for cid, value in events.iter(amount=args.limit, reverse=args.reverse):
                if out.json:
                    out.document({"cid": str(cid), "value": value})
                else:
                    rows.append([short_cid(str(cid), full), text(value)])
            out.table(["CID", "VALUE"], rows, ["dim", None])
        elif db.store_type == "counter":
            counter: CounterDatabase = typed(db, "counter")
            totals = sorted(counter.totals.items())
            for writer, total in totals:
                did = key_to_did(writer)
                if out.json:
                    out.document({"writer": did, "total": total})
                else:
                    rows.append([short_did(did, full), str(total)])
            if not out.json:
                out.table(["WRITER", "TOTAL"], rows)
                out.line(f"value {counter.value}")
        else:
            keyed = cast("KeyValueDatabase | DocumentsDatabase", db)
            items: list[tuple[str, Any]] = sorted(keyed.items())
            if args.reverse:
                items.reverse()
            if args.limit is not None:
                items = items[: max(args.limit, 0)]
            for key, value in items:
                if out.json:
                    out.document({"key": key, "value": value})
                else:
                    rows.append([key, text(value)])
            out.table(["KEY", "VALUE" if entry.type == "keyvalue" else "DOCUMENT"], rows)
    return 0


def _counter(args: argparse.Namespace, out: Output, command: str) -> int:
    if args.amount < 0:
        raise UsageError(f"{command} takes a positive amount, not {args.amount}")
    with Session(args, out, create=args.type is not None) as s:
        db: CounterDatabase = typed(s.open(args.name, command, ("counter",), args.type)[0], "counter")
        cid = db.inc(args.amount) if command == "inc" else db.dec(args.amount)
        value = db.value
    if out.json:
        out.document({"value": value, "cid": str(cid)})
    else:
        out.line(str(value))
    return 0


def cmd_inc(args: argparse.Namespace, out: Output) -> int:
    """``orbit inc NAME [N]``: add to a counter."""
    return _counter(args, out, "inc")


def cmd_dec(args: argparse.Namespace, out: Output) -> int:
    """``orbit dec NAME [N]``: subtract from a counter."""
    return _counter(args, out, "dec")


def cmd_value(args: argparse.Namespace, out: Output) -> int:
    """``orbit value NAME``: a counter's value."""
    with Session(args, out) as s:
        db: CounterDatabase = typed(s.open(args.name, "value", ("counter",))[0], "counter")
        value = db.value
    if out.json:
        out.document({"value": value})
    else:
        out.line(str(value))
    return 0
