"""The local embedded block store: LMDB in the database directory, the default for every database.

Layout (LMDB named databases; a log is known by a small number, ``lognum``, 4 bytes big-endian):

- ``blocks``: CID → block, for blocks that are not log entries (manifests).
- ``entries``: ``lognum | time | writer key | CID`` → payload offset (4 bytes) + block: each log's
  entries, stored in log order; the offset says where the payload's DAG-CBOR starts in the block (it is
  the entry map's last value), so a reader of operations decodes only the payload.
- ``order``: the same keys → the entry's admission number (8 bytes): the order index, walked without
  reading a block; the admission numbers say which entries a checkpoint taken at a count covers.
- ``where``: CID → ``lognum | time | writer key | CID``: finds an entry's block by its CID.
- ``heads``: lognum → the log's head CIDs; ``checkpoints``: lognum → the store's index checkpoint.

Keys sort as the log's total order ``(time, writer key, CID bytes)`` (big-endian time), so reading a log
in order is one sequential cursor walk over ``entries`` (pages are read in file order), and reopening a
log walks the small keys of ``order`` without decoding a block. Reopening neither replays nor
re-verifies the log.

Why LMDB: measured here with the real append loop (sign + encode + one commit per append), LMDB
without fsync gave 26k appends/s against 10k/s for SQLite WAL with ``synchronous=NORMAL``; point reads
are about 1M/s against 215k/s.

Durability: every transaction that :meth:`LocalBlockStore.commit` (or a ``put``) returned from is in
the operating system's page cache, so it **survives a kill of the process** (SIGKILL included): LMDB
commits by writing the data pages, then the meta page that points at them, and a reader only ever
sees the last complete meta page. With ``sync=False`` (the default) an **operating-system crash or
power loss** may lose the transactions of the last seconds (whatever the kernel had not written back)
and, on a file system that reorders writes, can damage the file; :meth:`close` flushes to disk. With
``sync=True`` every commit is flushed with ``fdatasync`` before it returns and survives power loss, at
about an eighth of the speed.

Blocks are checked on every read: their SHA-256 must match the CID, or :class:`StorageCorruptError` is
raised. Nothing read back from the store is trusted without that check.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import lmdb

from ipfs_log.cid import CID
from ipfs_log.codec import encode
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import BlockStoreError, StorageCorruptError

__all__ = ["LocalBlockStore"]

_SHA256_PREFIXES: Final = (b"\x01\x71\x12\x20", b"\x01\x55\x12\x20")  # dag-cbor and raw, sha2-256
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_CID_LEN: Final = 36
_ORDER_KEY_LEN: Final = 4 + 8 + 32 + _CID_LEN
_RECORD: Final = _ORDER_KEY_LEN - 4
_REMAP_BYTES: Final = 8 << 20
"""Re-open the memory map after reading about this many bytes, so mapped pages do not pile up in RSS.

