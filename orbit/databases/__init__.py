"""The typed databases :meth:`orbit.OrbitDB.open` returns, and the registry of their classes by type.

:class:`Database` (``base.py``) holds what every type shares: the lock, joins, CAR export and import,
checkpoints, closing and replication hooks; one module per store type adds its reads and writes
(``keyvalue.py``, ``eventlog.py``, ``counter.py``, ``documents.py``; ``table`` lives in :mod:`orbit.sql`).
A database is given narrow objects (:class:`DatabaseContext`), never the facade.

May import: :mod:`ipfs_log`, :mod:`stores`, and :mod:`orbit.errors`, :mod:`orbit.address`,
:mod:`orbit.car` — not storage, IPFS or replication (the facade wires those in).
"""

from orbit.databases.base import Database, DatabaseContext, OpenReport, ReplicatorHandle, locked
from orbit.databases.counter import CounterDatabase
from orbit.databases.documents import DocumentsDatabase
from orbit.databases.eventlog import EventLogDatabase
from orbit.databases.keyvalue import KeyValueDatabase
from orbit.databases.registry import database_class, database_types, register

__all__ = [
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
