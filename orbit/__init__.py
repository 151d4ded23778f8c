"""orbit: an OrbitDB-style CRDT database over content-addressed blocks.

``OrbitDB(directory)`` is the embedded default: databases by name or address in one directory, blocks
in a local LMDB store, every write durable against a process kill when it returns.
"""

from ipfs_log.errors import OrbitError
from orbit.address import Manifest
from orbit.car import car_bytes, read_car, write_car
from orbit.databases import (
    CounterDatabase,
    Database,
    DocumentsDatabase,
    EventLogDatabase,
    KeyValueDatabase,
)
from orbit.errors import (
    BlockStoreError,
    CarError,
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
    ReplicationError,
    ReplicationTimeoutError,
    StorageCorruptError,
    StorageFullError,
    UnknownAddressError,
    UnknownStoreTypeError,
    UnsupportedFormatError,
    WrongPassphraseError,
)
from orbit.facade import OrbitDB
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient, PubsubMessage, Subscription
from orbit.ipfs.uploads import CachedBlockStore
from orbit.keystore import Keystore, export_identity, import_identity
from orbit.replication.replicator import Replicator
from orbit.storage.blocks import LocalBlockStore

__all__ = [
    "BlockStoreError",
    "CachedBlockStore",
    "CarError",
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
    "KeystoreError",
    "KuboClient",
    "LocalBlockStore",
    "Manifest",
    "OrbitDB",
    "OrbitError",
    "PubsubMessage",
    "ReplicationError",
    "ReplicationTimeoutError",
    "Replicator",
    "StorageCorruptError",
    "StorageFullError",
    "Subscription",
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
