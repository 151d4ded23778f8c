"""stores: database types whose state is derived from an ipfs_log log.

Each store is an incremental reducer over a :class:`ipfs_log.Log`: it applies every entry the log
admits (appended here or joined from elsewhere) once, and reaches the same state whatever order the
entries arrived in, by resolving conflicts per key with the log's total order (last writer wins).

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> log = Log(Identity.from_seed(b"s" * 32), MemoryBlockStore(), log_id="db")
>>> kv = STORE_TYPES["keyvalue"](log)
>>> _ = kv.put("greeting", "hello")
>>> kv["greeting"]
'hello'

The names below are imported when first used, so a program that opens one keyvalue database never
loads the table store (nor SQLite).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ipfs_log.lazy import lazy_attributes as _lazy_attributes
from stores import errors
from stores.errors import (
    DocumentNotFoundError,
    InvalidCheckpointError,
    InvalidOperationError,
    KeyNotFoundError,
    SchemaError,
    StoreClosedError,
    StoreError,
    UnindexedFieldError,
)

if TYPE_CHECKING:
    from stores.base import Batch, Store, Update, UpdateCallback
    from stores.counter import Counter, CounterBatch
    from stores.documents import Document, Documents, DocumentsBatch, DocumentsOptions
    from stores.eventlog import Event, EventLog, EventLogBatch
    from stores.keyvalue import KeyValue, KeyValueBatch
    from stores.table import Column, Schema, Table, TableBatch, TableSchema

    STORE_TYPES: dict[str, type[Store]]
    """Each store type by its ``TYPE`` name, as a database manifest names it."""

_MODULES = {
    "base": ("Batch", "Store", "Update", "UpdateCallback"),
    "counter": ("Counter", "CounterBatch"),
    "documents": ("Document", "Documents", "DocumentsBatch", "DocumentsOptions"),
    "eventlog": ("Event", "EventLog", "EventLogBatch"),
    "keyvalue": ("KeyValue", "KeyValueBatch"),
    "table": ("Column", "Schema", "Table", "TableBatch", "TableSchema"),
}
_TYPES = {
    "eventlog": "EventLog",
    "keyvalue": "KeyValue",
    "counter": "Counter",
    "documents": "Documents",
    "table": "Table",
}
_imported = _lazy_attributes(
    "stores", {n: f"stores.{m}" for m, ns in _MODULES.items() for n in ns}, globals()
)


def __getattr__(name: str) -> object:
    if name == "STORE_TYPES":  # every type: imports them all
        types = {t: getattr(importlib.import_module(f"stores.{t}"), cls) for t, cls in _TYPES.items()}
        globals()[name] = types
        return types
    return _imported(name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "STORE_TYPES",
    "Batch",
    "Column",
    "Counter",
    "CounterBatch",
    "Document",
    "DocumentNotFoundError",
    "Documents",
    "DocumentsBatch",
    "DocumentsOptions",
    "Event",
    "EventLog",
    "EventLogBatch",
    "InvalidCheckpointError",
    "InvalidOperationError",
    "KeyNotFoundError",
    "KeyValue",
    "KeyValueBatch",
    "Schema",
    "SchemaError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "Table",
    "TableBatch",
    "TableSchema",
    "UnindexedFieldError",
    "Update",
    "UpdateCallback",
    "errors",
]
