"""The error tree shared by every layer of orbit.

The root lives in the bottom layer so that ``ipfs_log``, ``stores`` and ``orbit`` all raise
subclasses of one class, and callers can catch :class:`OrbitError` to handle them all::

    OrbitError
    ├── CodecError(ValueError)              bytes are not canonical DAG-CBOR, or a value is not IPLD
    ├── IdentityError(ValueError)           a key, seed, signature or did:key is malformed
    ├── BlockNotFoundError(KeyError)        .cid   a block store does not hold the block
    ├── LogError
    │   ├── EntryRejectedError(ValueError)  .cid   an entry failed verification; nothing was admitted
    │   │   ├── EntryDecodeError            wrong fields or types, not canonical, too large
    │   │   ├── HashMismatchError           the bytes do not hash to the CID asked for
    │   │   ├── InvalidSignatureError       .key   the signature does not verify
    │   │   ├── SignerMismatchError         clock.id is not the signing key (OrbitDB v2: or the key is
    │   │   │                               not the identity's publicKey)
    │   │   ├── InvalidIdentityError        .identity  an OrbitDB v2 entry's identity block is missing a
    │   │   │                               field, malformed, or its signature chain does not verify
    │   │   ├── PermissionDeniedError       .key   the signer may not write to this log
    │   │   ├── LogIdMismatchError          the entry belongs to another log
    │   │   └── ClockError                  clock.time is not 1 + max(time of next)
    │   ├── EntryNotFoundError(KeyError)    .cid   no such entry in the log
    │   └── EntryTooLargeError(CodecError)  .size  an append would make an entry over the size limit
    ├── StoreError                          (stores/errors.py)
    └── BlockStoreError                     (orbit/errors.py)

Every error carries what it is about as attributes (``cid``, ``key``) as well as in its message.
"""

from __future__ import annotations

__all__ = [
    "BlockNotFoundError",
    "ClockError",
    "CodecError",
    "EntryDecodeError",
    "EntryNotFoundError",
    "EntryRejectedError",
    "EntryTooLargeError",
    "HashMismatchError",
    "IdentityError",
    "InvalidIdentityError",
    "InvalidSignatureError",
    "LogError",
    "LogIdMismatchError",
    "OrbitError",
    "PermissionDeniedError",
    "SignerMismatchError",
]


class OrbitError(Exception):
    """Root of every error orbit raises on purpose."""


class CodecError(OrbitError, ValueError):
    """Bytes are not canonical DAG-CBOR, or a value cannot be encoded as IPLD."""


class IdentityError(OrbitError, ValueError):
    """A key, seed, signature or ``did:key`` string is malformed."""


class BlockNotFoundError(OrbitError, KeyError):
    """A block store does not hold the requested block.

    Attributes:
        cid: the CID that was asked for.
    """

    def __init__(self, cid: object, message: str | None = None) -> None:
        self.cid = cid
        super().__init__(message or f"block not found: {cid}")

    def __str__(self) -> str:
        return str(self.args[0])


class LogError(OrbitError):
    """Base of the errors raised by :class:`ipfs_log.Log`."""


class EntryRejectedError(LogError, ValueError):
    """An entry failed verification and was not admitted to the log.

    Attributes:
        cid: the CID of the rejected entry (None if it was never addressed).
    """

    def __init__(self, message: str, cid: object = None) -> None:
        self.cid = cid
        where = f"entry {cid}: " if cid is not None else "entry: "
        super().__init__(where + message)


class EntryDecodeError(EntryRejectedError):
    """The block is not a well-formed entry: bad encoding, field, type or size."""


class HashMismatchError(EntryRejectedError):
    """The block's bytes do not hash to the CID it was fetched as."""


class InvalidSignatureError(EntryRejectedError):
    """The entry's signature does not verify against its key.

    Attributes:
        key: the public key the entry names.
    """

    def __init__(self, message: str, cid: object = None, key: bytes | None = None) -> None:
        self.key = key
        super().__init__(message, cid)


class SignerMismatchError(EntryRejectedError):
    """The entry's ``clock.id`` is not the key that signed it."""


class InvalidIdentityError(EntryRejectedError):
    """An OrbitDB v2 entry names an identity block that is malformed or whose signatures do not verify.

    Attributes:
        identity: the identity block's CID (as the entry names it).
    """

    def __init__(self, message: str, cid: object = None, identity: object = None) -> None:
        self.identity = identity
        super().__init__(message, cid)


class PermissionDeniedError(EntryRejectedError):
    """The entry's signer is not allowed to write to the log.

    Attributes:
        key: the public key of the signer.
    """

    def __init__(self, message: str, cid: object = None, key: bytes | None = None) -> None:
        self.key = key
        super().__init__(message, cid)


class LogIdMismatchError(EntryRejectedError):
    """The entry names another log id."""


class ClockError(EntryRejectedError):
    """The entry's clock time is not ``1 + max(time of next)``."""


class EntryNotFoundError(LogError, KeyError):
    """The log holds no entry with this CID.

    Attributes:
        cid: the CID that was asked for.
    """

    def __init__(self, cid: object) -> None:
        self.cid = cid
        super().__init__(f"no entry {cid} in the log")

    def __str__(self) -> str:
        return str(self.args[0])


class EntryTooLargeError(LogError, CodecError):
    """An append would make an entry larger than the log accepts (nothing was signed or stored).

    Every replica refuses an entry over :attr:`ipfs_log.Limits.max_entry_bytes`, so the writer refuses
    to make one.

    Attributes:
        size: the entry's size in bytes.
        limit: the largest size accepted.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"the entry would take {size:,} bytes, over the {limit:,}-byte limit of one entry")
