"""The local embedded block store: LMDB in the database directory, the default for every database.

Blocks live in two places of one environment (see :mod:`orbit.storage.layout`): blocks that are not log
entries (manifests) under their CID in ``blocks``, and each log's entries in log order in ``entries``,
found by CID through ``where``. This store reads both, and writes the first; entries are written by
their log's :class:`~orbit.storage.logs.LogRecords`, together with its order index and heads.

Blocks are checked on every read: their SHA-256 must match the CID, or :class:`StorageCorruptError` is
raised. Nothing read back from the store is trusted without that check.

Thread-safe: every call runs under the environment's lock (see :mod:`orbit.storage.env`, which also
states the durability promise and maps every LMDB or OS error to :class:`BlockStoreError`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any, Final

from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError
from orbit.errors import StorageCorruptError
from orbit.storage.env import DEFAULT_MAP_SIZE, Environment, guarded
from orbit.storage.layout import CID_LEN

__all__ = ["LocalBlockStore"]

_SHA256_PREFIXES: Final = (b"\x01\x71\x12\x20", b"\x01\x55\x12\x20")  # dag-cbor and raw, sha2-256


class LocalBlockStore:
    """Blocks in an LMDB environment at ``path`` (a :class:`ipfs_log.BlockStore`).

    Args:
        path: the directory of the LMDB environment (created if absent).
        sync: flush every commit to disk (survives power loss; slower). Default: survive a process kill.
        map_size: the largest the store may grow to, in bytes.

    Raises:
        BlockStoreError: the environment cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = False, map_size: int = DEFAULT_MAP_SIZE):
        self.env = Environment(path, sync=sync, map_size=map_size)
        self.path = self.env.path
        self.sync = sync

    def _checked(self, cid: bytes, block: bytes) -> bytes:
        self.env.note_read(len(block))
        if cid[:4] in _SHA256_PREFIXES and len(cid) == CID_LEN and hashlib.sha256(block).digest() != cid[4:]:
            raise StorageCorruptError("stored bytes do not hash to the CID", self.path, cid)
        return block

    def _lookup(self, txn: Any, cid: CID) -> bytes | None:
        db = self.env.db
        block: bytes | None = txn.get(cid, db=db[b"blocks"])
        if block is None:
            key = txn.get(cid, db=db[b"where"])
            if key is not None:
                value = txn.get(key, db=db[b"entries"])
                if value is None:
                    raise StorageCorruptError("block of a stored entry is missing", self.path, cid)
                block = value[4:]
        return block

    @guarded("read a block")
    def get(self, cid: CID) -> bytes:
        """Return the block's bytes, checked against its CID.

        Raises:
            BlockNotFoundError: the store does not hold it.
            StorageCorruptError: the stored bytes do not hash to ``cid``.
            BlockStoreError: the store cannot be read.
        """
        block = self._lookup(self.env.reader(), cid)
        if block is None:
            raise BlockNotFoundError(cid)
        return self._checked(cid, block)

    @guarded("read blocks")
    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``, each checked against its CID.

        Raises:
            StorageCorruptError: a stored block does not hash to its CID.
            BlockStoreError: the store cannot be read.
        """
        txn, lookup, out = self.env.reader(), self._lookup, {}
        for cid in cids:
            block = lookup(txn, cid)
            if block is not None:
                out[cid] = self._checked(cid, block)
        return out

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block and commit.

        Raises:
            BlockStoreError: the write or the commit failed; nothing was kept.
        """
        self.put_many(((cid, block),))

    @guarded("write blocks")
    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store many blocks in one transaction and commit it.

        Raises:
            BlockStoreError: the write or the commit failed; nothing was kept.
        """
        items = list(blocks)

        def write(txn: Any) -> None:
            db = self.env.db[b"blocks"]
            for cid, block in items:
                txn.put(cid, block, db=db, overwrite=False)

        self.env.write(write)

    @guarded("look up a block")
    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        txn, db = self.env.reader(), self.env.db
        return txn.get(cid, db=db[b"blocks"]) is not None or txn.get(cid, db=db[b"where"]) is not None

    @guarded("list blocks")
    def cids(self) -> list[CID]:
        """Return the CIDs of every block held."""
        txn, db = self.env.reader(), self.env.db
        cids = [CID(k) for k in txn.cursor(db=db[b"blocks"]).iternext(keys=True, values=False)]
        cids += [CID(k) for k in txn.cursor(db=db[b"where"]).iternext(keys=True, values=False)]
        return cids

    def __iter__(self) -> Iterator[CID]:
        """Iterate over the CIDs of every block held (those held when it began)."""
        return iter(self.cids())

    @guarded("count blocks")
    def __len__(self) -> int:
        txn, db = self.env.reader(), self.env.db
        return int(txn.stat(db[b"blocks"])["entries"]) + int(txn.stat(db[b"where"])["entries"])

    def close(self) -> None:
        """Flush to disk and close. Idempotent.

        Raises:
            BlockStoreError: the flush failed (the store is closed anyway).
        """
        self.env.close()

    def __repr__(self) -> str:
        return f"LocalBlockStore({str(self.path)!r})"
