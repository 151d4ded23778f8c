"""The daemon's HTTP API: a Starlette application over one open :class:`~orbit.OrbitDB`.

Every request but the explorer's static files carries ``Authorization: Bearer <token>`` (the token of
the directory's ``api.token``), or gets 401. Bodies are bounded (:data:`~orbit.serve.protocol.MAX_BODY`,
413 above), JSON is decoded strictly (objects where objects are expected, no NaN, DAG-JSON links and
bytes), and a request that is refused writes nothing: its input is checked before the one library call
that writes. Errors are JSON ``{"error": "...", "status": n}`` naming what was wrong.

Library calls block (the directory's lock, the disk), so endpoints run them in Starlette's thread pool;
the OrbitDB and its databases are thread-safe (one re-entrant lock per directory, see
:mod:`orbit.databases.base`). The endpoints are listed, with their bodies, in :mod:`orbit.serve.openapi`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, NoReturn

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.errors import BlockNotFoundError, CodecError, IdentityError, LogError, OrbitError
from ipfs_log.errors import PermissionDeniedError as LogPermissionDeniedError
from ipfs_log.identity import key_to_did
from orbit.address import is_address
from orbit.databases import (
    CounterDatabase,
    Database,
    DocumentsDatabase,
    EventLogDatabase,
    KeyValueDatabase,
)
from orbit.errors import (
    BlockStoreError,
    DatabaseClosedError,
    DatabaseError,
    IpfsError,
    ReplicationError,
    ReplicationTimeoutError,
    StorageFullError,
    UnknownAddressError,
)
from orbit.facade import OrbitDB
from orbit.registry import Registry, RegistryEntry
from orbit.serve.hub import EventHub, status_of
from orbit.serve.openapi import openapi
from orbit.serve.protocol import API, MAX_BODY, MAX_COMMAND_BODY, CommandRequest, CommandRunner
from orbit.serve.values import BadValue, from_json, to_json
from orbit.sql import SqlError, TableDatabase
from stores.documents_query import Condition, Query, QuerySyntaxError, parse_query
from stores.errors import KeyNotFoundError, StoreError, UnindexedFieldError

__all__ = ["Host", "HttpError", "build_app"]

TYPES: Final = ("eventlog", "keyvalue", "counter", "documents", "table")
MAX_LIST: Final = 10_000
"""The most entries, keys or rows one answer lists."""
MAX_OPS: Final = 10_000
"""The most operations one ``ops`` request may carry."""
COMMAND_WAIT: Final = 60.0
"""Seconds a command line waits for the one running before it (503 after)."""
STATUS_EVERY: Final = 2.0
"""Seconds between two ``status`` events on a stream."""
STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explorer.js": ("explorer.js", "text/javascript"),
}
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


class HttpError(Exception):
    """A request refused with ``status``; ``message`` says what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fail(status: int, message: str) -> NoReturn:
    raise HttpError(status, message)


_STATUS: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (UnknownAddressError, 404),
    (KeyNotFoundError, 404),
    (BlockNotFoundError, 404),
    (LogPermissionDeniedError, 403),
    (ReplicationTimeoutError, 504),
    (ReplicationError, 409),
    (DatabaseClosedError, 409),
    (IpfsError, 502),
    (StorageFullError, 507),
    (BlockStoreError, 500),
    (SqlError, 422),
    (QuerySyntaxError, 422),
    (StoreError, 422),
    (CodecError, 422),
    (IdentityError, 422),
    (LogError, 422),
    (OrbitError, 400),
)


