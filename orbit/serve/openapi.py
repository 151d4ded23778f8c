"""The OpenAPI 3.0 description of the daemon's HTTP API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from orbit.serve.protocol import API

__all__ = ["openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_VALUE: dict[str, Any] = {"description": "a JSON value (DAG-JSON links and bytes)"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


_ERRORS = {
    "400": _error("the request is malformed; the error says what is wrong"),
    "401": _error("no token, or a wrong one"),
    "404": _error("no such database, key or event"),
    "409": _error("the operation does not apply to this database's type"),
    "413": _error("the body is too large"),
    "422": _error("the library refused the input (bad value, SQL error); nothing was written"),
}
_DB = {
    "name": "db",
    "in": "path",
    "required": True,
    "description": "a database name, or its manifest CID",
    "schema": {"type": "string", "minLength": 1},
}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": 10000},
}


def _op(
    summary: str,
    *,
    params: list[Any] | None = None,
    body: dict[str, Any] | None = None,
    ok: str = "200",
    ok_text: str = "done",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {ok: _ok(ok_text), **_ERRORS}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def openapi() -> dict[str, Any]:
    """Return the OpenAPI document (a new dict each time)."""
    d = f"{API}/dbs/{{db}}"
    types = ["eventlog", "keyvalue", "counter", "documents", "table"]
    op_schema = _object(
        {
            "op": {"type": "string", "enum": ["put", "del", "add", "inc"]},
            "key": {"type": "string"},
            "value": _JSON_VALUE,
            "doc": {"type": "object"},
            "by": {"type": "integer"},
        },
        ["op"],
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "orbit serve",
            "version": "1",
            "description": "The HTTP API of `orbit serve`: one OrbitDB directory, its databases, live "
            "updates (server-sent events) and the `orbit` command line run inside the daemon.",
        },
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _object(
                    {"error": {"type": "string"}, "status": {"type": "integer"}}, ["error", "status"]
                )
            },
        },
        "paths": {
            f"{API}/ping": {"get": _op("the daemon: its directory, identity and node")},
            f"{API}/dbs": {
                "get": _op("the databases of the directory"),
                "post": _op(
                    "create a database by name and type, or add one by address",
                    body={
                        "oneOf": [
                            _object(
                                {
                                    "name": {"type": "string", "minLength": 1},
                                    "type": {"type": "string", "enum": types},
                                    "write": {
                                        "oneOf": [
                                            {"type": "string", "enum": ["*"]},
                                            {"type": "array", "items": {"type": "string"}},
                                        ]
                                    },
                                    "index_by": {"type": "string"},
                                    "indexes": {"type": "array", "items": {"type": "string"}},
                                    "schema": {"type": "string"},
                                },
                                ["name", "type"],
                            ),
                            _object({"address": {"type": "string"}, "as": {"type": "string"}}, ["address"]),
                        ]
                    },
                    ok="201",
                    ok_text="created (200: it existed)",
                ),
            },
            d: {"get": _op("a database: address, type, writers, heads, entries", params=[_DB])},
            f"{d}/entries": {
                "get": _op("the newest log entries, with writer, clock and links", params=[_DB, _LIMIT])
            },
            f"{d}/values": {
                "get": _op("the database's state (events, items, counter, rows)", params=[_DB, _LIMIT])
            },
            f"{d}/keys/{{key}}": {
                "get": _op("a key's value (eventlog: an event by CID)", params=[_DB, _KEY]),
                "put": _op(
                    "put a value (keyvalue) or a document (documents)",
                    params=[_DB, _KEY],
                    body=_object({"value": _JSON_VALUE}, ["value"]),
                ),
                "delete": _op("delete a key or document", params=[_DB, _KEY]),
            },
            f"{d}/ops": {
                "post": _op(
                    "several writes appended together in one commit",
                    params=[_DB],
                    body=_object({"ops": {"type": "array", "items": op_schema, "minItems": 1}}, ["ops"]),
                )
            },
            f"{d}/query": {
                "post": _op(
                    "documents equal to fields (where) or matching conditions ('born>1900')",
                    params=[_DB],
                    body=_object(
                        {
                            "where": {"type": "object"},
                            "conditions": {"type": "array", "items": {"type": "string"}},
                            "limit": {"type": "integer", "minimum": 0},
                        }
                    ),
                )
            },
            f"{d}/sql": {
                "post": _op(
                    "SQL on a table database: a query, or with write a statement appended as one entry",
                    params=[_DB],
                    body=_object(
                        {
                            "sql": {"type": "string"},
                            "params": {"type": "array"},
                            "write": {"type": "boolean"},
                        },
                        ["sql"],
                    ),
                )
            },
            f"{d}/proofs/keys/{{key}}": {
                "get": _op(
                    "a key's value with a proof against a signed commit (keyvalue, documents): check it "
                    "with orbit.state.verify and the write list; proof and commit are base64",
                    params=[_DB, _KEY],
                )
            },
            f"{d}/proofs/sql": {
                "post": _op(
                    "a table's rows by primary key (SELECT * … WHERE key = ?, BETWEEN, bounds) with a "
                    "proof they are all: items are [row key (base64), row]; check with RangeProof.verify",
                    params=[_DB],
                    body=_object({"sql": {"type": "string"}, "params": {"type": "array"}}, ["sql"]),
                )
            },
            f"{d}/status": {
                "get": _op("replication: peers, heads, pending, missing, counters", params=[_DB])
            },
            f"{API}/events": {
                "get": {
                    "summary": "server-sent events: 'update' on every write or replicated entry, 'status' "
                    "every 2 s",
                    "parameters": [
                        {"name": "db", "in": "query", "required": False, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_ERRORS,
                    },
                }
            },
            f"{API}/cli": {
                "post": _op(
                    "run an `orbit` command line inside the daemon; its output and exit status",
                    body=_object(
                        {
                            "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "stdin": {"type": "string", "description": "base64"},
                            "cwd": {"type": "string"},
                        },
                        ["argv"],
                    ),
                )
            },
        },
    }
