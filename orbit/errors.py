"""Errors raised by the ``orbit`` layer: storage, keystore, databases and CAR files.

The root :class:`~ipfs_log.errors.OrbitError` lives in ``ipfs_log`` so that every layer shares it::

    OrbitError                                  ipfs_log/errors.py
    ├── BlockStoreError                         .path   the local block store failed (I/O, engine)
    │   ├── StorageFullError                            the map or the disk is full
    │   ├── StorageCorruptError                 .cid    stored bytes do not hash to their CID, or a
    │   │                                               record of the store is malformed
    │   ├── UnsupportedFormatError                      the directory is of an unknown or newer format
    │   └── DatabaseLockedError                 another OrbitDB (this or another process) holds the
    │                                                   directory
    ├── KeystoreError                           .path   the keystore file is unreadable or malformed
    │   └── WrongPassphraseError                        the passphrase does not decrypt the keystore
    ├── DatabaseError                                   a database cannot be opened or used
    │   ├── UnknownAddressError(KeyError)       .address  no manifest for this address here
    │   ├── UnknownStoreTypeError(ValueError)   .type     no store type of this name
    │   └── DatabaseClosedError                         the database or OrbitDB was closed (also a
    │                                                   stores.StoreClosedError)
    └── CarError(ValueError)                            a CAR file is malformed (bad varint,
                                                        truncated section, wrong hash, bad header)

Every error names what it is about (a path, a CID, an address) in its message and as an attribute.
"""

from __future__ import annotations

from ipfs_log.errors import OrbitError
from stores.errors import StoreClosedError

__all__ = [
    "BlockStoreError",
    "CarError",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseLockedError",
    "KeystoreError",
    "StorageCorruptError",
    "StorageFullError",
    "UnknownAddressError",
    "UnknownStoreTypeError",
    "UnsupportedFormatError",
    "WrongPassphraseError",
]


class BlockStoreError(OrbitError):
    """The local block store failed (an I/O or engine error).

    Attributes:
        path: the store's directory, if known.
    """

    def __init__(self, message: str, path: object = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}")


class StorageCorruptError(BlockStoreError):
    """A stored block does not hash to its CID, or a record of the store cannot be read.

    Attributes:
        cid: the CID of the corrupt block, if the corruption is in a block.
    """

    def __init__(self, message: str, path: object = None, cid: object = None) -> None:
        self.cid = cid
        super().__init__(message if cid is None else f"block {cid}: {message}", path)


class StorageFullError(BlockStoreError):
    """The store cannot grow: its map or the disk is full. Nothing of the failed write was kept."""


class UnsupportedFormatError(BlockStoreError):
    """The directory was written in an on-disk format this version does not know (newer, or not orbit's)."""


class DatabaseLockedError(BlockStoreError):
    """Another OrbitDB instance, in this process or another one, has the directory open."""


class KeystoreError(OrbitError):
    """The keystore file is missing, unreadable or malformed.

    Attributes:
        path: the keystore file.
    """

    def __init__(self, message: str, path: object = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}")


class WrongPassphraseError(KeystoreError):
    """The passphrase does not decrypt the keystore (or one is needed and none was given)."""


class DatabaseError(OrbitError):
    """A database cannot be opened or used."""


class UnknownAddressError(DatabaseError, KeyError):
    """No manifest for this address is held in the local store.

    Attributes:
        address: the ``/orbitdb/<cid>`` address asked for.
    """

    def __init__(self, address: str, message: str | None = None) -> None:
        self.address = address
        super().__init__(message or f"unknown database address {address!r}: no manifest in the local store")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownStoreTypeError(DatabaseError, ValueError):
    """No store type has this name.

    Attributes:
        type: the type name asked for.
    """

    def __init__(self, type: str, known: object = None) -> None:
        self.type = type
        extra = f" (known: {', '.join(sorted(known))})" if isinstance(known, (list, tuple, set, dict)) else ""
        super().__init__(f"unknown store type {type!r}{extra}")


class DatabaseClosedError(DatabaseError, StoreClosedError):
    """The database, or the OrbitDB instance it belongs to, has been closed (for reads and writes alike)."""


class CarError(OrbitError, ValueError):
    """A CAR file is malformed: bad varint, truncated section, wrong hash or a bad header."""
