"""orbit: an OrbitDB-style CRDT database over content-addressed blocks.

``OrbitDB(directory)`` is the embedded default: databases by name or address in one directory, blocks
in a local LMDB store, every write durable against a process kill when it returns.
"""

from ipfs_log.errors import OrbitError
from orbit.address import Manifest
from orbit.blockstore.local import LocalBlockStore
from orbit.car import car_bytes, read_car
from orbit.db import Database, OrbitDB
from orbit.errors import (
    BlockStoreError,
    CarError,
    DatabaseClosedError,
    DatabaseError,
    DatabaseLockedError,
    KeystoreError,
    StorageCorruptError,
    UnknownAddressError,
    UnknownStoreTypeError,
    WrongPassphraseError,
)
from orbit.keystore import Keystore, export_identity, import_identity

__all__ = [
    "BlockStoreError",
    "CarError",
    "Database",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseLockedError",
    "Keystore",
    "KeystoreError",
    "LocalBlockStore",
    "Manifest",
    "OrbitDB",
    "OrbitError",
    "StorageCorruptError",
    "UnknownAddressError",
    "UnknownStoreTypeError",
    "WrongPassphraseError",
    "car_bytes",
    "export_identity",
    "import_identity",
    "read_car",
]
