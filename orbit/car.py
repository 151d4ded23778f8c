r"""CARv1 files: a header naming root CIDs, then ``(CID, block)`` sections.

Layout: ``varint(len(header)) header`` where the header is DAG-CBOR ``{roots: [CID…], version: 1}``,
then for each block ``varint(len(cid) + len(block)) cid block``. CAR files come from outside and are
read as untrusted input: every varint is bounded and minimal, every section must fit in the file, and
every block must hash to its CID; anything else raises :class:`CarError`. (The blocks are then verified
as entries by the log that joins them.)

>>> from ipfs_log.codec import encode
>>> block = encode({"hello": "car"})
>>> cid = CID.for_block(block)
>>> roots, blocks = read_car(car_bytes([cid], [(cid, block)]))
>>> roots == [cid] and blocks == {cid: block}
True
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from typing import IO, Final

from ipfs_log.cid import CID, SHA2_256, read_uvarint
from ipfs_log.codec import decode, encode
from ipfs_log.errors import CodecError
from orbit.errors import CarError

__all__ = ["MAX_SECTION_BYTES", "car_bytes", "read_car", "write_car"]

MAX_SECTION_BYTES: Final = 2 << 20
"""Largest header or section accepted (entries are at most 1 MB)."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    try:
        return read_uvarint(data, pos)
    except CodecError as e:
        raise CarError(f"{what}: {e}") from e


def car_bytes(roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]]) -> bytes:
    """Return a CARv1 file holding ``blocks`` with ``roots`` in its header."""
    out = io.BytesIO()
    write_car(out, roots, blocks)
    return out.getvalue()


def write_car(
    dest: str | os.PathLike[str] | IO[bytes], roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]]
) -> int:
    """Stream a CARv1 file: the header, then one section per block as ``blocks`` yields it.

    Memory stays at one block whatever the file's size. A path is written to ``<path>.tmp`` and renamed
    into place once complete, so a reader never sees half a file; a file object is written as is.

    Returns:
        The number of blocks written.

    Raises:
        CarError: the file cannot be written (the temporary file is removed).
    """
    header = encode({"roots": list(roots), "version": 1})
    if not isinstance(dest, (str, os.PathLike)):
        return _write_sections(dest, header, blocks)
    tmp = f"{os.fspath(dest)}.tmp"
    try:
        with open(tmp, "wb") as out:
            count = _write_sections(out, header, blocks)
        os.replace(tmp, dest)
    except BaseException as e:  # a failing block source too: never leave half a file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise CarError(f"cannot write {os.fspath(dest)!r}: {e}") from e
        raise
    return count


def _write_sections(out: IO[bytes], header: bytes, blocks: Iterable[tuple[CID, bytes]]) -> int:
    out.write(_varint(len(header)) + header)
    count = 0
    for cid, block in blocks:
        out.write(_varint(len(cid) + len(block)))
        out.write(cid)
        out.write(block)
        count += 1
    return count


def _cid_length(data: bytes, pos: int, end: int) -> int:
    """Return the length of the binary CID starting at ``pos``."""
    if data[pos : pos + 2] == b"\x12\x20":
        return 34  # CIDv0: a bare sha2-256 multihash
    p = pos
    for what in ("CID version", "CID codec", "CID hash function", "CID digest length"):
        value, p = _read_varint(data, p, what)
        if what == "CID version" and value != 1:
            raise CarError(f"section at byte {pos}: unsupported CID version {value}")
    length = p - pos + value
    if pos + length > end:
        raise CarError(f"section at byte {pos}: CID runs past the end of its section")
    return length


def read_car(data: bytes) -> tuple[list[CID], dict[CID, bytes]]:
    """Parse and check a CARv1 file.

    Returns:
        The root CIDs of the header, and every block by CID.

    Raises:
        CarError: a varint is bad, a section is truncated or too large, the header is not
            ``{roots, version: 1}``, a CID is malformed, or a block does not hash to its CID.
    """
    length, pos = _read_varint(data, 0, "header length")
    if length == 0 or length > MAX_SECTION_BYTES:
        raise CarError(f"header length {length} is out of range")
    if pos + length > len(data):
        raise CarError(f"header is truncated ({len(data) - pos} of {length} bytes)")
    try:
        header = decode(data[pos : pos + length])
    except CodecError as e:
        raise CarError(f"header is not DAG-CBOR: {e}") from e
    if (
        not isinstance(header, dict)
        or header.get("version") != 1
        or not isinstance(header.get("roots"), list)
    ):
        raise CarError("header must be {roots: [CID…], version: 1}")
    roots: list[CID] = []
    for root in header["roots"]:  # type: ignore[union-attr]
        if type(root) is not CID:
            raise CarError("header roots must be CID links")
        roots.append(root)
    pos += length
    blocks: dict[CID, bytes] = {}
    while pos < len(data):
        start = pos
        length, pos = _read_varint(data, pos, "section length")
        if length == 0 or length > MAX_SECTION_BYTES:
            raise CarError(f"section at byte {start}: length {length} is out of range")
        end = pos + length
        if end > len(data):
            raise CarError(f"section at byte {start} is truncated ({len(data) - pos} of {length} bytes)")
        cid_len = _cid_length(data, pos, end)
        try:
            cid = CID.from_bytes(data[pos : pos + cid_len])
        except CodecError as e:
            raise CarError(f"section at byte {start}: {e}") from e
        block = data[pos + cid_len : end]
        if cid.hash_code != SHA2_256:
            raise CarError(
                f"section at byte {start}: CID {cid} uses hash function {cid.hash_code:#x}, not sha2-256"
            )
        if hashlib.sha256(block).digest() != cid.digest:
            raise CarError(f"section at byte {start}: block does not hash to its CID {cid}")
        blocks[cid] = block
        pos = end
    return roots, blocks
