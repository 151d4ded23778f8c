"""Errors raised by the ``orbit`` layer: storage, keystore, databases and CAR files.

The root :class:`~ipfs_log.errors.OrbitError` lives in ``ipfs_log`` so that every layer shares it::

    OrbitError                                  ipfs_log/errors.py
    ├── BlockStoreError                         .path   the local block store failed (I/O, engine)
    │   ├── StorageFullError                            the map or the disk is full
    │   ├── StorageCorruptError                 .cid    stored bytes do not hash to their CID, or a
    │   │                                               record of the store is malformed
    │   ├── UnsupportedFormatError                      the directory is of an unknown or newer format
    │   ├── DatabaseLockedError                 another OrbitDB (this or another process) holds the
    │   │                                               directory
    │   └── IpfsError                           .endpoint .cid   an IPFS node's RPC call failed
    │       ├── IpfsAddressError(ValueError)            the API address is not a URL or multiaddr
    │       ├── IpfsUnreachableError                    no daemon answers (refused, reset, DNS)
    │       ├── IpfsTimeoutError                        the daemon did not answer in time
    │       ├── IpfsHttpError                   .status .kubo_message   HTTP error (Kubo's Message)
    │       │   ├── IpfsAuthError                       401/403: API.Authorizations refused us
    │       │   ├── IpfsUnsupportedError                the node has no such endpoint (404)
    │       │   └── IpfsPubsubDisabledError             pubsub is off (Kubo: Pubsub.Enabled)
    │       ├── IpfsResponseError(ValueError)           a malformed, truncated or oversized answer
    │       │   └── IpfsBlockMismatchError              returned bytes or CID do not match the CID
    │       ├── IpfsBlockTooLargeError(ValueError)      a block over the 2 MiB bitswap limit
    │       └── IpfsBlockUnavailableError(BlockNotFoundError)   the node did not produce the block
    │                                                           within the timeout
    ├── KeystoreError                           .path   the keystore file is unreadable or malformed
    │   └── WrongPassphraseError                        the passphrase does not decrypt the keystore
    ├── DatabaseError                                   a database cannot be opened or used
    │   ├── UnknownAddressError(KeyError)       .address  no manifest for this address here
    │   ├── UnknownStoreTypeError(ValueError)   .type     no store type of this name
    │   └── DatabaseClosedError                         the database or OrbitDB was closed (also a
    │                                                   stores.StoreClosedError)
    ├── StateError                                      verifiable state (:mod:`orbit.state`)
    │   ├── TreeNodeError(ValueError)           .cid    a state-tree node is not what its CID names, not
    │   │                                               canonical, or breaks the tree's rules
    │   ├── ProofError(ValueError)                      a proof does not verify against its root
    │   └── CommitError(ValueError)             .cid    a commit is malformed, its signature does not verify,
    │                                                   its signer may not write, or its root is not the
    │                                                   state at its heads
    ├── ReplicationError                                a peer's message is malformed, or replication
    │   │                                               is not set up
    │   └── ReplicationTimeoutError(TimeoutError)       a wait for replication timed out
    ├── CarError(ValueError)                            a CAR file is malformed (bad varint,
    │                                                   truncated section, wrong hash, bad header)
    └── ServeError                              .url    ``orbit serve``: the daemon cannot start, does
                                                        not answer as one, or refused a request

Every error names what it is about (a path, a CID, an address) in its message and as an attribute.
"""

from __future__ import annotations

from ipfs_log.errors import BlockNotFoundError, OrbitError
from stores.errors import StoreClosedError

