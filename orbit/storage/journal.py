"""The write-behind journal: a log's small commits made durable by one sequential write each.

An LMDB commit rewrites every page on the path from each touched B-tree's root to the leaf it changed,
and admitting one entry touches four trees (entries, order index, CID index, heads): about ten page
writes for a few hundred bytes. A commit of a few entries (an append, a live update) is instead
appended to this file as one record, and :class:`~orbit.storage.env.Environment` applies the pending
records to LMDB in one transaction later: when enough are waiting, before any read of the store,
before any other write, and at close. A record that ``append`` wrote survives a kill of the process
(with ``sync=True``, power loss too: the file is flushed first), so a commit is durable when it is
journaled, and visible only after that (durable before visible).

The file is ``MAGIC`` followed by records::

    length (u32) | crc32 of generation and payload (u32) | generation (u64) | payload (length bytes)

Generations count up by one per record across the life of the directory; the transaction that applies
records to LMDB also stores the last generation applied, so reopening after a kill replays exactly the
records LMDB lacks (in order) and skips the others, even if the file could not be emptied after they
were applied. A record cut short by a kill, or failing its checksum, ends the journal: it and anything
after it are discarded (they were never acknowledged: ``append`` returns only after the whole record is
written).

A payload is a :class:`Commit` of entries: the four kinds of puts one
:meth:`~orbit.storage.logs.LogRecords.commit` makes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.entry import Entry
from orbit.errors import StorageCorruptError
from orbit.storage.layout import CID_LEN, KEY_LEN, U32, U64, key_cid, log_prefix, record

__all__ = ["APPLIED_KEY", "MAGIC", "Commit", "Journal"]

MAGIC: Final = b"orbit-journal 1\n"
APPLIED_KEY: Final = b"journal"
"""Where LMDB keeps the last generation applied (in the ``heads`` database, whose other keys are the
4-byte log prefixes)."""
_HEAD: Final = struct.Struct(">IIQ")
_MAX_RECORD: Final = 64 << 20
_ENTRIES: Final = 1
_PAYLOAD_HEAD: Final = struct.Struct(">BIQHI")  # kind, lognum, first admission, heads, entries


class Commit:
    """One commit of admitted entries to a stored log: what it puts, in parts (see :func:`encode`)."""

    __slots__ = ("first", "heads", "items", "lognum")

    def __init__(self, lognum: int, first: int, heads: bytes, items: list[tuple[bytes, bytes]]) -> None:
        self.lognum = lognum
        self.first = first
        """The admission number of the first entry."""
        self.heads = heads
        """The log's new heads, their CIDs concatenated."""
        self.items = items
        """Per entry, its key and its stored value (payload offset and block)."""

    @classmethod
    def of(cls, lognum: int, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> Commit:
        """The commit of ``entries`` (``first``: the first one's admission number) with new ``heads``."""
        prefix, pack = log_prefix(lognum), U32.pack
        items = [(prefix + record(e), pack(e.payload_offset) + e.block) for e in entries]
        return cls(lognum, first, b"".join(heads), items)

    def encode(self) -> bytes:
        """The journal payload.

        Kind, lognum, first, head count, entry count, the heads, then per entry the value's length, the
        key and the value.
        """
        parts = [
            _PAYLOAD_HEAD.pack(
                _ENTRIES, self.lognum, self.first, len(self.heads) // CID_LEN, len(self.items)
            ),
            self.heads,
        ]
        pack = U32.pack
        for key, value in self.items:
            parts += (pack(len(value)), key, value)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Commit:
        """Read back :meth:`encode`'s payload.

        Raises:
            StorageCorruptError: the payload is malformed.
        """
        try:
            kind, lognum, first, nheads, n = _PAYLOAD_HEAD.unpack_from(payload)
            if kind != _ENTRIES:
                raise ValueError(f"unknown record kind {kind}")
            at = _PAYLOAD_HEAD.size
            heads = payload[at : at + nheads * CID_LEN]
            at += nheads * CID_LEN
            if len(heads) != nheads * CID_LEN:
                raise ValueError("heads cut short")
            prefix = log_prefix(lognum)
            items: list[tuple[bytes, bytes]] = []
            for _ in range(n):
                (size,) = U32.unpack_from(payload, at)
                key = payload[at + 4 : at + 4 + KEY_LEN]
                value = payload[at + 4 + KEY_LEN : at + 4 + KEY_LEN + size]
                at += 4 + KEY_LEN + size
                if len(key) != KEY_LEN or len(value) != size or key[:4] != prefix:
                    raise ValueError("entry cut short")
                items.append((key, value))
            if at != len(payload):
                raise ValueError(f"{len(payload) - at} bytes after the entries")
        except (ValueError, struct.error) as e:
            raise StorageCorruptError(f"malformed journal record: {e}", None) from e
        return cls(lognum, first, heads, items)

    def apply(self, txn: Any, db: dict[bytes, Any]) -> None:
        """Make the commit's puts in ``txn`` (``db``: the environment's named databases)."""
        stored, order, where = db[b"entries"], db[b"order"], db[b"where"]
        put, pack = txn.put, U64.pack
        count = self.first
        for key, value in self.items:
            put(key, value, db=stored)
            put(key, pack(count), db=order)
            put(key_cid(key), key, db=where)
            count += 1
        put(log_prefix(self.lognum), self.heads, db=db[b"heads"])


class Journal:
    """The journal file of one environment (every call under the environment's lock).

    Args:
        path: the file (created if absent).
        sync: flush every record to disk (fdatasync) before ``append`` returns.

    Raises:
        OSError: the file cannot be opened or read.
        StorageCorruptError: the file is not an orbit journal.
    """

    def __init__(self, path: Path, *, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            head = os.pread(self._fd, len(MAGIC), 0)
            if not head:
                self._write_at(0, MAGIC)
            elif head != MAGIC:
                raise StorageCorruptError("not an orbit journal (unknown header)", path)
            self._size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise

    def _write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def records(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(generation, payload)`` of every whole record, in order; cut the file after the last.

        Read a record at a time (a record is at most 64 MiB: a longer length is damage).

        Raises:
            OSError: the file cannot be read or cut.
        """
        end = len(MAGIC)
        previous = 0
        with open(self.path, "rb") as f:
            f.seek(end)
            while True:
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    break
                length, crc, generation = _HEAD.unpack(head)
                if length > _MAX_RECORD or generation <= previous:
                    break
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload, zlib.crc32(head[8:])) != crc:
                    break
                yield generation, payload
                previous = generation
                end += _HEAD.size + length
        if end != os.fstat(self._fd).st_size:  # a record a kill cut short, never acknowledged
            os.ftruncate(self._fd, end)
        self._size = end

    def append(self, generation: int, payload: bytes) -> None:
        """Write one record; when this returns it survives a kill (and with ``sync``, power loss).

        Raises:
            OSError: the write failed; the file is as it was (or, if even that failed, its torn end
                fails the checksum and is discarded at the next open).
        """
        gen = U64.pack(generation)
        head = _HEAD.pack(len(payload), zlib.crc32(payload, zlib.crc32(gen)), generation)
        at = self._size
        try:
            self._write_at(at, head + payload)
            if self.sync:
                (getattr(os, "fdatasync", None) or os.fsync)(self._fd)  # macOS has no fdatasync
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, at)
            raise
        self._size = at + len(head) + len(payload)

    def reset(self) -> None:
        """Empty the journal (its records are applied).

        Raises:
            OSError: the file cannot be cut (its records are skipped at replay all the same).
        """
        if self._size > len(MAGIC):
            os.ftruncate(self._fd, len(MAGIC))
            self._size = len(MAGIC)

    @property
    def empty(self) -> bool:
        """Whether the file holds no record."""
        return self._size <= len(MAGIC)

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
