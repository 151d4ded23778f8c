"""Each stored log's records: its entries in log order, its order index, its CID index and its heads.

The layout is :mod:`orbit.storage.layout`'s. :meth:`LogRecords.commit` writes a batch of admitted entries
and the log's new heads in one transaction: the one write a persisted log makes (see
:class:`ipfs_log.storage.LogStorage`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.entry import Entry
from orbit.errors import StorageCorruptError
from orbit.storage.env import Environment, guarded
from orbit.storage.journal import Commit
from orbit.storage.layout import CID_LEN, KEY_LEN, RECORD, U32, U64, key_cid, log_prefix

__all__ = ["LogRecords"]

_JOURNALED: Final = 64
"""Commits of at most this many entries go through the journal."""
_ORDER_SEGMENT: Final = 65_536
"""Order keys read between two re-maps when a log is opened."""


class LogRecords:
    """The stored logs of an :class:`~orbit.storage.env.Environment`.

    Every method runs under the environment's lock and raises :class:`~orbit.errors.BlockStoreError`
    (never an LMDB or OS error) when the storage fails.
    """

    def __init__(self, env: Environment) -> None:
        self.env = env

    @guarded("allocate a log number")
    def number(self, log_id: str, *, create: bool = True) -> int | None:
        """Return the small number that prefixes this log's records, allocating one if asked."""
        env, name = self.env, log_id.encode()
        raw = env.reader().get(name, db=env.db[b"logs"])
        if raw is not None:
            return int(U32.unpack(raw)[0])
        if not create:
            return None

        def allocate(txn: Any) -> int:
            logs = env.db[b"logs"]
            last = txn.get(b"\x00next", db=logs)
            number = 1 if last is None else int(U32.unpack(last)[0])
            txn.put(b"\x00next", U32.pack(number + 1), db=logs)
            txn.put(name, U32.pack(number), db=logs)
            return number

        return env.write(allocate)

    @guarded("read heads")
    def heads(self, lognum: int) -> list[CID]:
        """Return the stored heads of log number ``lognum`` (empty for a new log).

        Raises:
            StorageCorruptError: the heads record is malformed.
        """
        raw = self.env.reader().get(log_prefix(lognum), db=self.env.db[b"heads"])
        if raw is None:
            return []
        if len(raw) % CID_LEN:
            raise StorageCorruptError(f"heads record of log {lognum} has {len(raw)} bytes", self.env.path)
        return [CID(raw[i : i + CID_LEN]) for i in range(0, len(raw), CID_LEN)]

    @guarded("record entries")
    def commit(self, lognum: int, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        """Store admitted entries (block, order key, CID pointer) and the log's new heads, in one commit.

        ``first`` is the admission number of ``entries[0]``. A few entries (an append, a live update)
        are journaled (one sequential write, applied to LMDB in batches); more go straight to LMDB in
        one transaction. When this returns, the write survives a process kill; when it raises, nothing
        of it was kept.
        """
        env = self.env
        commit = Commit.of(lognum, entries, heads, first)
        if len(entries) <= _JOURNALED:
            env.journal(commit)
        else:
            env.write(lambda txn: commit.apply(txn, env.db))
        env.note_read(sum([len(e.block) + 200 for e in entries]))  # the blocks, the pages their keys touch

    @guarded("read the order index")
    def order(self, lognum: int, since: int | None = None) -> tuple[bytearray, list[int]]:
        """Read log number ``lognum``'s order index: one 76-byte record per entry, in log order.

        Returns:
            The packed records, and the positions of the entries admitted as number ``since`` or later
            (none when ``since`` is None).

        Raises:
            StorageCorruptError: a key of the index is malformed.
        """
        env, prefix = self.env, log_prefix(lognum)
        records = bytearray()
        late: list[int] = []
        # Admission numbers are 8 bytes, big-endian: compared as bytes, they compare as numbers.
        floor = None if since is None else U64.pack(max(0, min(since, (1 << 64) - 1)))
        start, done = prefix, False
        while not done:  # in segments, re-mapping between them
            cursor = env.reader().cursor(db=env.db[b"order"])
            done = True
            if cursor.set_range(start):
                for count, (k, v) in enumerate(cursor.iternext()):
                    if k[:4] != prefix:
                        break
                    if len(k) != KEY_LEN or len(v) != 8:
                        raise StorageCorruptError(f"malformed order record in log {lognum}", env.path)
                    if count == _ORDER_SEGMENT:
                        start, done = k, False
                        break
                    if floor is not None and v >= floor:
                        late.append(len(records) // RECORD)
                    records += memoryview(k)[4:]
            env.remap_soon()
        return records, late

    @guarded("look up an entry")
    def entry_key(self, cid: CID) -> bytes | None:
        """Return the entry key of a stored entry, or None."""
        key: bytes | None = self.env.reader().get(cid, db=self.env.db[b"where"])
        return key

    @guarded("read entries")
    def read_run(self, lognum: int, records: bytes) -> list[bytes]:
        """Return the stored values of consecutive entries of log ``lognum``, given their order records.

        One cursor walk over ``entries``; each value is the payload offset (4 bytes, big-endian) and the
        block, which is checked against the CID in its key.

        Raises:
            StorageCorruptError: a block is missing, out of place, or does not hash to its CID.
        """
        env, prefix = self.env, log_prefix(lognum)
        count = len(records) // RECORD
        if not count:
            return []
        cursor = env.reader().cursor(db=env.db[b"entries"])
        blocks: list[bytes] = []
        if cursor.set_key(prefix + records[:RECORD]):
            sha256 = hashlib.sha256
            for key, value in cursor.iternext():
                i = len(blocks)
                if i == count or key[4:] != records[i * RECORD : (i + 1) * RECORD] or key[:4] != prefix:
                    break
                if sha256(value[4:]).digest() != key[KEY_LEN - 32 :]:
                    raise StorageCorruptError(
                        "stored bytes do not hash to the CID", env.path, CID(key_cid(key))
                    )
                blocks.append(value)
            env.note_read(sum(map(len, blocks)))
        if len(blocks) != count:
            i = len(blocks)
            missing = CID(records[i * RECORD + 40 : (i + 1) * RECORD])
            raise StorageCorruptError("block of a stored entry is missing", env.path, missing)
        return blocks

    @guarded("compact a log")
    def compact(
        self,
        lognum: int,
        dropped: Mapping[CID, int],
        heads: Collection[CID],
        also: Callable[[Any, int], None],
        keep: Collection[CID] = (),
    ) -> int:
        """Drop entries of log number ``lognum`` in one transaction, keeping their CIDs and clock times.

        Each entry of ``dropped`` (CID → time) loses its block, order record and CID pointer and gets a
        row in ``under``; the entries kept are numbered again from 0 in admission order, ``heads``
        (the frontier's) first, so a log's length still counts its admissions; a dropped entry in
        ``keep`` stays as a plain block (out of the log); ``also(txn, kept)``
        writes what must change with them (the checkpoint, the frontier record). The journal's pending
        records are applied first, in the same transaction. When this raises, nothing was kept.

        Returns:
            How many entries the log holds afterwards.

        Raises:
            StorageCorruptError: a dropped entry is not stored in this log.
        """
        env, prefix = self.env, log_prefix(lognum)

        def compact(txn: Any) -> int:
            db = env.db
            for cid, time in dropped.items():
                key = txn.get(cid, db=db[b"where"])
                if key is None or key[:4] != prefix:
                    raise StorageCorruptError("a dropped entry is not stored in its log", env.path, cid)
                if cid in keep:
                    value = txn.get(key, db=db[b"entries"])
                    if value is not None:
                        txn.put(cid, value[4:], db=db[b"blocks"])
                txn.delete(key, db=db[b"entries"])
                txn.delete(key, db=db[b"order"])
                txn.delete(cid, db=db[b"where"])
                txn.put(prefix + cid, U64.pack(time), db=db[b"under"])
            kept: list[tuple[bool, bytes, bytes]] = []
            cursor = txn.cursor(db=db[b"order"])
            if cursor.set_range(prefix):
                for key, number in cursor.iternext():
                    if key[:4] != prefix:
                        break
                    kept.append((CID(key_cid(key)) not in heads, number, key))
            kept.sort()
            order = db[b"order"]
            for n, (_, _, key) in enumerate(kept):
                txn.put(key, U64.pack(n), db=order)
            also(txn, len(kept))
            return len(kept)

        return env.write(compact)

    @guarded("drop a log")
    def drop(self, log_id: str) -> None:
        """Forget a log: its entries, heads, order index and checkpoint (blocks of others stay)."""
        number = self.number(log_id, create=False)
        if number is None:
            return
        prefix = log_prefix(number)

        def drop(txn: Any) -> None:
            db = self.env.db
            txn.delete(prefix, db=db[b"heads"])
            txn.delete(prefix, db=db[b"checkpoints"])
            txn.delete(prefix, db=db[b"frontiers"])
            under = txn.cursor(db=db[b"under"])
            if under.set_range(prefix):
                while under.key()[:4] == prefix:
                    if not under.delete():
                        break
            txn.delete(log_id.encode(), db=db[b"logs"])
            cursor = txn.cursor(db=db[b"order"])
            if cursor.set_range(prefix):
                while cursor.key()[:4] == prefix:
                    key = cursor.key()
                    txn.delete(key, db=db[b"entries"])
                    txn.delete(key_cid(key), db=db[b"where"])
                    if not cursor.delete():
                        break

        self.env.write(drop)
