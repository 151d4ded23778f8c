r"""The block store a log reads and writes through, and an in-memory implementation.

``BlockStore`` is a small synchronous protocol. Implementations do not subclass it; mypy checks them
where they are used. The batch forms exist so that a remote store can fetch many blocks concurrently:
the log asks for the whole frontier of its walk at once.

>>> from ipfs_log.cid import CID
>>> store = MemoryBlockStore()
>>> cid = CID.for_block(b"\\xa0")
>>> store.put(cid, b"\\xa0")
>>> store.get(cid), store.has(cid), len(store)
(b'\\xa0', True, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from ipfs_log.cid import CID
from ipfs_log.errors import BlockNotFoundError

__all__ = ["BlockStore", "ChainedBlockStore", "MemoryBlockStore"]


class BlockStore(Protocol):
    """Content-addressed block storage.

    ``put`` trusts the caller's CID (the log computed it); stores that take blocks from outside
    verify them at their own boundary.
    """

    def get(self, cid: CID) -> bytes:
        """Return the block's bytes.

        Raises:
            BlockNotFoundError: the store does not hold it.
        """
        ...

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks the store holds among ``cids``; missing ones are simply absent."""
        ...

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block under its CID."""
        ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store many blocks at once (one transaction where the store has them)."""
        ...

    def has(self, cid: CID) -> bool:
        """Return whether the store holds the block."""
        ...


class MemoryBlockStore:
    """A block store in a dict: for tests, and for logs that need no persistence."""

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks: dict[CID, bytes] = {}

    def get(self, cid: CID) -> bytes:
        """Return the block's bytes.

        Raises:
            BlockNotFoundError: the store does not hold it.
        """
        try:
            return self._blocks[cid]
        except KeyError:
            raise BlockNotFoundError(cid) from None

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``."""
        blocks = self._blocks
        return {cid: blocks[cid] for cid in cids if cid in blocks}

    def put(self, cid: CID, block: bytes) -> None:
        """Store a block under its CID."""
        self._blocks[cid] = block

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store many blocks."""
        self._blocks.update(blocks)

    def has(self, cid: CID) -> bool:
        """Return whether the block is held."""
        return cid in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[CID]:
        return iter(self._blocks)


class ChainedBlockStore:
    """A read-only block store that asks each store in turn for what the earlier ones lacked."""

    __slots__ = ("stores",)

    def __init__(self, *stores: BlockStore) -> None:
        self.stores = stores

    def get(self, cid: CID) -> bytes:
        """Return the block from the first store that holds it.

        Raises:
            BlockNotFoundError: no store holds it.
        """
        for store in self.stores:
            try:
                return store.get(cid)
            except BlockNotFoundError:
                continue
        raise BlockNotFoundError(cid)

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        """Return the blocks held among ``cids``, asking each store only for what is still missing."""
        rest, found = list(cids), {}
        for store in self.stores:
            if not rest:
                break
            found.update(store.get_many(rest))
            rest = [c for c in rest if c not in found]
        return found

    def put(self, cid: CID, block: bytes) -> None:
        """Refuse: the chain is read-only."""
        raise NotImplementedError("a ChainedBlockStore is read-only")

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Refuse: the chain is read-only."""
        raise NotImplementedError("a ChainedBlockStore is read-only")

    def has(self, cid: CID) -> bool:
        """Return whether any store holds the block."""
        return any(store.has(cid) for store in self.stores)
