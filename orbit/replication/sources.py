"""Where a replicator's fetches read blocks from: inline blocks from announcements, then the node (counted).

A fetch reads through ``ChainedBlockStore(InlineBlocks, CountingBlockStore(node store))``: the blocks
peers inlined in their messages first (no round trip; still unverified, the log checks every entry it
admits), then the IPFS node, whose answers are counted as bytes fetched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError

__all__ = ["INLINE_CACHE_BYTES", "CountingBlockStore", "InlineBlocks"]

INLINE_CACHE_BYTES: Final = 64 << 20
"""Bytes of inline blocks kept until a fetch uses them (oldest dropped first)."""


class InlineBlocks:
    """Blocks inlined in announcements, by CID, until a fetch uses them; bounded (a block store).

    Thread-safe: the listening thread adds blocks while the fetching threads read them.

    Args:
        budget: bytes kept at most; past it, the oldest blocks are dropped.
    """

    def __init__(self, budget: int = INLINE_CACHE_BYTES) -> None:
        self._blocks: OrderedDict[CID, bytes] = OrderedDict()
        self._size = 0
        self._budget = budget
        self._lock = threading.Lock()

    def add(self, blocks: Iterable[bytes]) -> None:
        """Keep ``blocks`` under the CIDs they hash to (dropping the oldest past the budget)."""
        with self._lock:
            for block in blocks:
                cid = CID.for_block(block)
                if cid in self._blocks:
                    continue
                self._blocks[cid] = block
                self._size += len(block)
            while self._size > self._budget and self._blocks:
                _, old = self._blocks.popitem(last=False)
                self._size -= len(old)

    def get(self, cid: CID) -> bytes:
        """Return the block.

        Raises:
            BlockNotFoundError: it is not held.
        """
        with self._lock:
            block = self._blocks.get(cid)
        if block is None:
            raise BlockNotFoundError(cid)
        return block

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``."""
        with self._lock:
            return {c: b for c in cids if (b := self._blocks.get(c)) is not None}

    def put(self, cid: CID, block: bytes) -> None:
        """Keep ``block`` (under the CID it hashes to)."""
        self.add([block])

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Keep the blocks (each under the CID it hashes to)."""
        self.add(b for _, b in blocks)

    def has(self, cid: CID) -> bool:
        """Return whether the block is held."""
        with self._lock:
            return cid in self._blocks

    def discard(self, cids: Iterable[CID]) -> None:
        """Forget these blocks (their entries were admitted)."""
        with self._lock:
            for cid in cids:
                block = self._blocks.pop(cid, None)
                if block is not None:
                    self._size -= len(block)


class CountingBlockStore:
    """A block store that counts the bytes it returns (what the replicator fetched from the node).

    Args:
        store: the store read from and written to.
        count: called with the number of bytes of each answer.
    """

    def __init__(self, store: BlockStore, count: Callable[[int], None]) -> None:
        self._store, self._count = store, count

    def get(self, cid: CID) -> bytes:
        """Return the block from the store, counted.

        Raises:
            BlockNotFoundError: the store does not hold it.
        """
        block = self._store.get(cid)
        self._count(len(block))
        return block

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks the store holds among ``cids``, counted."""
        blocks = self._store.get_many(cids)
        self._count(sum(map(len, blocks.values())))
        return blocks

    def put(self, cid: CID, block: bytes) -> None:
        """Store one block."""
        self._store.put(cid, block)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks."""
        self._store.put_many(blocks)

    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        return self._store.has(cid)
