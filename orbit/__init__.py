"""orbit: an OrbitDB-style CRDT database over content-addressed blocks.

``OrbitDB(directory)`` is the embedded default: databases by name or address in one directory, blocks
in a local LMDB store, every write durable against a process kill when it returns.
"""

from ipfs_log.errors import OrbitError
from orbit.address import Manifest
from orbit.blockstore.cached import CachedBlockStore
from orbit.blockstore.ipfs import IpfsBlockStore
from orbit.blockstore.local import LocalBlockStore
from orbit.car import car_bytes, read_car, write_car
from orbit.database import (
    CounterDatabase,
    Database,
    DocumentsDatabase,
    EventLogDatabase,
    KeyValueDatabase,
)
from orbit.db import OrbitDB
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
    StorageCorruptError,
    StorageFullError,
    UnknownAddressError,
    UnknownStoreTypeError,
    UnsupportedFormatError,
    WrongPassphraseError,
)
from orbit.keystore import Keystore, export_identity, import_identity
from orbit.kubo import KuboClient, PubsubMessage, Subscription

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