Pages read through LMDB's map count in the process's resident set until the map goes away, and a read
fault maps the surrounding 64 KiB as well, which holds pages of the other databases written in the
same transactions: a long scan would otherwise keep the whole file resident (measured: walking the
order keys of a 1M-entry log mapped 600 MB)."""
_MAPPED_LIMIT: Final = 64 << 20
"""Re-map when the process's resident file-backed pages (``/proc/self/statm``) exceed this."""
_CHECK_EVERY: Final = 32
"""Look at the resident file pages every this many transactions, besides every :data:`_REMAP_BYTES`."""
_PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _mapped_file_bytes() -> float:
    """The process's resident shared (file-backed) memory, or infinity where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[2]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return float("inf")


_ORDER_SEGMENT: Final = 65_536
"""Order keys read between two re-maps when a log is opened."""
DEFAULT_MAP_SIZE: Final = 1 << 38


class LocalBlockStore:
    """Blocks, heads, order indexes and checkpoints in an LMDB environment at ``path``.

    Implements the :class:`ipfs_log.BlockStore` protocol. The caller (``OrbitDB``) holds the directory
    lock, so one process at a time writes; writes made through :meth:`stage` wait in one open
    transaction until :meth:`commit`, so an append's block, order key and heads are committed together.

    Args:
        path: the directory of the LMDB environment (created if absent).
        sync: flush every commit to disk (survives power loss; slower). Default: survive a process kill.
        map_size: the largest the store may grow to, in bytes.

    Raises:
        BlockStoreError: the environment cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = False, map_size: int = DEFAULT_MAP_SIZE):
        self.path = Path(path)
        self.sync = sync
        self._map_size = map_size
        self._txn: Any = None
        self._rtxn: Any = None
        self._read_bytes = 0
        self._calls = 0
        self._closed = False
        self._open()

    def _open(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(
                str(self.path), map_size=self._map_size, max_dbs=8, sync=self.sync, metasync=self.sync,
                readahead=False, max_spare_txns=4,
            )  # fmt: skip
            self._env: Any = env
            self._blocks = env.open_db(b"blocks")
            self._logs = env.open_db(b"logs")
            self._heads = env.open_db(b"heads")
            self._order = env.open_db(b"order")
            self._entries = env.open_db(b"entries")
            self._where = env.open_db(b"where")
            self._ckpt = env.open_db(b"checkpoints")
        except lmdb.Error as e:
            raise BlockStoreError(f"cannot open the LMDB store: {e}", self.path) from e

    # ------------------------------------------------------------------ transactions

    def _write(self) -> Any:
        if self._closed:
            raise BlockStoreError("the store is closed", self.path)
        if self._txn is None:
            self._drop_reader()
            if self._remap_due():
                self._remap()
            self._txn = self._env.begin(write=True)
        return self._txn

    def _read(self) -> Any:
        if self._closed:
            raise BlockStoreError("the store is closed", self.path)
        if self._txn is not None:
            return self._txn
        due = self._remap_due()
        if self._rtxn is not None and not due:
            return self._rtxn
        self._drop_reader()
        if due:
            self._remap()
        self._rtxn = self._env.begin()
        return self._rtxn

    def _remap_due(self) -> bool:
        # Pages touched through the map (by reads, and by writes walking the B-trees) count in this
        # process's RSS until the map goes away: look at them every _CHECK_EVERY calls, or sooner
        # after reading _REMAP_BYTES.
        self._calls += 1
        if self._read_bytes <= _REMAP_BYTES and self._calls % _CHECK_EVERY:
            return False
        self._read_bytes = 0
        return _mapped_file_bytes() > _MAPPED_LIMIT

    def _remap(self) -> None:
        """Close and reopen the environment (no transaction may be open), dropping its mapped pages."""
        self._env.close()
        self._open()

    def _drop_reader(self) -> None:
        rtxn, self._rtxn = self._rtxn, None
        if rtxn is not None:
            rtxn.abort()

    def commit(self) -> None:
        """Commit everything staged; when this returns, it survives a process kill.

        Raises:
            BlockStoreError: the commit failed (e.g. the disk or the map is full); nothing staged
                since the last commit was kept.
        """
        txn, self._txn = self._txn, None
        if txn is None:
            return
        try:
            txn.commit()
        except lmdb.Error as e:
            raise BlockStoreError(f"commit failed: {e}", self.path) from e

    def abort(self) -> None:
        """Drop everything staged since the last commit."""
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.abort()

    def stage(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Write blocks into the open transaction; they are durable at the next :meth:`commit`.

        Raises:
            BlockStoreError: the store is closed or the write failed.
        """
        txn, db = self._write(), self._blocks
        try:
            for cid, block in blocks:
                txn.put(cid, block, db=db, overwrite=False)
        except lmdb.Error as e:
            self.abort()
            raise BlockStoreError(f"write failed: {e}", self.path) from e

    # ------------------------------------------------------------------ BlockStore protocol

    def _checked(self, cid: bytes, block: bytes) -> bytes:
        self._read_bytes += len(block)
        if cid[:4] in _SHA256_PREFIXES and len(cid) == _CID_LEN and hashlib.sha256(block).digest() != cid[4:]:
            raise StorageCorruptError("stored bytes do not hash to the CID", self.path, cid)
        return block

    def get(self, cid: CID) -> bytes:
        """Return the block's bytes, checked against its CID.

        Raises:
            BlockNotFoundError: the store does not hold it.
            StorageCorruptError: the stored bytes do not hash to ``cid``.
        """
        block = self._lookup(self._read(), cid)
        if block is None:
            raise BlockNotFoundError(cid)
        return self._checked(cid, block)

    def _lookup(self, txn: Any, cid: CID) -> bytes | None:
        block: bytes | None = txn.get(cid, db=self._blocks)
        if block is None:
            key = txn.get(cid, db=self._where)
            if key is not None:
                value = txn.get(key, db=self._entries)
                if value is None:
                    raise StorageCorruptError("block of a stored entry is missing", self.path, cid)
                block = value[4:]
        return block

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``, each checked against its CID.

        Raises:
            StorageCorruptError: a stored block does not hash to its CID.
        """
        txn, lookup, out = self._read(), self._lookup, {}
        for cid in cids:
            block = lookup(txn, cid)
            if block is not None:
                out[cid] = self._checked(cid, block)
        return out

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block and commit (with anything staged).

        Raises:
            BlockStoreError: the write or the commit failed.
        """
        self.put_many(((cid, block),))

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store many blocks in one transaction and commit it (with anything staged).

        Raises:
            BlockStoreError: the write or the commit failed.
        """
        self.stage(blocks)
        self.commit()

    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        txn = self._read()
        return txn.get(cid, db=self._blocks) is not None or txn.get(cid, db=self._where) is not None

    def __iter__(self) -> Iterator[CID]:
        """Iterate over the CIDs of every block held."""
        txn = self._read()
        cids = [CID(k) for k in txn.cursor(db=self._blocks).iternext(keys=True, values=False)]
        cids += [CID(k) for k in txn.cursor(db=self._where).iternext(keys=True, values=False)]
        return iter(cids)

    def __len__(self) -> int:
        txn = self._read()
        return int(txn.stat(self._blocks)["entries"]) + int(txn.stat(self._where)["entries"])

    # ------------------------------------------------------------------ logs

    def log_number(self, log_id: str, *, create: bool = True) -> int | None:
        """Return the small number that prefixes this log's records, allocating one if asked.

        Raises:
            BlockStoreError: the store is closed or the write failed.
        """
        name = log_id.encode()
        raw = self._read().get(name, db=self._logs)
        if raw is not None:
            return int(_U32.unpack(raw)[0])
        if not create:
            return None
        txn = self._write()
        last = txn.get(b"\x00next", db=self._logs)
        number = 1 if last is None else int(_U32.unpack(last)[0])
        txn.put(b"\x00next", _U32.pack(number + 1), db=self._logs)
        txn.put(name, _U32.pack(number), db=self._logs)
        self.commit()
        return number

    def heads(self, log: int) -> list[CID]:
        """Return the stored heads of log number ``log`` (empty for a new log).

        Raises:
            StorageCorruptError: the heads record is malformed.
        """
        raw = self._read().get(_U32.pack(log), db=self._heads)
        if raw is None:
            return []
        if len(raw) % _CID_LEN:
            raise StorageCorruptError(f"heads record of log {log} has {len(raw)} bytes", self.path)
        return [CID(raw[i : i + _CID_LEN]) for i in range(0, len(raw), _CID_LEN)]

    def record(self, log: int, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        """Store admitted entries (block, order key, CID pointer) and the log's new heads, and commit.

        ``first`` is the admission number of ``entries[0]``: how many entries the log held before them
        (a stored log only grows, so that is also its length).

        Raises:
            BlockStoreError: the write or the commit failed; nothing since the last commit was kept.
        """
        txn = self._write()
        prefix = _U32.pack(log)
        stored, order, where, pack = self._entries, self._order, self._where, _U64.pack
        try:
            count = first
            for e in entries:
                key = prefix + pack(e.time) + e.key + e.cid
                offset = len(e.block) - len(encode(e.payload))
                txn.put(key, _U32.pack(offset) + e.block, db=stored)
                txn.put(key, pack(count), db=order)
                txn.put(e.cid, key, db=where)
                count += 1
                self._read_bytes += len(e.block) + 200  # the block and the pages its three keys touch
            txn.put(prefix, b"".join(heads), db=self._heads)
        except lmdb.Error as e:
            self.abort()
            raise BlockStoreError(f"write failed: {e}", self.path) from e
        self.commit()

    def order(self, log: int, since: int | None = None) -> tuple[bytearray, list[int]]:
        """Read log number ``log``'s order index: one 76-byte record per entry, in log order.

        A record is ``time (8 bytes, big-endian) + writer key (32) + CID (36)``; no block is read.

        Returns:
            The packed records, and the positions of the entries admitted as number ``since`` or later
            (none when ``since`` is None).

        Raises:
            StorageCorruptError: a key of the index is malformed.
        """
        prefix = _U32.pack(log)
        records = bytearray()
        late: list[int] = []
        start, done = prefix, False
        while not done:  # in segments, re-mapping between them (see _REMAP_BYTES)
            cursor = self._read().cursor(db=self._order)
            done = True
            if cursor.set_range(start):
                for count, (k, v) in enumerate(cursor.iternext()):
                    if k[:4] != prefix:
                        break
                    if len(k) != _ORDER_KEY_LEN or len(v) != 8:
                        raise StorageCorruptError(f"malformed order record in log {log}", self.path)
                    if count == _ORDER_SEGMENT:
                        start, done = k, False
                        break
                    if since is not None and _U64.unpack(v)[0] >= since:
                        late.append(len(records) // _RECORD)
                    records += k[4:]
            self._read_bytes = _REMAP_BYTES + 1  # re-map before the next read
        return records, late

    def entry_key(self, cid: CID) -> bytes | None:
        """Return the ``lognum | time | writer key | CID`` key of a stored entry, or None."""
        key: bytes | None = self._read().get(cid, db=self._where)
        return key

    def read_run(self, log: int, records: bytes) -> list[bytes]:
        """Return the stored values of consecutive entries of log ``log``, given their order records.

        One cursor walk over ``entries``; each value is the payload offset (4 bytes, big-endian) and the
        block, which is checked against the CID in its key.

        Raises:
            StorageCorruptError: a block is missing, out of place, or does not hash to its CID.
        """
        prefix = _U32.pack(log)
        count = len(records) // _RECORD
        if not count:
            return []
        cursor = self._read().cursor(db=self._entries)
        blocks: list[bytes] = []
        if cursor.set_key(prefix + records[:_RECORD]):
            sha256 = hashlib.sha256
            for key, value in cursor.iternext():
                i = len(blocks)
                if i == count or key[4:] != records[i * _RECORD : (i + 1) * _RECORD] or key[:4] != prefix:
                    break
                if sha256(value[4:]).digest() != key[48:]:
                    raise StorageCorruptError("stored bytes do not hash to the CID", self.path, CID(key[44:]))
                blocks.append(value)
            self._read_bytes += sum(map(len, blocks))
        if len(blocks) != count:
            i = len(blocks)
            missing = CID(records[i * _RECORD + 40 : (i + 1) * _RECORD])
            raise StorageCorruptError("block of a stored entry is missing", self.path, missing)
        return blocks

    def load_checkpoint(self, log: int) -> bytes | None:
        """Return the raw checkpoint record of log number ``log``, if any."""
        raw = self._read().get(_U32.pack(log), db=self._ckpt)
        return None if raw is None else bytes(raw)

    def save_checkpoint(self, log: int, record: bytes) -> None:
        """Store and commit the raw checkpoint record of log number ``log``.

        Raises:
            BlockStoreError: the write or the commit failed.
        """
        txn = self._write()
        txn.put(_U32.pack(log), record, db=self._ckpt)
        self.commit()

    def drop_log(self, log_id: str) -> None:
        """Forget a log: its entries, heads, order index and checkpoint.

        Raises:
            BlockStoreError: the write failed.
        """
        number = self.log_number(log_id, create=False)
        if number is None:
            return
        prefix = _U32.pack(number)
        txn = self._write()
        txn.delete(prefix, db=self._heads)
        txn.delete(prefix, db=self._ckpt)
        txn.delete(log_id.encode(), db=self._logs)
        cursor = txn.cursor(db=self._order)
        if cursor.set_range(prefix):
            while cursor.key()[:4] == prefix:
                key = cursor.key()
                txn.delete(key, db=self._entries)
                txn.delete(key[44:], db=self._where)
                if not cursor.delete():
                    break
        self.commit()

    def close(self) -> None:
        """Commit anything staged, flush to disk and close. Idempotent."""
        if self._closed:
            return
        try:
            self.commit()
            self._drop_reader()
            self._env.sync(True)
        finally:
            self._closed = True
            self._env.close()

    def __repr__(self) -> str:
        return f"LocalBlockStore({str(self.path)!r})"
