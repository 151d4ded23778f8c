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
"""

from stores import errors
from stores.base import Batch, Store, Update, UpdateCallback
from stores.counter import Counter, CounterBatch
from stores.documents import Document, Documents, DocumentsBatch, DocumentsOptions
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
from stores.eventlog import Event, EventLog, EventLogBatch
from stores.keyvalue import KeyValue, KeyValueBatch
from stores.table import Column, Schema, Table, TableBatch, TableSchema

__all__ = [
    "STORE_TYPES",
    "Batch",
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
    "Column",
    "Schema",
    "SchemaError",
    "Table",
    "TableBatch",
    "TableSchema",
    "Store",
    "StoreClosedError",
    "StoreError",
    "Update",
    "UnindexedFieldError",
    "UpdateCallback",
    "errors",
]

STORE_TYPES: dict[str, type[Store]] = {
    EventLog.TYPE: EventLog,
    KeyValue.TYPE: KeyValue,
    Counter.TYPE: Counter,
    Documents.TYPE: Documents,
    Table.TYPE: Table,
}
"""Each store type by its ``TYPE`` name, as a database manifest names it."""
