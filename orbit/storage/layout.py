r"""The one definition of how a stored log is laid out in LMDB.

A log is known by a small number, ``lognum`` (4 bytes, big-endian). Its entries are keyed
``lognum | time (8, big-endian) | writer key (32) | CID (36)``, so keys sort in the log's total order
``(time, writer key, CID bytes)``. The key without its ``lognum`` is the log's **order record**
(76 bytes): what a reopened log keeps in memory per entry.

Named databases:

- ``blocks``: CID → block, for blocks that are not log entries (manifests);
- ``entries``: entry key → payload offset (4 bytes) + block; the offset says where the payload's
  DAG-CBOR starts in the block (it is the entry map's last value);
- ``order``: entry key → the entry's admission number (8 bytes): the order index, walked without
  reading a block;
- ``where``: CID → entry key;
- ``logs``: log id → lognum, and ``\\x00next`` → the next free lognum;
- ``heads``: lognum → the concatenated head CIDs;
- ``checkpoints``: lognum → the store's index checkpoint record;
- ``frontiers``: lognum → where a log that does not hold its whole history starts
  (:mod:`orbit.storage.frontiers`);
- ``under``: ``lognum | CID`` → clock time (8 bytes), for each entry a compaction dropped.
"""

from __future__ import annotations

import struct
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.entry import Entry

__all__ = [
    "CID_LEN",
    "DATABASES",
    "KEY_LEN",
    "RECORD",
    "U32",
    "U64",
    "key_cid",
    "log_prefix",
    "record",
    "record_cid",
    "record_sort_key",
]

U32: Final = struct.Struct(">I")
U64: Final = struct.Struct(">Q")
CID_LEN: Final = 36
"""Every CID orbit stores: CIDv1, one-byte codec, sha2-256 (4 + 32 bytes)."""
RECORD: Final = 8 + 32 + CID_LEN
"""An order record: time, writer key, CID."""
KEY_LEN: Final = 4 + RECORD
"""An entry key: lognum and the order record."""
DATABASES: Final = (
    b"blocks", b"logs", b"heads", b"order", b"entries", b"where", b"checkpoints", b"frontiers", b"under",
)  # fmt: skip


def log_prefix(lognum: int) -> bytes:
    """Return the 4-byte prefix of log number ``lognum``'s keys."""
    return U32.pack(lognum)


def record(entry: Entry) -> bytes:
    """Return the 76-byte order record of ``entry``."""
    return entry.time.to_bytes(8, "big") + entry.key + entry.cid


def record_cid(records: bytes | bytearray, i: int) -> CID:
    """Return the CID of the ``i``-th record in packed ``records``."""
    o = i * RECORD
    return CID(records[o + 40 : o + RECORD])


def record_sort_key(records: bytes | bytearray, i: int) -> tuple[int, bytes, bytes]:
    """Return ``(time, writer key, CID bytes)`` of the ``i``-th record in packed ``records``."""
    o = i * RECORD
    return (
        int.from_bytes(records[o : o + 8], "big"),
        bytes(records[o + 8 : o + 40]),
        bytes(records[o + 40 : o + RECORD]),
    )


def key_cid(key: bytes) -> bytes:
    """Return the CID bytes at the end of an entry key."""
    return key[KEY_LEN - CID_LEN :]
