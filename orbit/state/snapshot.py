"""Reading a database's state from signed commits alone: state-sized, not history-sized.

A :class:`Snapshot` accepts a root only from commits that meet its **trust mode**, then reads through an
untrusted block source (an IPFS node, another replica's store), checking every node and value block
as it arrives:

- ``writer``: one commit signed by any key of the write list is enough;
- ``quorum:k``: ``k`` commits by distinct writers must name the same root, heads and count.

(The third mode, ``replay`` — verify every entry, today's default for opening a database — is what a
database does when it joins a log, and what :meth:`orbit.databases.Database.verify_commit` does to a
commit; a snapshot trusts its writers instead.) What a commit proves is who vouched for the root: a
writer (or ``k`` of them) who signs a root that is not the state at those heads can mislead a snapshot,
never a replica that replays; the commit names its heads and count, so anyone holding the log can catch
it.

:meth:`Snapshot.get` fetches one key's path (O(log n) nodes) and, for a value held as a digest, its
block; :meth:`Snapshot.bootstrap` fetches the whole tree (every node checked once), after which reads of
values held inline need no source.

>>> from ipfs_log import Identity
>>> from orbit.state.tree import StateTree
>>> from orbit.state.values import value_bytes
>>> alice = Identity.from_seed(b"a" * 32)
>>> tree = StateTree()
>>> tree.put(b"k", value_bytes(42))  # inline
>>> commit = Commit.create(alice, "/orbitdb/x", [], tree.root(), 1)
>>> snap = Snapshot(tree.store, address="/orbitdb/x", writers=[alice.public_key])
>>> _ = snap.accept([commit.block])
>>> snap.get(b"k"), snap.get(b"absent")
(42, None)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode
from ipfs_log.gc import gc_paused
from orbit.car import read_car
from orbit.errors import CommitError, StateError
from orbit.state.commits import Commit
from orbit.state.nodes import EMPTY_ROOT
from orbit.state.partial import PartialReplica
from orbit.state.tree import MemoryNodes, NodeStore, StateTree
from orbit.state.values import DIGEST_BYTES, value_from_block

__all__ = ["TRUST_MODES", "Snapshot", "parse_trust"]

TRUST_MODES: Final = ("replay", "writer", "quorum:k")
"""The trust modes, as documented in the module's text."""


def parse_trust(trust: str) -> int:
    """Return how many distinct writers must sign a root under ``trust`` (``writer`` or ``quorum:k``).

    Raises:
        StateError: not a trust mode a snapshot can use (``replay`` needs the history).

    >>> parse_trust("writer"), parse_trust("quorum:3")
    (1, 3)
    """
    if trust == "writer":
        return 1
    if trust.startswith("quorum:") and trust[7:].isdigit() and int(trust[7:]) >= 1:
        return int(trust[7:])
    raise StateError(f"a snapshot trusts 'writer' or 'quorum:k' (k >= 1), not {trust!r}")


