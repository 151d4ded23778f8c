"""Compaction: a replica drops the history under a commit it trusts, and keeps merging as before.

:meth:`Database.compact <orbit.databases.Database.compact>` checks the commit under a trust mode
(``replay``: signed by a writer and its root recomputed from the history, :meth:`verify_commit
<orbit.databases.Database.verify_commit>`; ``writer``; ``quorum:k``), reads the store's state at its
heads from the commit's trees (:func:`orbit.state.bootstrap.bootstrap`: the trees' roots are checked
against the commit), finds the log's entries under its heads, and hands them to the stored log's
:class:`Compactor`, which drops them in one transaction and keeps their CIDs and clock times: what a
later join needs to tell an old entry (already in the state) from a concurrent one, without the
network (see :mod:`ipfs_log.frontier`). The state, its root and the log's count do not change.

What the replica can no longer do is stated by :attr:`Compaction.gives_up`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.frontier import ancestors
from ipfs_log.frozen import Frozen, frozen_init
from ipfs_log.log import Log
from orbit.errors import CommitError, DatabaseError
from orbit.state.bootstrap import bootstrap, trusted_commit
from orbit.state.commits import Commit
from orbit.storage.frontiers import FrontierRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from orbit.address import Manifest
    from stores.base import Store

__all__ = ["GIVES_UP", "Compactable", "Compaction", "Compactor", "compact", "compaction_of"]

GIVES_UP: Final = (
    "verify_commit of a commit at or before the frontier: the entries under it are not here "
    "(nor on the IPFS node, unless it kept them)",
    "export_car writes the entries after the frontier only: a full-history copy comes from a replica "
    "that kept them",
    "peers that open or replay the database with this replica as their only source: the history "
    "under the frontier is not served from here",
)
"""What a compacted replica can no longer prove or serve (:attr:`Compaction.gives_up`)."""


class Compactor(Protocol):
    """The stored log's side of a compaction (:class:`orbit.storage.compaction.LogCompactor`)."""

    def record(self) -> FrontierRecord | None:
        """Return the log's frontier record, if it has one."""

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
        """Drop ``dropped`` in one transaction (``keep``'s blocks stay) and start ``log`` at ``heads``."""


class Compactable(Protocol):
    """What compaction needs of a database (:class:`orbit.databases.Database`)."""

    @property
    def address(self) -> str:
        """The database's address."""

    @property
    def manifest(self) -> Manifest:
        """The database's manifest (its write list)."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The directory's lock."""

    @property
    def store(self) -> Store:
        """The database's store (its log and checkpoint)."""

    @property
    def log(self) -> Log:
        """The database's log."""

    @property
    def compactor(self) -> Compactor | None:
        """The stored log's side of a compaction."""

    def check_open(self) -> None:
        """Raise if the database is closed."""

    def verify_commit(self, commit: Commit | bytes) -> Commit:
        """Check a commit by recomputing its root from the history."""


class Compaction(Frozen):
    """Where a compacted database's log starts, and what it dropped (:attr:`Database.compacted`)."""

    __match_args__ = ("commit", "dropped", "kept")
    __slots__ = __match_args__
    commit: Commit
    """The commit the log starts at: its heads are kept, the entries under them are not."""
    dropped: int
    """Entries dropped here by compactions (their CIDs and clock times are kept)."""
    kept: int
    """Entries the log holds: the commit's heads and the entries not under them."""

    def __init__(self, commit: Commit, dropped: int, kept: int) -> None:
        frozen_init(self, commit, dropped, kept)

    @property
    def gives_up(self) -> tuple[str, ...]:
        """What the replica can no longer prove or serve since it dropped the history (:data:`GIVES_UP`)."""
        return GIVES_UP


def compaction_of(db: Compactable) -> Compaction | None:
    """Return what compactions of ``db`` did, from its stored record (None: never compacted).

    Raises:
        StorageCorruptError: the record is malformed.
    """
    compactor = db.compactor
    record = None if compactor is None else compactor.record()
    if record is None or record.dropped is None:
        return None
    return Compaction(Commit.from_block(record.commit, address=db.address), record.dropped, len(db.log))