def status_of_error(e: OrbitError) -> int:
    """The HTTP status for a library error (422: the input was refused; 5xx: the daemon failed)."""
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 400


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A JSON error body: ``{"error": message, "status": status}``."""
    return JSONResponse({"error": " ".join(message.split()), "status": status}, status, headers=headers)


@dataclass(eq=False)
class Host:
    """What the API serves: the daemon's open directory and what it shares between requests.

    Args:
        orbit: the open OrbitDB (owned by the daemon; requests never close it).
        token: the bearer token every request must carry; None only on loopback, asked for.
        node: the IPFS node's RPC URL, if the daemon replicates through one.
        run_command: runs an ``orbit`` command line inside the daemon (``POST /api/v1/cli``).
    """

    orbit: OrbitDB
    token: str | None
    node: str | None = None
    run_command: CommandRunner | None = None
    hub: EventHub = field(default_factory=EventHub)
    writes: threading.Lock = field(default_factory=threading.Lock)
    """Held by command lines and by the creation of names (the registry is read, then rewritten)."""
    _cache: dict[str, Database[Any]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """The daemon's orbit directory."""
        return self.orbit.directory

    def registry(self) -> Registry:
        """The directory's registry (read afresh: a command line may have changed it)."""
        return Registry(self.directory)

    def database(self, target: str) -> Database[Any]:
        """The open database a path names: a registered name, an address, or a manifest CID alone.

        Raises:
            HttpError: 404 if there is no such database here.
        """
        cached = self._cache.get(target)
        if cached is not None and not cached.closed:
            return cached
        registry = self.registry()
        entry = registry.get(target)
        if entry is None:
            address = target if is_address(target) else f"/orbitdb/{target}"
            if not is_address(address):
                _fail(404, f"no database named {target!r} in {self.directory}")
            entry = registry.by_address(address)
            if entry is None:
                try:
                    manifest = self.orbit.resolve(address)
                except DatabaseError:  # not a manifest's CID, or no such block here
                    _fail(404, f"no database named {target!r} (nor with that address) in {self.directory}")
                entry = RegistryEntry(manifest.name, manifest.address, manifest.type)
        db: Database[Any] = self.orbit.open(entry.address, **entry.options)
        self._cache[target] = db
        self.hub.watch([db])
        return db

    def cached(self, target: str) -> bool:
        """Whether ``target`` names a database already open and looked up (no registry read, no open)."""
        db = self._cache.get(target)
        return db is not None and not db.closed

    def forget(self) -> None:
        """Drop cached name lookups (after a command line, which may have renamed or dropped)."""
        self._cache.clear()


