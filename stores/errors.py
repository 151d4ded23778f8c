"""The errors raised by the stores, a branch of orbit's one error tree.

::

    OrbitError                                  (ipfs_log/errors.py)
    └── StoreError
        ├── InvalidOperationError(ValueError)   bad input to a write; nothing was written
        ├── KeyNotFoundError(KeyError)          .key   no such key, document or event
        │   └── DocumentNotFoundError           .key   no document with this key
        ├── UnindexedFieldError(ValueError)     .field  find() on a field that has no index
        ├── InvalidCheckpointError(ValueError)  a checkpoint is malformed or was taken elsewhere
        ├── SchemaError(ValueError)             .table, .constraint  a table schema is refused
        └── StoreClosedError                    a write to a store after close()

Errors raised by the log itself (:class:`ipfs_log.errors.EntryRejectedError` from a join, for example)
pass through the stores unchanged.
"""

from __future__ import annotations

from ipfs_log.errors import OrbitError

__all__ = [
    "DocumentNotFoundError",
    "InvalidCheckpointError",
    "InvalidOperationError",
    "KeyNotFoundError",
    "SchemaError",
    "StoreClosedError",
    "StoreError",
    "UnindexedFieldError",
]


class StoreError(OrbitError):
    """Base of the errors raised by the stores."""


class InvalidOperationError(StoreError, ValueError):
    """A write was given bad input (wrong key type, non-IPLD value, …); nothing was written.

    Attributes:
        store: the type of the store that refused the operation (``"keyvalue"``, …).
    """

    def __init__(self, message: str, store: str = "") -> None:
        self.store = store
        super().__init__(f"{store}: {message}" if store else message)


class KeyNotFoundError(StoreError, KeyError):
    """The store holds no value under this key.

    Attributes:
        key: the key that was asked for.
    """

    def __init__(self, key: object, message: str | None = None) -> None:
        self.key = key
        super().__init__(message or f"no key {key!r} in the store")

    def __str__(self) -> str:
        return str(self.args[0])


class DocumentNotFoundError(KeyNotFoundError):
    """The documents store holds no document with this key."""

    def __init__(self, key: object) -> None:
        super().__init__(key, f"no document with key {key!r}")


class UnindexedFieldError(StoreError, ValueError):
    """``find`` was asked about a field that has no index; declare it or use ``query``.

    Attributes:
        field: the field without an index.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"field {field!r} has no index: declare it with indexes=[...] or use query()")


class InvalidCheckpointError(StoreError, ValueError):
    """A checkpoint cannot be restored: malformed, of another store type, or taken at other heads."""


class SchemaError(StoreError, ValueError):
    """A table schema is refused: no primary key, a constraint merges cannot keep, a bad type or name.

    Attributes:
        table: the table the problem is in ("" if none).
        constraint: the refused constraint (``"UNIQUE"``, ``"FOREIGN KEY"``, ``"CHECK"``,
            ``"PRIMARY KEY"``, ...), or "" if the problem is not a constraint.
    """

    def __init__(self, message: str, *, table: str = "", constraint: str = "") -> None:
        self.table = table
        self.constraint = constraint
        super().__init__(message)


class StoreClosedError(StoreError):
    """The store was closed: it no longer follows its log, so it refuses writes."""
