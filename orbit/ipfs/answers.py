"""Checks of what a node answers: blocks against their CIDs, CIDs, CID lists, pin records, strings.

Nothing a node sends is trusted: a block must hash to the CID asked for, CIDs are compared decoded
(nodes answer in varying multibases), and a malformed answer is an
:class:`~orbit.errors.IpfsResponseError` naming the endpoint.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from ipfs_log.cid import CID, DAG_CBOR, DAG_PB, RAW, SHA2_256, read_uvarint
from ipfs_log.errors import CodecError
from orbit.errors import IpfsBlockMismatchError, IpfsHttpError, IpfsResponseError

__all__ = [
    "CODEC_NAMES",
    "cid_list",
    "codec_of",
    "is_not_found",
    "parse_cid",
    "pin_records",
    "same_cid",
    "strings",
    "verify_block",
]

CODEC_NAMES: Final = {DAG_CBOR: "dag-cbor", RAW: "raw", DAG_PB: "dag-pb", 0x0129: "dag-json"}
"""The multicodec names ``block/put`` takes, by code."""
_SHA2_512: Final = 0x13
_IDENTITY: Final = 0x00


def verify_block(cid: CID, block: bytes, endpoint: str = "block/get") -> bytes:
    """Return ``block`` if it hashes to ``cid``.

    Raises:
        IpfsBlockMismatchError: it does not, or the CID's hash function is not one orbit can check
            (sha2-256, sha2-512, identity).
    """
    try:
        code = cid.hash_code
        digest = cid.digest
    except CodecError as e:
        raise IpfsBlockMismatchError(f"malformed CID: {e}", endpoint, cid) from e
    if code == SHA2_256:
        ok = hashlib.sha256(block).digest() == digest
    elif code == _SHA2_512:
        ok = hashlib.sha512(block).digest() == digest
    elif code == _IDENTITY:
        ok = block == digest
    else:
        raise IpfsBlockMismatchError(f"cannot verify hash function {code:#x}", endpoint, cid)
    if not ok:
        raise IpfsBlockMismatchError(
            f"the node returned {len(block)} bytes that do not hash to the CID", endpoint, cid
        )
    return block


def codec_of(cid: CID) -> int:
    """Return the multicodec of a CID (dag-pb for CIDv0)."""
    if cid.version == 0:
        return DAG_PB
    _, pos = read_uvarint(cid, 0)
    return read_uvarint(cid, pos)[0]


def parse_cid(text: object, endpoint: str) -> CID:
    """Return the CID a node answered as text (any multibase).

    Raises:
        IpfsResponseError: it is not a CID.
    """
    if not isinstance(text, str):
        raise IpfsResponseError(f"expected a CID, got {str(text)[:80]!r}", endpoint)
    try:
        return CID.parse(text)
    except CodecError as e:
        raise IpfsResponseError(f"{text[:80]!r} is not a CID", endpoint) from e


def same_cid(text: object, cid: CID, endpoint: str) -> None:
    """Check that the CID a node answered (if any) is ``cid``.

    Raises:
        IpfsBlockMismatchError: it names another CID.
    """
    if text is not None and parse_cid(text, endpoint) != cid:
        raise IpfsBlockMismatchError(f"the node answered for another CID, {text}", endpoint, cid)


def cid_list(answer: Any, field: str, endpoint: str) -> list[CID]:
    """Return the CIDs listed under ``field`` of a JSON answer.

    Raises:
        IpfsResponseError: there is no such list, or an item is not a CID.
    """
    items = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise IpfsResponseError(f"no {field} list in {str(answer)[:80]!r}", endpoint)
    return [parse_cid(item, endpoint) for item in items]


def pin_records(records: list[Any]) -> dict[CID, str]:
    """Return ``{CID: pin type}`` from ``pin/ls`` records (streamed or not).

    Raises:
        IpfsResponseError: a record is malformed.
    """
    result: dict[CID, str] = {}
    for record in records:
        if not isinstance(record, dict):
            raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "pin/ls")
        if "Keys" in record:  # the non-streamed form {"Keys": {cid: {"Type": …}}}
            keys = record["Keys"]
            if not isinstance(keys, dict):
                raise IpfsResponseError("Keys is not an object", "pin/ls")
            for text, info in keys.items():
                result[parse_cid(text, "pin/ls")] = (
                    str(info.get("Type", "")) if isinstance(info, dict) else ""
                )
        elif "Cid" in record:
            result[parse_cid(record["Cid"], "pin/ls")] = str(record.get("Type", ""))
        else:
            raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "pin/ls")
    return result


def strings(answer: Any, endpoint: str) -> list[str]:
    """Return the ``Strings`` list of a JSON answer (empty if absent).

    Raises:
        IpfsResponseError: it is not a list of strings.
    """
    if answer is None:
        return []
    items = answer.get("Strings") if isinstance(answer, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise IpfsResponseError(f"Strings is not a list of strings: {str(answer)[:80]!r}", endpoint)
    return list(items)


def is_not_found(error: IpfsHttpError) -> bool:
    """Whether a block call's HTTP error means "the node did not find the block" (in time)."""
    message = error.kubo_message.lower()
    return error.status == 500 and any(
        marker in message
        for marker in (
            "timed out",
            "deadline exceeded",
            "not found",
            "could not find",
            "context canceled",
            "blockservice: key not found",
        )
    )