class Snapshot:
    """A database's state read from commits and an untrusted block source.

    Args:
        source: where tree nodes and value blocks come from (every one is checked).
        address: the database the commits must be about.
        writers: the database's write list (public keys or ``did:key``; ``"*"`` for anyone).
        trust: ``"writer"`` or ``"quorum:k"`` (see the module's text).

    Raises:
        StateError: ``trust`` is not one of those.
    """

    def __init__(
        self, source: NodeStore, *, address: str, writers: Iterable[bytes | str], trust: str = "writer"
    ) -> None:
        self.quorum = parse_trust(trust)
        self.address = address
        self.writers = list(writers)
        self.commit: Commit | None = None
        """The newest commit accepted (with :attr:`commits`, those that vouched for its root)."""
        self.commits: tuple[Commit, ...] = ()
        self._replica = PartialReplica(source, None, None)  # holds what was fetched, counts it
        self._tree: StateTree | None = None
        self._items: list[tuple[bytes, bytes]] = []

    @classmethod
    def from_car(cls, data: bytes, *, writers: Iterable[bytes | str], trust: str = "writer") -> Snapshot:
        """Open the state a CAR file carries (``db.export_car(path, state=True)``), under ``trust``.

        The file is untrusted: its commits are checked against ``writers``, its nodes as they are read.

        Raises:
            CarError: the bytes are not a well-formed CARv1 file.
            CommitError: no commit among the file's roots meets the trust mode.
            StateError: ``trust`` is not a snapshot's trust mode.
        """
        roots, blocks = read_car(data)
        source = MemoryNodes()
        source.blocks.update(blocks)
        commits = [blocks[r] for r in roots if r in blocks]
        address = None
        for block in commits:  # the database is the one its commits name (checked again by accept)
            try:
                address = Commit.from_block(block).address
                break
            except CommitError:
                continue
        if address is None:
            raise CommitError("the CAR file's roots hold no commit")
        snapshot = cls(source, address=address, writers=writers, trust=trust)
        snapshot.accept(commits)
        return snapshot

    @property
    def root(self) -> CID:
        """The root accepted (the empty tree's before any)."""
        return EMPTY_ROOT if self.commit is None else self.commit.root

    @property
    def fetched_bytes(self) -> int:
        """The bytes of every block fetched from the source so far."""
        return self._replica.fetched_bytes

    def accept(self, commits: Iterable[bytes]) -> Commit:
        """Move to the newest root that commits among ``commits`` vouch for under the trust mode.

        Each commit is checked (canonical, signed by its key, the key in the write list, about this
        database); commits that fail are skipped. Commits vouch together when they name the same root,
        heads and count; the group with the most entries (``count``) that has enough distinct signers
        wins.

        Returns:
            The newest accepted commit.

        Raises:
            CommitError: no group of commits meets the trust mode (the snapshot stays where it was).
        """
        groups: dict[tuple[CID, tuple[CID, ...], int], dict[bytes, Commit]] = {}
        refused: list[CommitError] = []
        for block in commits:
            try:
                commit = Commit.from_block(block, writers=self.writers, address=self.address)
            except CommitError as e:
                refused.append(e)
                continue
            groups.setdefault((commit.root, commit.heads, commit.count), {})[commit.key] = commit
        trusted = [signed for signed in groups.values() if len(signed) >= self.quorum]
        if not trusted:
            raise CommitError(
                f"no root is vouched for by {self.quorum} writer(s) ({len(groups)} roots seen, "
                f"{len(refused)} commits refused{f': {refused[0]}' if refused else ''})"
            )
        best = max(trusted, key=lambda signed: next(iter(signed.values())).count)
        chosen = sorted(best.values(), key=lambda c: c.key)
        if self.commit is not None and chosen[0].count < self.commit.count:
            raise CommitError(f"the commits vouch for {chosen[0].count} entries, fewer than already accepted")
        self.commit, self.commits = chosen[0], tuple(chosen)
        return chosen[0]

    def bootstrap(self) -> int:
        """Fetch (and check) every node of the accepted tree; return how many items it holds.

        Raises:
            TreeNodeError: a node from the source breaks the rules.
            BlockNotFoundError: the source lacks a node.
        """
        self._tree = StateTree(self._replica, self.root)  # each node fetched and checked once
        with gc_paused():  # a node object per block, no cycles
            self._items = list(self._tree.items())
        return len(self._items)

    def get(self, key: bytes | str) -> IPLDKind:
        """Return the value under ``key`` at the accepted root, or None if absent.

        Raises:
            TreeNodeError: a node or value block from the source is not what the tree names.
            BlockNotFoundError: the source lacks a node or the value's block.
        """
        tree_key = key.encode() if isinstance(key, str) else key
        tree = self._tree if self._tree is not None and self._tree.root() == self.root else None
        held = (tree or StateTree(self._replica, self.root)).get(tree_key)
        if held is None:
            return None
        if len(held) < DIGEST_BYTES:
            return decode(held)
        cid = CID.for_digest(held)
        return value_from_block(cid, self._replica.get(cid))

    def items(self) -> list[tuple[bytes, bytes]]:
        """Return the tree's items (keys and what the tree holds) as of the last :meth:`bootstrap`."""
        return list(self._items)
