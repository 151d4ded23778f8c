"""ipfs_log: a verified, mergeable operation log over content-addressed blocks.

The pure core of orbit: no network, no files, no threads. Entries are signed DAG-CBOR blocks linked by
CID; logs from many writers join into one DAG with one total order.
"""

from ipfs_log.access import AccessController, WriteList
from ipfs_log.blockstore import BlockStore, ChainedBlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.clock import Clock
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import Entry, Limits
from ipfs_log.errors import (
    BlockNotFoundError,
    ClockError,
    CodecError,
    EntryDecodeError,
    EntryNotFoundError,
    EntryRejectedError,
    EntryTooLargeError,
    HashMismatchError,
    IdentityError,
    InvalidIdentityError,
    InvalidSignatureError,
    LogError,
    LogIdMismatchError,
    OrbitError,
    PermissionDeniedError,
    SignerMismatchError,
)
from ipfs_log.fetch import Progress
from ipfs_log.identity import Identity, key_from_did, key_to_did, verify
from ipfs_log.log import Log, Subscriber
from ipfs_log.ranges import Range, RangeArgs

__all__ = [
    "CID",
    "AccessController",
    "BlockNotFoundError",
    "BlockStore",
    "ChainedBlockStore",
    "Clock",
    "ClockError",
    "CodecError",
    "Entry",
    "EntryDecodeError",
    "EntryNotFoundError",
    "EntryRejectedError",
    "EntryTooLargeError",
    "HashMismatchError",
    "IPLDKind",
    "Identity",
    "IdentityError",
    "InvalidIdentityError",
    "InvalidSignatureError",
    "Limits",
    "Log",
    "LogError",
    "LogIdMismatchError",
    "MemoryBlockStore",
    "OrbitError",
    "PermissionDeniedError",
    "Progress",
    "Range",
    "RangeArgs",
    "SignerMismatchError",
    "Subscriber",
    "WriteList",
    "decode",
    "encode",
    "key_from_did",
    "key_to_did",
    "verify",
]
