r"""CARv1 files: a header naming root CIDs, then ``(CID, block)`` sections.

Layout: ``varint(len(header)) header`` where the header is DAG-CBOR ``{roots: [CID…], version: 1}``,
then for each block ``varint(len(cid) + len(block)) cid block``. CAR files come from outside and are
read as untrusted input: every varint is bounded and minimal, every section must fit in the file, and
every block must hash to its CID; anything else raises :class:`CarError`. (The blocks are then verified
as entries by the log that joins them.) :func:`write_car` and :class:`CarReader` stream, one block in
memory at a time; :func:`read_car` and :func:`car_bytes` hold a whole file.

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
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Final, Self, TypeVar

from ipfs_log.cid import CID, SHA2_256, read_uvarint
from ipfs_log.codec import decode, encode
from ipfs_log.errors import CodecError, OrbitError
from orbit.errors import CarError

__all__ = ["MAX_SECTION_BYTES", "CarReader", "car_bytes", "read_car", "write_car"]

T = TypeVar("T")

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


def _read_varint(data: bytes, pos: int, what: str, base: int = 0) -> tuple[int, int]:
    """The varint at ``data[pos:]``; an error names its byte in the file (``base + pos``)."""
    try:
        return read_uvarint(data, pos)
    except CodecError as e:
        ended = any(b < 0x80 for b in data[pos : pos + 9])
        problem = "is not minimally encoded" if ended else "is truncated or longer than 9 bytes"
        raise CarError(f"{what}: varint at byte {base + pos} {problem}") from e


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


def _cid_length(section: bytes, base: int) -> int:
    """Return the length of the binary CID that starts ``section`` (found at byte ``base`` of the file)."""
    if section[:2] == b"\x12\x20":
        return 34  # CIDv0: a bare sha2-256 multihash
    p = 0
    for what in ("CID version", "CID codec", "CID hash function", "CID digest length"):
        value, p = _read_varint(section, p, what, base)
        if what == "CID version" and value != 1:
            raise CarError(f"section at byte {base}: unsupported CID version {value}")
    length = p + value
    if length > len(section):
        raise CarError(f"section at byte {base}: CID runs past the end of its section")
    return length


class CarReader:
    """A CARv1 file read one section at a time, as untrusted input (see the module documentation).

    The header is read when the reader is made (:attr:`roots`); iterating yields ``(cid, block)`` in
    file order, each block checked against its CID, with one section in memory at a time. Use it as a
    context manager to close the file.

    Args:
        source: a path, or the file's contents.

    Raises:
        CarError: the file cannot be read (its ``__cause__`` is the :class:`OSError`), or its header
            is malformed; iterating, a section is malformed.

    >>> from ipfs_log.codec import encode
    >>> block = encode({"hello": "car"})
    >>> cid = CID.for_block(block)
    >>> with CarReader(car_bytes([cid], [(cid, block)])) as car:
    ...     car.roots == [cid], [c for c, _ in car] == [cid], car.sections
    (True, True, 1)
    """

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        self.where = "the CAR data" if isinstance(source, bytes) else repr(os.fspath(source))
        """How messages name the file."""
        try:
            self._file: IO[bytes] = (
                io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
            )
        except OSError as e:
            raise CarError(f"cannot read {self.where}: {e.strerror or e}") from e
        self._pos = 0
        self.sections = 0
        """How many sections (blocks) were read so far."""
        try:
            self.roots: list[CID] = self._header()
            """The root CIDs the header names."""
        except BaseException:
            self._file.close()
            raise

    def _read(self, n: int) -> bytes:
        try:
            data = self._file.read(n)
        except OSError as e:
            raise CarError(f"cannot read {self.where}: {e.strerror or e}") from e
        self._pos += len(data)
        return data

    def _varint(self, what: str) -> tuple[int, int] | None:
        """Read a varint: ``(value, its position)``, or None at the end of the file."""
        at = self._pos
        raw = b""
        while len(raw) < 9:
            byte = self._read(1)
            raw += byte
            if not byte or byte[0] < 0x80:
                break
        if not raw and what == "section length":
            return None
        return _read_varint(raw, 0, what, at)[0], at

    def _header(self) -> list[CID]:
        read = self._varint("header length")
        assert read is not None
        length = read[0]
        if length == 0 or length > MAX_SECTION_BYTES:
            raise CarError(f"header length {length} is out of range")
        data = self._read(length)
        if len(data) < length:
            raise CarError(f"header is truncated ({len(data)} of {length} bytes)")
        try:
            header = decode(data)
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
        return roots

    def __iter__(self) -> Iterator[tuple[CID, bytes]]:
        return self

    def __next__(self) -> tuple[CID, bytes]:
        read = self._varint("section length")
        if read is None:
            raise StopIteration
        length, start = read
        if length == 0 or length > MAX_SECTION_BYTES:
            raise CarError(f"section at byte {start}: length {length} is out of range")
        base = self._pos
        section = self._read(length)
        if len(section) < length:
            raise CarError(f"section at byte {start} is truncated ({len(section)} of {length} bytes)")
        cid_len = _cid_length(section, base)
        try:
            cid = CID.from_bytes(section[:cid_len])
        except CodecError as e:
            raise CarError(f"section at byte {start}: {e}") from e
        block = section[cid_len:]
        if cid.hash_code != SHA2_256:
            raise CarError(
                f"section at byte {start}: CID {cid} uses hash function {cid.hash_code:#x}, not sha2-256"
            )
        if hashlib.sha256(block).digest() != cid.digest:
            raise CarError(f"section at byte {start}: block does not hash to its CID {cid}")
        self.sections += 1
        return cid, block

    def first(self, parse: Callable[[CID, bytes], T]) -> T | None:
        """Read on to the first block ``parse`` accepts, and return what it returned (None at the end).

        ``parse`` refuses a block by raising an :class:`~ipfs_log.errors.OrbitError` (e.g.
        ``Manifest.from_block`` on a block that is no manifest). Iterating goes on after that block.

        Raises:
            CarError: a section before it is malformed.
        """
        for cid, block in self:
            try:
                return parse(cid, block)
            except OrbitError:
                continue
        return None

    def close(self) -> None:
        """Close the file. Idempotent."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_car(data: bytes) -> tuple[list[CID], dict[CID, bytes]]:
    """Parse and check a CARv1 file held in memory (:class:`CarReader` reads one section at a time).

    Returns:
        The root CIDs of the header, and every block by CID.

    Raises:
        CarError: a varint is bad, a section is truncated or too large, the header is not
            ``{roots, version: 1}``, a CID is malformed, or a block does not hash to its CID.
    """
    with CarReader(data) as car:
        return car.roots, dict(car)
