"""The typed databases :meth:`orbit.OrbitDB.open` returns, and the registry of their classes by type.

:class:`Database` (``base.py``) holds what every type shares: the lock, joins, CAR export and import,
checkpoints, closing and replication hooks; one module per store type adds its reads and writes
(``keyvalue.py``, ``eventlog.py``, ``counter.py``, ``documents.py``; ``table`` lives in :mod:`orbit.sql`).
A database is given narrow objects (:class:`DatabaseContext`), never the facade.

May import: :mod:`ipfs_log`, :mod:`stores`, and :mod:`orbit.errors`, :mod:`orbit.address`,
:mod:`orbit.car` — not storage, IPFS or replication (the facade wires those in).
"""

from typing import TYPE_CHECKING

from ipfs_log.lazy import lazy_attributes as _lazy_attributes
from orbit.databases.base import Database, DatabaseContext, OpenReport, ReplicatorHandle, locked
from orbit.databases.registry import BUILT_IN, database_class, database_types, register

if TYPE_CHECKING:
    from orbit.databases.counter import CounterDatabase
    from orbit.databases.documents import DocumentsDatabase
    from orbit.databases.eventlog import EventLogDatabase
    from orbit.databases.keyvalue import KeyValueDatabase

_CLASSES = {
    "CounterDatabase": "orbit.databases.counter",
    "DocumentsDatabase": "orbit.databases.documents",
    "EventLogDatabase": "orbit.databases.eventlog",
    "KeyValueDatabase": "orbit.databases.keyvalue",
}
__getattr__ = _lazy_attributes("orbit.databases", _CLASSES, globals())
"""Each type's class is imported on first use (``database_class`` imports it when a database opens)."""

__all__ = [
    "BUILT_IN",
    "CounterDatabase",
    "Database",
    "DatabaseContext",
    "DocumentsDatabase",
    "EventLogDatabase",
    "KeyValueDatabase",
    "OpenReport",
    "ReplicatorHandle",
    "database_class",
    "database_types",
    "locked",
    "register",
]
