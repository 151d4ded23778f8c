"""The newest commit of each writer of a database that this replica has checked: a bounded record.

Replicas announce their newest commit (:mod:`orbit.replication.wire`); a receiver checks each one
(canonical, signed by its key, the key in the write list, about this database) and keeps, per writer,
the one with the most entries (``count``). The record is what a :class:`~orbit.state.Snapshot` can be
given (``trust="writer"`` or ``"quorum:k"``); it is never used as state, and a commit in it is only a
writer's claim until something recomputes its root (``Database.verify_commit``).

Beside each commit it keeps the state pack a peer named with it (a transport hint, untrusted: see
:mod:`orbit.replication.wire`), for a newcomer to open from (:meth:`LatestCommits.pack_of`).

It holds at most one commit per writer, so at most as many as the write list names, however many peers
announce; with ``"*"`` (anyone may write) at most :data:`MAX_RECORDED`, the least recently updated
forgotten first.

>>> from ipfs_log import Identity
>>> from orbit.state.nodes import EMPTY_ROOT
>>> alice = Identity.from_seed(b"a" * 32)
>>> record = LatestCommits("/orbitdb/x", [alice.public_key])
>>> first = Commit.create(alice, "/orbitdb/x", [], EMPTY_ROOT, 0)
>>> record.note(first.block) == first, len(record)
(True, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

from ipfs_log.cid import CID
from orbit.state.commits import Commit

__all__ = ["MAX_RECORDED", "LatestCommits"]

MAX_RECORDED: Final = 64
"""Most writers recorded when the write list is ``"*"``."""


class LatestCommits:
    """The newest checked commit per writer of one database (see the module's text).

    Not thread-safe: its owner guards it (a database, under its lock).

    Args:
        address: the database the commits must be about.
        writers: its write list (public keys or ``did:key``; ``"*"`` for anyone).
    """

    def __init__(self, address: str, writers: Iterable[bytes | str]) -> None:
        self.address = address
        self.writers = list(writers)
        self.limit = MAX_RECORDED if "*" in self.writers else max(1, len(self.writers))
        """Most commits held: one per writer."""
        self._newest: OrderedDict[bytes, Commit] = OrderedDict()  # key -> commit, least recent first
        self._packs: dict[bytes, CID] = {}  # key -> the state pack named with its commit

    def note(self, block: bytes, pack: CID | None = None) -> Commit:
        """Check a commit from anywhere and keep it if it is its writer's newest (the most entries).

        Args:
            block: the commit's block.
            pack: the state pack named with it (an untrusted hint), kept beside it.

        Returns:
            The checked commit (kept or not).

        Raises:
            CommitError: the block is malformed, forged, not by a writer, or about another database;
                nothing is recorded.
        """
        commit = Commit.from_block(block, writers=self.writers, address=self.address)
        self.keep(commit, pack)
        return commit

    def keep(self, commit: Commit, pack: CID | None = None) -> bool:
        """Keep a commit already checked (e.g. one this replica signed); return whether it is kept.

        It replaces its writer's commit only if it counts more entries; past :attr:`limit` writers,
        the least recently updated is forgotten. ``pack`` (a state pack hint) is kept beside it, and
        also given to the very commit held already.
        """
        held = self._newest.get(commit.key)
        if held is not None and held.count >= commit.count:
            if pack is not None and held.cid == commit.cid:
                self._packs[commit.key] = pack
            return False
        self._newest[commit.key] = commit
        self._newest.move_to_end(commit.key)
        if pack is None:
            self._packs.pop(commit.key, None)
        else:
            self._packs[commit.key] = pack
        while len(self._newest) > self.limit:
            key, _ = self._newest.popitem(last=False)
            self._packs.pop(key, None)
        return True

    def pack_of(self, commit: Commit) -> CID | None:
        """Return the state pack named with ``commit``, if it is held here with one (an untrusted hint)."""
        held = self._newest.get(commit.key)
        return self._packs.get(commit.key) if held is not None and held.cid == commit.cid else None

    def commits(self) -> list[Commit]:
        """Return the newest commit of each writer recorded, ordered by the writer's key."""
        return [self._newest[key] for key in sorted(self._newest)]

    def __len__(self) -> int:
        return len(self._newest)
