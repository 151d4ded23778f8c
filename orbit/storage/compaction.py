"""The storage side of a compaction: one transaction that drops a log's history under a commit.

:meth:`LogCompactor.rewrite` removes the dropped entries' blocks, order records and CID pointers, keeps
their CIDs and clock times (``under``), numbers the kept entries again, and writes the index checkpoint
and the frontier record (:mod:`orbit.storage.frontiers`), all in one LMDB transaction that also applies
the write-behind journal's pending records. Only once it committed does the log take up its new start
(:meth:`ipfs_log.Log.compacted`): durable before visible; a failed transaction leaves memory and disk
as they were.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.frontier import Frontier
from ipfs_log.log import Log
from orbit.storage.blocks import LocalBlockStore
from orbit.storage.checkpoints import Checkpoints
from orbit.storage.frontiers import FrontierRecord, FrontierRecords
from orbit.storage.logs import LogRecords
from orbit.storage.stored_log import reread

__all__ = ["LogCompactor"]


class LogCompactor:
    """Compacts one stored log (a database's), given the directory's storage and the log's id."""

    def __init__(
        self,
        local: LocalBlockStore,
        records: LogRecords,
        checkpoints: Checkpoints,
        frontiers: FrontierRecords,
        log_id: str,
    ) -> None:
        self.local = local
        self.records = records
        self.checkpoints = checkpoints
        self.frontiers = frontiers
        self.log_id = log_id

    def record(self) -> FrontierRecord | None:
        """Return the log's frontier record (``dropped`` is set once it was compacted), if any.

        Raises:
            StorageCorruptError: the record is malformed.
            BlockStoreError: the store cannot be read.
        """
        lognum = self.records.number(self.log_id, create=False)
        return None if lognum is None else self.frontiers.load(lognum)

    def rewrite(
        self,
        log: Log,
        *,
        commit: bytes,
        heads: Sequence[Entry],
        count: int,
        dropped: Mapping[CID, int],
        at_commit: IPLDKind,
        state: IPLDKind,
        keep: Collection[CID] = (),
    ) -> int:
        """Drop ``dropped`` (CID → time) from the stored log, then start ``log`` at the commit's ``heads``.

        Args:
            log: the stored log (its lock held by the caller).
            commit: the commit's block (kept in the frontier record).
            heads: the commit's heads, held by the log.
            count: the commit's count (entries under and at its heads).
            dropped: the log's entries under ``heads``.
            at_commit: the store's checkpoint at ``heads`` (for a reopen whose checkpoint is lost).
            state: the store's checkpoint now (its index does not change).
            keep: dropped entries whose blocks stay in the block store (the winning entries the
                commit's winners tree names: what a later compaction or a peer's snapshot open reads).

        Returns:
            How many entries the log holds afterwards.

        Raises:
            StorageCorruptError: a dropped entry is not stored in the log.
            BlockStoreError: the transaction failed: nothing changed, on disk or in memory.
        """
        records, log_id = self.records, self.log_id
        lognum = records.number(log_id, create=False)
        assert lognum is not None
        before = self.frontiers.load(lognum)
        earlier = 0 if before is None or before.dropped is None else before.dropped
        record = FrontierRecord(commit, at_commit, earlier + len(dropped))

        def also(txn: Any, kept: int) -> None:
            self.checkpoints.put(txn, lognum, self.checkpoints.seal(log_id, kept, state))
            self.frontiers.put(txn, lognum, record)

        kept = records.compact(lognum, dropped, {e.cid for e in heads}, also, keep)
        entries, order = reread(self.local, records, log_id)
        under = self.frontiers.under(lognum)
        log.compacted(Frontier(heads, count=count, under=under, complete=True), entries, order)
        return kept