def _check_start(db: Compactable) -> None:
    """Refuse a log started at a snapshot: what lies under its start is not known here."""
    start = db.log.frontier
    if start is not None and not start.complete:
        raise DatabaseError(
            f"{db.address} was opened from a snapshot: the history under it is not known here, so "
            "what a commit drops cannot be listed (compact a replica that holds it)"
        )


def compact(
    db: Compactable,
    commits: Commit | bytes | Sequence[Commit | bytes],
    *,
    trust: str,
    source: BlockStore,
    store: type[Store],
    options: dict[str, Any],
) -> Compaction:
    """Compact ``db`` at the commit ``commits`` give under ``trust`` (see the module's text).

    Args:
        db: the database (its compactor set).
        commits: a commit, its block, or several (for ``quorum:k``).
        trust: ``replay``, ``writer`` or ``quorum:k``.
        source: where the commit's tree blocks come from (this directory, then the IPFS node).
        store: the database's store class.
        options: the store's options that shape its state.

    Raises:
        CommitError: no commit meets ``trust``; its heads are not all held here, its count is not
            the entries under them here, or it does not cover where the log starts now.
        StateError: ``trust`` is unknown, or the store type has no state to start from (eventlog,
            table).
        DatabaseError: the log started at a snapshot whose history is not known here.
        TreeNodeError, BlockNotFoundError, EntryRejectedError: the commit's trees are not to be had
            or not what it names.
        BlockStoreError: the transaction failed: nothing changed.
    """
    compactor = db.compactor
    if compactor is None:
        raise DatabaseError(f"{db.address} is not stored in a directory: nothing to compact")
    items: list[Commit | bytes] = (
        list(commits) if isinstance(commits, list | tuple) else [commits]  # type: ignore[list-item]
    )
    blocks = [c.block if isinstance(c, Commit) else bytes(c) for c in items]
    writers: list[bytes | str] = ["*"] if db.manifest.write == "*" else list(db.manifest.write)
    commit = trusted_commit(
        blocks, address=db.address, writers=writers, trust="writer" if trust == "replay" else trust
    )
    if trust == "replay":
        db.verify_commit(commit)  # its root recomputed from every entry under its heads
    log = db.log
    _check_start(db)
    held = [h for h in commit.heads if h in log]
    start = log.frontier
    if start is not None and any(start.is_under(h) for h in commit.heads):
        raise CommitError("the commit is before where the log starts now", commit.cid)
    if len(held) != len(commit.heads) or not held:
        raise CommitError(
            f"{len(commit.heads) - len(held)} of the commit's heads are not held here", commit.cid
        )
    boot = bootstrap(commit, source, store, identity=log.identity, access=db.manifest.access, options=options)
    with db.lock:
        db.check_open()
        heads = [log.get(h) for h in commit.heads]
        start = log.frontier
        _check_start(db)
        dropped = ancestors(log.iter(reverse=True), heads)
        count = len(dropped) + len(heads)
        if start is not None:
            if any(h not in dropped and h not in commit.heads for h in start.heads):
                raise CommitError("the commit is not at or after where the log starts now", commit.cid)
            count += start.count - len(start.heads)
        if count != commit.count:
            raise CommitError(
                f"{count} entries at its heads here, the commit says {commit.count}", commit.cid
            )
        kept = compactor.rewrite(
            log,
            commit=commit.block,
            heads=heads,
            count=commit.count,
            dropped=dropped,
            at_commit=boot.checkpoint,
            state=db.store.checkpoint(),
            keep=boot.winners,  # a later compaction, or a peer's snapshot open, reads them
        )
        record = compactor.record()
        total = len(dropped) if record is None or record.dropped is None else record.dropped
        return Compaction(commit, total, kept)
