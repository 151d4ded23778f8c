"""Canonical DAG-CBOR, fast and strict.

Encoding and decoding run on cbrrr, a compiled DAG-CBOR codec (about 2 µs per entry against 95/793 µs for
the pure-Python ``dag_cbor`` package, which the tests keep as the reference it must match byte for byte).
Decoding rejects everything DAG-CBOR forbids: unsorted or duplicate map keys, non-minimal integers,
indefinite lengths, 16/32-bit floats, NaN and infinities, tags other than 42, undefined and other simple
values, invalid UTF-8, trailing bytes. Links (tag 42) are validated as CIDs and returned as :class:`CID`.

>>> block = encode({"b": 1, "a": [1.5, None, b"x"]})
>>> block.hex()
'a2616183fb3ff8000000000000f64178616201'
>>> decode(block)
{'a': [1.5, None, b'x'], 'b': 1}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from cbrrr import _cbrrr

from ipfs_log.cid import CID
from ipfs_log.errors import CodecError

__all__ = ["IPLDKind", "decode", "encode"]

IPLDKind: TypeAlias = bool | int | float | str | bytes | CID | list["IPLDKind"] | dict[str, "IPLDKind"] | None
"""A value of the IPLD data model as Python holds it."""

# cbrrr's public encode/decode are thin Python wrappers over these C functions; calling them directly
# saves a Python frame per block. pyproject pins cbrrr to the 1.1 series, whose shape this relies on,
# and the property tests compare every result with the reference dag_cbor package.
_c_encode: Callable[[object, type, bool], bytes] = _cbrrr.encode_dag_cbor
_c_decode: Callable[[bytes, Callable[[bytes], object], bool], tuple[Any, int]] = _cbrrr.decode_dag_cbor
_ENTRY_PREFIX = b"\x01\x71\x12\x20"
_DECODE_ERRORS = (ValueError, TypeError, UnicodeDecodeError, OverflowError, RecursionError)


def _link(raw: bytes) -> CID:
    # cbrrr has stripped the 0x00 multibase byte; the rest must be a well-formed CID.
    if len(raw) == 36 and raw[:4] == _ENTRY_PREFIX:
        return CID(raw)
    return CID.from_bytes(raw)


def encode(value: IPLDKind) -> bytes:
    """Encode an IPLD value as canonical DAG-CBOR.

    Raises:
        CodecError: the value holds something IPLD cannot represent (a tuple, a set, a non-string map
            key, NaN or an infinity, an integer outside 64 bits).
    """
    try:
        return _c_encode(value, CID, False)
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        raise CodecError(f"value cannot be encoded as DAG-CBOR: {e}") from e


def decode(data: bytes) -> IPLDKind:
    """Decode canonical DAG-CBOR bytes from anywhere, trusted or not.

    Raises:
        CodecError: the bytes are not exactly one canonical DAG-CBOR value.
    """
    return _decode(data, _link)


def decode_unchecked_links(data: bytes) -> IPLDKind:
    """Decode like :func:`decode`, but wrap link bytes in :class:`CID` without validating them.

    For callers that validate every link themselves (the entry decoder checks ``next``/``refs`` and
    walks the payload only when it may hold links); everything else is as strict as :func:`decode`.

    Raises:
        CodecError: the bytes are not exactly one canonical DAG-CBOR value.
    """
    return _decode(data, CID)


def check_links(value: IPLDKind) -> None:
    """Validate every link inside ``value`` as a well-formed CID.

    Raises:
        CodecError: a link's bytes are not a CID.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is CID:
            CID.from_bytes(item)
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.values())


def _decode(data: bytes, cid_ctor: Callable[[bytes], object]) -> IPLDKind:
    try:
        value, length = _c_decode(data, cid_ctor, False)
    except CodecError:
        raise
    except _DECODE_ERRORS as e:
        raise CodecError(f"not canonical DAG-CBOR: {e}") from e
    if length != len(data):
        raise CodecError(f"not canonical DAG-CBOR: {len(data) - length} bytes after the value")
    result: IPLDKind = value
    return result