# ---------------------------------------------------------------------------------------------- input


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, at most ``limit`` bytes.

    Raises:
        HttpError: 413 when it is longer, 400 when the client went away.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                _fail(413, f"the request body is over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        _fail(400, "the client went away before sending the whole body")
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(body: bytes, what: str = "the request body") -> dict[str, Any]:
    """``body`` as a JSON object (UTF-8, no NaN/Infinity, nothing after it).

    Raises:
        HttpError: 400 naming what is wrong.
    """
    if not body:
        _fail(400, f"{what} is empty: send a JSON object")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        _fail(400, f"{what} is not UTF-8")
    except (ValueError, RecursionError) as e:
        _fail(400, f"{what} is not JSON: {e}")
    if not isinstance(value, dict):
        _fail(400, f"{what} is a JSON object, not {type(value).__name__}")
    return value


def _known(body: Mapping[str, Any], allowed: tuple[str, ...], what: str = "the body") -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        _fail(400, f"{what} has unknown fields {extra}; allowed: {list(allowed)}")


def _str(body: Mapping[str, Any], key: str, *, required: bool = True, what: str = "the body") -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            _fail(400, f"{what} needs {key!r} (a string)")
        return None
    if not isinstance(value, str):
        _fail(400, f"{what}: {key!r} is a string, not {type(value).__name__}")
    return value


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        _fail(
            400,
            f"the body needs {key!r}, a string" + ("" if value is None else f", not {type(value).__name__}"),
        )
    return value


def _ipld(value: Any, where: str) -> Any:
    try:
        return from_json(value, where)
    except BadValue as e:
        _fail(400, str(e))


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        n = int(text)
    except ValueError:
        _fail(400, f"?{name}= is an integer, not {text!r}")
    if not low <= n <= high:
        _fail(400, f"?{name}= is from {low} to {high}, not {n}")
    return n


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        _fail(400, f"?{name}= is true or false, not {text!r}")
    return text in ("true", "1")


def _typed(db: Database[Any], cls: type[Any] | tuple[type[Any], ...], what: str) -> Any:
    if not isinstance(db, cls):
        _fail(409, f"{db.name!r} is a {db.store_type} database; {what}")
    return db


# ---------------------------------------------------------------------------------------------- reads


def _info(host: Host, db: Database[Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": db.name,
        "address": db.address,
        "type": db.store_type,
        "writers": list(db.manifest.writers),
        "heads": [str(h) for h in db.heads()],
        "entries": db.entry_count(),
        "replicating": db.replicator is not None,
    }
    if isinstance(db, TableDatabase):
        info["schema"] = list(db.schema.sql)
        info["tables"] = [t.name for t in db.schema.tables]
    return info


def _entries(host: Host, db: Database[Any], limit: int) -> list[dict[str, Any]]:
    me = host.orbit.identity.public_key
    with db.lock:
        db.check_open()
        entries = list(db.log.iter(reverse=True, amount=limit))
    return [
        {
            "cid": str(e.cid),
            "time": e.time,
            "writer": key_to_did(e.key),
            "mine": e.key == me,
            "next": [str(c) for c in e.next],
            "refs": [str(c) for c in e.refs],
            "payload": to_json(e.payload),
            "verified": True,  # the log admits only entries whose hash, signature and writer it checked
        }
        for e in entries
    ]


def _values(db: Database[Any], limit: int) -> dict[str, Any]:
    if isinstance(db, EventLogDatabase):
        events = list(db.iter(reverse=True, amount=limit))
        return {"events": [{"cid": str(e.cid), "value": to_json(e.value)} for e in events]}
    if isinstance(db, CounterDatabase):
        return {"value": db.value, "writers": {key_to_did(k): v for k, v in db.totals.items()}}
    if isinstance(db, KeyValueDatabase | DocumentsDatabase):
        items = db.items()[:limit]
        return {"items": [{"key": k, "value": to_json(v)} for k, v in items]}
    if isinstance(db, TableDatabase):
        tables: dict[str, Any] = {}
        for table in db.schema.tables:
            tables[table.name] = [
                {"key": to_json(k), "row": to_json(r)} for k, r in db.rows(table.name)[:limit]
            ]
        return {"tables": tables}
    return {}


def _get(db: Database[Any], key: str) -> dict[str, Any]:
    if isinstance(db, EventLogDatabase):
        try:
            cid = CID.parse(key)
        except (CodecError, ValueError):
            _fail(400, f"an eventlog's key is an event's CID, not {key!r}")
        if cid not in db:
            _fail(404, f"no event {key} in {db.name!r}")
        return {"key": key, "value": to_json(db.get(cid))}
    keyed: KeyValueDatabase | DocumentsDatabase = _typed(
        db, (KeyValueDatabase, DocumentsDatabase), "get works on keyvalue, documents and eventlog"
    )
    missing: Any = object()
    value = keyed.get(key, missing)
    if value is missing:
        _fail(404, f"no key {key!r} in {db.name!r}")
    return {"key": key, "value": to_json(value)}


# --------------------------------------------------------------------------------------------- writes


def _op(op: Any, i: int) -> tuple[str, Any, Any]:
    where = f"ops[{i}]"
    if not isinstance(op, dict):
        _fail(400, f"{where} is an object like {{'op': 'put', 'key': 'k', 'value': 1}}")
    kind = op.get("op")
    shapes = {
        "put": ("op", "key", "value", "doc"),
        "del": ("op", "key"),
        "add": ("op", "value"),
        "inc": ("op", "by"),
    }
    if not isinstance(kind, str) or kind not in shapes:
        _fail(400, f"{where}.op is one of {sorted(shapes)}, not {kind!r}")
    _known(op, shapes[kind], where)
    if kind == "inc":
        by = op.get("by", 1)
        if not isinstance(by, int) or isinstance(by, bool) or abs(by) > 2**53:
            _fail(400, f"{where}.by is an integer")
        return kind, None, by
    key = op.get("key")
    if (kind == "del" or (kind == "put" and "doc" not in op)) and not isinstance(key, str):
        _fail(400, f"{where}.key is a string")
    if kind == "put" and "doc" in op:
        if "value" in op or "key" in op:
            _fail(400, f"{where}: a documents put has 'doc' alone (its key is in it)")
        return kind, None, _ipld(op["doc"], f"{where}.doc")
    if kind in ("put", "add") and "value" not in op:
        _fail(400, f"{where} needs a 'value'")
    return kind, key, _ipld(op.get("value"), f"{where}.value") if kind != "del" else None


def _apply_ops(db: Database[Any], ops: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    """All of ``ops`` in one batch: checked as each is added, written together, or not at all."""
    allowed = {
        EventLogDatabase: {"add"},
        KeyValueDatabase: {"put", "del"},
        DocumentsDatabase: {"put", "del"},
        CounterDatabase: {"inc"},
    }
    kinds = next((v for k, v in allowed.items() if isinstance(db, k)), set())
    for i, (kind, key, _) in enumerate(ops):
        if kind not in kinds:
            _fail(409, f"ops[{i}]: {kind!r} does not apply to a {db.store_type} database")
        if isinstance(db, DocumentsDatabase) and kind == "put" and key is not None:
            _fail(400, f"ops[{i}]: a documents put is {{'op': 'put', 'doc': {{...}}}}")
        if isinstance(db, KeyValueDatabase) and kind == "put" and key is None:
            _fail(400, f"ops[{i}]: a keyvalue put is {{'op': 'put', 'key': ..., 'value': ...}}")
    batch: Any
    with db.batch() as batch:  # type: ignore[attr-defined]
        for kind, key, value in ops:
            if kind == "add":
                batch.add(value)
            elif kind == "inc":
                batch.inc(value)
            elif kind == "del":
                batch.delete(key)
            elif isinstance(db, DocumentsDatabase):
                batch.put(value)
            else:
                batch.put(key, value)
    return {"entries": [str(e.cid) for e in batch.entries], "heads": [str(h) for h in db.heads()]}


def _put(db: Database[Any], key: str, body: dict[str, Any]) -> dict[str, Any]:
    _known(body, ("value",))
    if "value" not in body:
        _fail(400, "the body is {'value': ...}")
    value = _ipld(body["value"], "value")
    if isinstance(db, KeyValueDatabase):
        return {"key": key, "cid": str(db.put(key, value))}
    docs = _typed(db, DocumentsDatabase, "put works on keyvalue and documents databases")
    if not isinstance(value, dict):
        _fail(400, "a document is a JSON object")
    field_ = docs.options.index_by
    if value.get(field_, key) != key:
        _fail(400, f"the document's {field_!r} is {value.get(field_)!r}, not the key {key!r} of the path")
    return {"key": key, "cid": str(docs.put({**value, field_: key}))}


def _delete(db: Database[Any], key: str) -> dict[str, Any]:
    keyed: KeyValueDatabase | DocumentsDatabase = _typed(
        db, (KeyValueDatabase, DocumentsDatabase), "del works on keyvalue and documents databases"
    )
    if key not in keyed:
        _fail(404, f"no key {key!r} in {db.name!r}")
    return {"key": key, "cid": str(keyed.delete(key))}


def _create(host: Host, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if "address" in body:
        _known(body, ("address", "as"))
        address = _text(body, "address")
        name = _str(body, "as", required=False)
        if not is_address(address):
            _fail(400, f"'address' is an /orbitdb/<cid> address, not {address!r}")
        with host.writes:
            try:
                manifest = host.orbit.resolve(address)
            except UnknownAddressError:
                _fail(404, f"{address} is not in {host.directory}, nor on its node")
            registry = host.registry()
            known = registry.by_address(manifest.address)
            if known is not None:  # already here, under its name
                db = host.orbit.open(manifest.address, **known.options)
                host.hub.watch([db])
                return 200, {**_info(host, db), "name": known.name}
            name = name or manifest.name
            _check_name(name)
            taken = registry.get(name)
            if taken is not None and taken.address != manifest.address:
                _fail(409, f"the name {name!r} is taken by {taken.address}; send 'as': OTHER")
            db = host.orbit.open(manifest.address)
            if taken is None:
                registry.add(RegistryEntry(name, manifest.address, manifest.type))
        host.hub.watch([db])
        return (200 if taken else 201), {**_info(host, db), "name": name}
    _known(body, ("name", "type", "write", "index_by", "indexes", "schema"))
    name = _text(body, "name")
    store_type = _text(body, "type")
    _check_name(name)
    if is_address(name):
        _fail(400, f"'name' is a name, not an address: {name!r} (send 'address' to add one)")
    if store_type not in TYPES:
        _fail(400, f"'type' is one of {list(TYPES)}, not {store_type!r}")
    options: dict[str, Any] = {}
    if store_type == "documents":
        index_by = _str(body, "index_by", required=False) or "_id"
        if index_by != "_id":
            options["index_by"] = index_by
        indexes = body.get("indexes") or []
        if not isinstance(indexes, list) or not all(isinstance(f, str) and f for f in indexes):
            _fail(400, "'indexes' is a list of field names")
        if indexes:
            options["indexes"] = list(dict.fromkeys(indexes))
    elif "index_by" in body or "indexes" in body:
        _fail(400, "'index_by' and 'indexes' are options of documents databases")
    schema = _str(body, "schema", required=False)
    if store_type == "table":
        if not schema:
            _fail(400, "a table database needs 'schema': 'CREATE TABLE …'")
    elif schema is not None:
        _fail(400, "'schema' is an option of table databases")
    write_field = body.get("write", [])
    if write_field == "*":
        write: str | list[str] = "*"
    elif isinstance(write_field, list) and all(isinstance(w, str) for w in write_field):
        write = [host.orbit.identity.did, *write_field]
    else:
        _fail(400, "'write' is '*' (anyone) or a list of did:key writers")
    with host.writes:
        registry = host.registry()
        old = registry.get(name)
        if old is not None:
            if old.type != store_type:
                _fail(409, f"database {name!r} already exists as a {old.type} database ({old.address})")
            db = host.orbit.open(old.address, **old.options)
            host.hub.watch([db])
            return 200, _info(host, db)
        db = host.orbit.open(
            name, type=store_type, write=write, **options, **({"schema": schema} if schema else {})
        )
        registry.add(RegistryEntry(name, db.address, store_type, options))
    host.hub.watch([db])
    return 201, _info(host, db)


def _check_name(name: str) -> None:
    if not name or len(name) > 200 or not name.isprintable() or name.startswith("-") or "/" in name:
        _fail(400, f"a database name is printable text (no '/', not starting with '-'), not {name!r}")


def _sql_params(body: dict[str, Any]) -> list[IPLDKind]:
    params = body.get("params", [])
    if not isinstance(params, list) or len(params) > 999:
        _fail(400, "'params' is a list of values for the ? placeholders")
    values = [_ipld(p, f"params[{i}]") for i, p in enumerate(params)]
    for i, v in enumerate(values):
        if isinstance(v, dict | list | CID):
            _fail(400, f"params[{i}] is a number, text, null or bytes")
    return values


def _sql(db: Database[Any], body: dict[str, Any]) -> dict[str, Any]:
    table = _typed(db, TableDatabase, "sql works on table databases")
    _known(body, ("sql", "params", "write"))
    statement = _text(body, "sql")
    write = body.get("write", False)
    if not isinstance(write, bool):
        _fail(400, "'write' is true or false")
    values = _sql_params(body)
    if write:
        cursor = table.execute(statement, values)
        rows = cursor.fetchall() if cursor.description else []
        columns = [d[0] for d in cursor.description or ()]
        entry = cursor.entry
        return {
            "columns": columns,
            "rows": to_json([list(r) for r in rows]),
            "rowcount": cursor.rowcount,
            "entry": None if entry is None else str(entry),
        }
    columns, rows = table.query(statement, values)
    if len(rows) > MAX_LIST:
        _fail(422, f"the query returned over {MAX_LIST} rows: add a LIMIT")
    return {"columns": columns, "rows": to_json([list(r) for r in rows])}


# --------------------------------------------------------------------------------------------- proofs


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _prove_key(db: Database[Any], key: str) -> dict[str, Any]:
    keyed: KeyValueDatabase | DocumentsDatabase = _typed(
        db,
        (KeyValueDatabase, DocumentsDatabase),
        "proofs by key work on keyvalue and documents databases (a table's: POST …/proofs/sql)",
    )
    answer = keyed.prove(key)
    return {
        "key": key,
        "present": answer.present,
        "value": to_json(answer.value),
        "proof": _b64(answer.proof),
        "commit": _b64(answer.commit),
    }


def _prove_sql(db: Database[Any], body: dict[str, Any]) -> dict[str, Any]:
    table = _typed(db, TableDatabase, "SQL proofs work on table databases")
    _known(body, ("sql", "params"))
    answer = table.prove_sql(_text(body, "sql"), _sql_params(body))
    if len(answer.items) > MAX_LIST:
        _fail(422, f"the range holds over {MAX_LIST} rows: ask for a narrower one")
    return {
        "lo": None if answer.lo is None else _b64(answer.lo),
        "hi": None if answer.hi is None else _b64(answer.hi),
        "items": [[_b64(key), to_json(row)] for key, row in answer.items],
        "proof": _b64(answer.proof),
        "commit": _b64(answer.commit),
    }


def _query(db: Database[Any], body: dict[str, Any]) -> dict[str, Any]:
    docs = _typed(db, DocumentsDatabase, "query works on documents databases")
    _known(body, ("where", "conditions", "limit"))
    limit = body.get("limit", MAX_LIST)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIST:
        _fail(400, f"'limit' is an integer from 0 to {MAX_LIST}")
    if "where" in body:
        where = body["where"]
        if not isinstance(where, dict) or not where:
            _fail(400, "'where' is an object of FIELD: VALUE that the documents equal")
        fields = {k: _ipld(v, f"where.{k}") for k, v in where.items()}
        try:
            found = docs.find(**fields)
        except UnindexedFieldError:  # no index on any of the fields: a scan, with the same equality
            found = docs.query(Query(tuple(Condition(k, "=", v) for k, v in fields.items())))
    else:
        conditions = body.get("conditions")
        if (
            not isinstance(conditions, list)
            or not conditions
            or not all(isinstance(c, str) for c in conditions)
        ):
            _fail(400, "the body has 'where' (an object) or 'conditions' (a list like ['born>1900'])")
        found = docs.query(parse_query(conditions))
    return {"documents": to_json(found[:limit])}


# ---------------------------------------------------------------------------------------------- app


class Guard:
    """ASGI middleware: the bearer token on every request but the explorer's files; bodies bounded."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.expected is not None and not (scope["method"] == "GET" and path in STATIC):
            given = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            if given is None or not hmac.compare_digest(given, self.expected):
                what = "no token" if given is None else "a wrong token"
                response = error_response(
                    401,
                    f"the request has {what}: send 'Authorization: Bearer TOKEN' (the token is in the "
                    "directory's api.token file)",
                    {"WWW-Authenticate": 'Bearer realm="orbit"'},
                )
                await response(scope, receive, send)
                return
        limit = MAX_COMMAND_BODY if path == f"{API}/cli" else MAX_BODY
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                size = -1
            if size < 0:
                await error_response(400, "the Content-Length header is not a size")(scope, receive, send)
                return
            if size > limit:
                await error_response(413, f"the request body is over {limit} bytes")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(host: Host) -> Starlette:
    """The API's Starlette application over ``host`` (see the module docstring)."""

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    async def quick(target: str, fn: Callable[[], Any]) -> Any:
        """Run a one-key read or write of an open database on the event loop if nobody holds the lock.

        A thread-pool hop costs about as much as the operation itself; a database not open yet (opening
        may fetch from the node), or a lock held by a join or a batch, sends the call to the pool.
        """
        lock = host.orbit.lock
        if host.cached(target) and lock.acquire(blocking=False):
            try:
                return fn()
            finally:
                lock.release()
        return await run_in_threadpool(fn)

    def database(request: Request) -> Database[Any]:
        return host.database(request.path_params["db"])

    async def ping(request: Request) -> Response:
        return JSONResponse(
            {
                "directory": str(host.directory.resolve()),
                "identity": host.orbit.identity.did,
                "node": host.node,
                "databases": len(host.orbit.databases),
            }
        )

    async def list_dbs(request: Request) -> Response:
        def run() -> list[dict[str, Any]]:
            open_ = {db.address: db for db in host.orbit.databases}
            rows = []
            for entry in host.registry():
                db = open_.get(entry.address)
                rows.append(
                    {
                        "name": entry.name,
                        "address": entry.address,
                        "type": entry.type,
                        "open": db is not None,
                        "entries": None if db is None else db.entry_count(),
                    }
                )
            return rows

        return JSONResponse({"databases": await call(run)})

    async def create_db(request: Request) -> Response:
        body = parse_object(await read_body(request))
        status, info = await call(_create, host, body)
        return JSONResponse(info, status)

    async def info(request: Request) -> Response:
        return JSONResponse(await call(lambda: _info(host, database(request))))

    async def entries(request: Request) -> Response:
        limit = _query_int(request, "limit", 100, 0, MAX_LIST)
        return JSONResponse({"entries": await call(lambda: _entries(host, database(request), limit))})

    async def values(request: Request) -> Response:
        limit = _query_int(request, "limit", 1000, 0, MAX_LIST)
        return JSONResponse(await call(lambda: _values(database(request), limit)))

    async def get_key(request: Request) -> Response:
        target, key = request.path_params["db"], request.path_params["key"]
        return JSONResponse(await quick(target, lambda: _get(host.database(target), key)))

    async def put_key(request: Request) -> Response:
        body = parse_object(await read_body(request))
        target, key = request.path_params["db"], request.path_params["key"]
        return JSONResponse(await quick(target, lambda: _put(host.database(target), key, body)))

    async def del_key(request: Request) -> Response:
        target, key = request.path_params["db"], request.path_params["key"]
        return JSONResponse(await quick(target, lambda: _delete(host.database(target), key)))

    async def ops(request: Request) -> Response:
        body = parse_object(await read_body(request))
        _known(body, ("ops",))
        raw = body.get("ops")
        if not isinstance(raw, list) or not raw or len(raw) > MAX_OPS:
            _fail(400, f"'ops' is a list of 1 to {MAX_OPS} operations")
        parsed = [_op(op, i) for i, op in enumerate(raw)]
        return JSONResponse(await call(lambda: _apply_ops(database(request), parsed)))

    async def query(request: Request) -> Response:
        body = parse_object(await read_body(request))
        return JSONResponse(await call(lambda: _query(database(request), body)))

    async def sql(request: Request) -> Response:
        body = parse_object(await read_body(request))
        return JSONResponse(await call(lambda: _sql(database(request), body)))

    async def status(request: Request) -> Response:
        return JSONResponse(await call(lambda: status_of(database(request))))

    async def prove_key(request: Request) -> Response:
        target, key = request.path_params["db"], request.path_params["key"]
        return JSONResponse(await call(lambda: _prove_key(host.database(target), key)))

    async def prove_sql(request: Request) -> Response:
        body = parse_object(await read_body(request))
        return JSONResponse(await call(lambda: _prove_sql(database(request), body)))

    async def command(request: Request) -> Response:
        body = parse_object(await read_body(request, MAX_COMMAND_BODY))
        _known(body, ("argv", "stdin", "cwd"))
        argv = body.get("argv")
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) for a in argv)
            or len(argv) > 10_000
        ):
            _fail(400, "'argv' is a non-empty list of strings: the arguments after `orbit`")
        if any("\x00" in a for a in argv):
            _fail(400, "'argv' holds a NUL character")
        stdin_text = _str(body, "stdin", required=False)
        cwd = _str(body, "cwd", required=False)
        if cwd is not None and (not cwd.startswith("/") or "\x00" in cwd):
            _fail(400, "'cwd' is an absolute path")
        stdin: bytes | None = None
        if stdin_text is not None:
            try:
                stdin = base64.b64decode(stdin_text, validate=True)
            except (binascii.Error, ValueError):
                _fail(400, "'stdin' is base64")
        runner = host.run_command
        if runner is None:
            _fail(404, "this daemon runs no command lines")

        def run() -> dict[str, Any]:
            if not host.writes.acquire(timeout=COMMAND_WAIT):
                _fail(503, f"another command has run for over {COMMAND_WAIT:.0f} s; try again")
            try:
                result = runner(CommandRequest(tuple(argv), stdin, cwd))
            finally:
                host.forget()
                host.writes.release()
            host.hub.watch(host.orbit.databases)
            return {"status": result.status, "stdout": result.stdout, "stderr": result.stderr}

        return JSONResponse(await call(run))

    async def events(request: Request) -> Response:
        target = request.query_params.get("db")
        address = None
        if target is not None:
            address = (await call(host.database, target)).address
        await call(host.hub.watch, host.orbit.databases)
        listener = host.hub.listen(asyncio.get_running_loop(), address)

        def snapshot() -> list[dict[str, Any]]:
            dbs = host.orbit.databases
            host.hub.watch(dbs)
            return [status_of(db) for db in dbs if address in (None, db.address) and not db.closed]

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n"
                while True:
                    try:
                        state = await call(snapshot)
                    except OrbitError:
                        state = []
                    yield _sse("status", {"databases": state})
                    try:
                        event = await asyncio.wait_for(listener.queue.get(), STATUS_EVERY)
                    except TimeoutError:
                        continue
                    while event is not None:
                        yield _sse(event["event"], event["data"])
                        if listener.queue.empty():
                            break
                        event = listener.queue.get_nowait()
                    if event is None:
                        return
            finally:
                host.hub.leave(listener)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi())

    async def static(request: Request) -> Response:
        name, media = STATIC[request.url.path]
        data = resources.files("orbit.serve").joinpath("explorer", name).read_bytes()
        return Response(
            data,
            media_type=media,
            headers={
                "Content-Security-Policy": _CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        return error_response(exc.status, exc.message)

    async def on_orbit_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OrbitError)
        return error_response(status_of_error(exc), str(exc))

    async def on_starlette_http(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 400)
        detail = getattr(exc, "detail", None) or "bad request"
        return error_response(status, f"{request.method} {request.url.path}: {detail}")

    from starlette.exceptions import HTTPException

    d = "/dbs/{db}"
    routes = [
        Route("/", static, methods=["GET"]),
        Route("/explorer.js", static, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route(f"{API}/ping", ping, methods=["GET"]),
        Route(f"{API}/dbs", list_dbs, methods=["GET"]),
        Route(f"{API}/dbs", create_db, methods=["POST"]),
        Route(f"{API}{d}", info, methods=["GET"]),
        Route(f"{API}{d}/entries", entries, methods=["GET"]),
        Route(f"{API}{d}/values", values, methods=["GET"]),
        Route(f"{API}{d}/keys/{{key:path}}", get_key, methods=["GET"]),
        Route(f"{API}{d}/keys/{{key:path}}", put_key, methods=["PUT"]),
        Route(f"{API}{d}/keys/{{key:path}}", del_key, methods=["DELETE"]),
        Route(f"{API}{d}/ops", ops, methods=["POST"]),
        Route(f"{API}{d}/query", query, methods=["POST"]),
        Route(f"{API}{d}/sql", sql, methods=["POST"]),
        Route(f"{API}{d}/status", status, methods=["GET"]),
        Route(f"{API}{d}/proofs/keys/{{key:path}}", prove_key, methods=["GET"]),
        Route(f"{API}{d}/proofs/sql", prove_sql, methods=["POST"]),
        Route(f"{API}/events", events, methods=["GET"]),
        Route(f"{API}/cli", command, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HttpError: on_http_error,
            OrbitError: on_orbit_error,
            HTTPException: on_starlette_http,
        },
    )
    app.add_middleware(Guard, token=host.token)
    return app


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, allow_nan=False)}\n\n".encode()
