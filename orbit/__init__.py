"""orbit: an OrbitDB-style CRDT database over content-addressed blocks.

``OrbitDB(directory)`` is the embedded default: databases by name or address in one directory, blocks
in a local LMDB store, every write durable against a process kill when it returns.
"""

from typing import TYPE_CHECKING, Final

from ipfs_log.errors import OrbitError
from ipfs_log.lazy import lazy_attributes as _lazy_attributes
from orbit.address import Manifest
from orbit.car import car_bytes, read_car, write_car
from orbit.databases import Database, OpenReport
from orbit.errors import (
    BlockStoreError,
    CarError,
    CommitError,
    DatabaseClosedError,
    DatabaseError,
    DatabaseLockedError,
    IpfsAddressError,
    IpfsAuthError,
    IpfsBlockMismatchError,
    IpfsBlockTooLargeError,
    IpfsBlockUnavailableError,
    IpfsError,
    IpfsHttpError,
    IpfsPubsubDisabledError,
    IpfsResponseError,
    IpfsTimeoutError,
    IpfsUnreachableError,
    IpfsUnsupportedError,
    KeystoreError,
    ProofError,
    ReplicationError,
    ReplicationTimeoutError,
    ServeError,
    StateError,
    StorageCorruptError,
    StorageFullError,
    TreeNodeError,
    UnknownAddressError,
    UnknownStoreTypeError,
    UnsupportedFormatError,
    WrongPassphraseError,
)
from orbit.facade import OrbitDB
from orbit.keystore import Keystore, export_identity, import_identity
from orbit.storage.blocks import LocalBlockStore

if TYPE_CHECKING:
    from orbit.databases import CounterDatabase, DocumentsDatabase, EventLogDatabase, KeyValueDatabase
    from orbit.ipfs.blockstore import IpfsBlockStore
    from orbit.ipfs.client import KuboClient, PubsubMessage, Subscription
    from orbit.ipfs.uploads import CachedBlockStore
    from orbit.replication.replicator import Replicator

_LAZY: Final = {
    "CounterDatabase": "orbit.databases.counter",
    "DocumentsDatabase": "orbit.databases.documents",
    "EventLogDatabase": "orbit.databases.eventlog",
    "KeyValueDatabase": "orbit.databases.keyvalue",
    "CachedBlockStore": "orbit.ipfs.uploads",
    "IpfsBlockStore": "orbit.ipfs.blockstore",
    "KuboClient": "orbit.ipfs.client",
    "PubsubMessage": "orbit.ipfs.client",
    "Replicator": "orbit.replication.replicator",
    "Subscription": "orbit.ipfs.client",
}
"""Imported on first use, so ``import orbit`` stays fast: what talks to an IPFS node (it loads httpx), and
each database type's class (opening a database imports its type's module)."""


__getattr__ = _lazy_attributes("orbit", _LAZY, globals())


__all__ = [
    "BlockStoreError",
    "CachedBlockStore",
    "CarError",
    "CommitError",
    "CounterDatabase",
    "Database",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseLockedError",
    "DocumentsDatabase",
    "EventLogDatabase",
    "IpfsAddressError",
    "IpfsAuthError",
    "IpfsBlockMismatchError",
    "IpfsBlockStore",
    "IpfsBlockTooLargeError",
    "IpfsBlockUnavailableError",
    "IpfsError",
    "IpfsHttpError",
    "IpfsPubsubDisabledError",
    "IpfsResponseError",
    "IpfsTimeoutError",
    "IpfsUnreachableError",
    "IpfsUnsupportedError",
    "Keystore",
    "KeyValueDatabase",
    "OpenReport",
    "KeystoreError",
    "KuboClient",
    "LocalBlockStore",
    "Manifest",
    "OrbitDB",
    "OrbitError",
    "ProofError",
    "PubsubMessage",
    "ReplicationError",
    "ReplicationTimeoutError",
    "Replicator",
    "ServeError",
    "StateError",
    "StorageCorruptError",
    "StorageFullError",
    "Subscription",
    "TreeNodeError",
    "UnknownAddressError",
    "UnknownStoreTypeError",
    "UnsupportedFormatError",
    "WrongPassphraseError",
    "car_bytes",
    "export_identity",
    "import_identity",
    "read_car",
    "write_car",
]