__all__ = [
    "BlockStoreError",
    "CarError",
    "CommitError",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseLockedError",
    "IpfsAddressError",
    "IpfsAuthError",
    "IpfsBlockMismatchError",
    "IpfsBlockTooLargeError",
    "IpfsBlockUnavailableError",
    "IpfsError",
    "IpfsHttpError",
    "IpfsPubsubDisabledError",
    "IpfsResponseError",
    "IpfsTimeoutError",
    "IpfsUnreachableError",
    "IpfsUnsupportedError",
    "KeystoreError",
    "ProofError",
    "ReplicationError",
    "ReplicationTimeoutError",
    "ServeError",
    "StateError",
    "StorageCorruptError",
    "StorageFullError",
    "TreeNodeError",
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


class IpfsError(BlockStoreError):
    """A call to an IPFS node's HTTP RPC API failed.

    Attributes:
        endpoint: the RPC command, e.g. ``block/get``, or the API address for address errors.
        cid: the CID the call was about, if any.
    """

    def __init__(self, message: str, endpoint: str | None = None, cid: object = None) -> None:
        self.endpoint = endpoint
        self.cid = cid
        super().__init__(_ipfs_message(message, endpoint, cid))


def _ipfs_message(message: str, endpoint: str | None, cid: object) -> str:
    where = f"IPFS {endpoint}" if endpoint else "IPFS"
    about = f" (block {cid})" if cid is not None else ""
    return f"{where}{about}: {message}"


class IpfsAddressError(IpfsError, ValueError):
    """The IPFS API address is neither an ``http(s)://`` URL nor a ``/ip4|ip6|dns/…/tcp/…`` multiaddr."""


class IpfsUnreachableError(IpfsError):
    """No IPFS daemon answers at the API address (connection refused or reset, unknown host)."""


class IpfsTimeoutError(IpfsError):
    """The IPFS daemon did not answer within the client's timeout."""


class IpfsHttpError(IpfsError):
    """The IPFS daemon answered with an HTTP error.

    Attributes:
        status: the HTTP status code.
        kubo_message: the ``Message`` of Kubo's JSON error body (or the start of a non-JSON body).
    """

    def __init__(
        self, message: str, endpoint: str | None = None, cid: object = None, *, status: int, kubo_message: str
    ) -> None:
        self.status = status
        self.kubo_message = kubo_message
        super().__init__(message, endpoint, cid)


class IpfsAuthError(IpfsHttpError):
    """The daemon refused the request's credentials (HTTP 401 or 403; Kubo's ``API.Authorizations``)."""


class IpfsUnsupportedError(IpfsHttpError):
    """The daemon has no such RPC endpoint (HTTP 404), e.g. ``pin/update`` on js-ipfs."""


class IpfsPubsubDisabledError(IpfsHttpError):
    """Pubsub is off on the daemon: Kubo needs ``Pubsub.Enabled = true`` (or --enable-pubsub-experiment)."""


class IpfsResponseError(IpfsError, ValueError):
    """The daemon's answer is malformed: not JSON, truncated, missing fields, or larger than allowed."""


class IpfsBlockMismatchError(IpfsResponseError):
    """A block from the node does not hash to its CID, or the node stored a block under another CID.

    The block is rejected: it is never stored, cached or returned.
    """


class IpfsBlockTooLargeError(IpfsError, ValueError):
    """A block is larger than the node accepts (2 MiB, the bitswap limit, or the node's own limit)."""


class IpfsBlockUnavailableError(IpfsError, BlockNotFoundError):
    """The node did not produce the block within the timeout: it lacks it and no peer served it."""

    def __init__(self, message: str, endpoint: str | None = None, cid: object = None) -> None:
        # Both bases format a message; build it once here and skip their constructors.
        self.endpoint = endpoint
        self.cid = cid
        self.path = None
        Exception.__init__(self, _ipfs_message(message, endpoint, cid))

    def __str__(self) -> str:
        return str(self.args[0])


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


class ReplicationError(OrbitError):
    """A pubsub message is not a well-formed announcement of the database, or replication is off."""


class ReplicationTimeoutError(ReplicationError, TimeoutError):
    """A wait for replication (``wait_for``, ``wait_synced``) ran out of time; the message says what lacks."""


class StateError(OrbitError):
    """Verifiable state (:mod:`orbit.state`): a tree node, a proof or a commit was refused."""


class TreeNodeError(StateError, ValueError):
    """A state-tree node does not hash to its CID, is not canonical, or breaks the tree's rules.

    Attributes:
        cid: the CID the node was read under.
    """

    def __init__(self, message: str, cid: object = None) -> None:
        self.cid = cid
        super().__init__(message if cid is None else f"tree node {cid}: {message}")


class ProofError(StateError, ValueError):
    """A proof does not verify against its root: a node is missing, extra, forged or malformed."""


class CommitError(StateError, ValueError):
    """A commit is malformed, badly signed, signed by a non-writer, or its root is not the state at its heads.

    Attributes:
        cid: the commit's CID, when known.
    """

    def __init__(self, message: str, cid: object = None) -> None:
        self.cid = cid
        super().__init__(message if cid is None else f"commit {cid}: {message}")


class ServeError(OrbitError):
    """``orbit serve``: the daemon cannot start (port, token file), or a daemon refused or failed a request.

    Attributes:
        url: the daemon's address, when one was reached.
    """

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url
