"""What the state tree holds for a value: the value itself when short, else its digest.

A tree value is :func:`value_bytes` of the store's value: its DAG-CBOR encoding when that is under 32
bytes (a counter total, a short string: the proof then carries the value itself), otherwise the 32-byte
sha256 of the encoding (the value travels beside the proof, and :func:`value_matches` checks it). The
length tells which: an encoding of 32 bytes or more is always digested.

>>> value_bytes(42).hex(), len(value_bytes("x" * 40))
('182a', 32)
>>> value_matches("x" * 40, value_bytes("x" * 40)), value_matches(41, value_bytes(42))
(True, False)
"""

from __future__ import annotations

import hashlib
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import TreeNodeError

__all__ = ["DIGEST_BYTES", "value_bytes", "value_from_block", "value_matches"]

DIGEST_BYTES: Final = 32


def value_bytes(value: IPLDKind) -> bytes:
    """Return what the tree holds for ``value``.

    Raises:
        CodecError: the value is not IPLD.
    """
    block = encode(value)
    return block if len(block) < DIGEST_BYTES else hashlib.sha256(block).digest()


def value_from_block(cid: CID, block: bytes) -> IPLDKind:
    """Return the value a tree holds as the digest ``cid`` names, read from its (untrusted) block.

    Raises:
        TreeNodeError: the block does not hash to ``cid``, or is not canonical DAG-CBOR.
    """
    if CID.for_block(block) != cid:
        raise TreeNodeError("a value block does not hash to the digest the tree holds", cid)
    try:
        return decode(block)
    except CodecError as e:
        raise TreeNodeError(f"a value block is not canonical DAG-CBOR ({e})", cid) from e


def value_matches(value: IPLDKind, held: bytes) -> bool:
    """Return whether ``held`` (a tree value) is what the tree holds for ``value``."""
    try:
        return value_bytes(value) == held
    except ValueError:  # CodecError: not IPLD, so not what anyone stored
        return False
