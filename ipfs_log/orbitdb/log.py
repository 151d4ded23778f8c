"""An OrbitDB v2 log: read, verify and append entries exactly as ``@orbitdb/core`` 4 does.

Order. OrbitDB sorts entries with ``LastWriteWins``: by ``clock.time``, then by ``clock.id`` (a string
comparison), and ``values()`` is the reverse of a traversal from the heads that always takes the greatest
entry found so far. Because every entry's time is ``1 + max(time of next)`` (checked here; OrbitDB's own
writers always do it), that traversal visits entries in exactly descending ``(time, clock.id)`` order, so
:meth:`OrbitLog.values` is the ascending sort. OrbitDB leaves a tie (one writer's two entries with the same
time, from two devices) unordered; orbit breaks it by CID bytes, so every replica agrees.

Appending. ``next`` is the heads in descending order; ``clock.time`` is ``1 + max(head times)``;
``refs`` are the ``references_count`` entries that follow the first ``len(heads)`` entries of that
descending traversal (OrbitDB's ``getReferences``; ``Database`` uses 16). Entries written with the same
keys, payloads and history are byte-equal to OrbitDB's.

Verification (stricter than OrbitDB's): every entry fetched is checked for hash, canonical encoding,
fields and types, log id, signature, an identity block whose two-key chain verifies, ``key ==
identity.publicKey``, write permission for ``identity.id``, and the clock rule. A join admits all the
new entries or none.

>>> from ipfs_log import MemoryBlockStore
>>> from ipfs_log.orbitdb.keys import SigningKey
>>> from ipfs_log.orbitdb.identity import OrbitWriter
>>> alice = OrbitWriter.from_keys(SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32))
>>> store = MemoryBlockStore()
>>> log = OrbitLog("/orbitdb/demo", store, writer=alice)
>>> first, second = log.append("a1"), log.append("a2")
>>> second.next == (first.hash,)
True
>>> replica = OrbitLog("/orbitdb/demo", store)
>>> [e.payload for e in replica.join_heads([second.cid])]
['a1', 'a2']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, Protocol

from ipfs_log.blockstore import BlockStore
from ipfs_log.cid import CID
from ipfs_log.clock import by_sort_key, check_clock_rule
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import DEFAULT_LIMITS, Limits
from ipfs_log.errors import (
    BlockNotFoundError,
    CodecError,
    EntryNotFoundError,
    IdentityError,
    InvalidIdentityError,
    PermissionDeniedError,
)
from ipfs_log.fetch import Progress
from ipfs_log.orbitdb.entry import OrbitEntry
from ipfs_log.orbitdb.hashes import hash_to_cid
from ipfs_log.orbitdb.identity import OrbitIdentity, OrbitWriter

__all__ = ["DEFAULT_REFERENCES_COUNT", "IdentityWriteList", "OrbitAccess", "OrbitLog", "Progress"]

DEFAULT_REFERENCES_COUNT: Final = 16
"""``refs`` per appended entry, as OrbitDB's ``Database`` writes them."""


class OrbitAccess(Protocol):
    """What a log asks before admitting an entry whose identity has been verified."""

    def can_write(self, identity: OrbitIdentity) -> bool:
        """Return whether the holder of ``identity`` may append to the log."""
        ...


class IdentityWriteList:
    """OrbitDB's ``ipfs`` access rule: identity ids (id keys, hex) allowed to write, or ``*``.

    >>> IdentityWriteList(["*"]).writers
    ('*',)
    """

    __slots__ = ("_anyone", "writers")

    def __init__(self, writers: Iterable[str]) -> None:
        self.writers: tuple[str, ...] = tuple(writers)
        self._anyone = "*" in self.writers

    def can_write(self, identity: OrbitIdentity) -> bool:
        """Return whether ``identity.id`` is on the list, or the list holds ``*``."""
        return self._anyone or identity.id in self.writers

    def __repr__(self) -> str:
        return f"IdentityWriteList({list(self.writers)!r})"


ANYONE: Final = IdentityWriteList(["*"])


class OrbitLog:
    """One OrbitDB v2 log, in memory, over a block store.

    Args:
        log_id: the log's id; for a database, its address (``/orbitdb/<manifest hash>``).
        store: where entry and identity blocks are read from and written to.
        writer: the identity that appends (None for a read-only replica).
        access: who may write; default anyone (OrbitDB's bare ``Log`` default).
        references_count: ``refs`` per appended entry.
        limits: bounds on entries read from outside.
    """

    def __init__(
        self,
        log_id: str,
        store: BlockStore,
        *,
        writer: OrbitWriter | None = None,
        access: OrbitAccess = ANYONE,
        references_count: int = DEFAULT_REFERENCES_COUNT,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.log_id = log_id
        self.store = store
        self.writer = writer
        self.access = access
        self.references_count = references_count
        self.limits = limits
        self._entries: dict[CID, OrbitEntry] = {}
        self._order: list[OrbitEntry] = []
        self._heads: set[CID] = set()
        self._referenced: set[CID] = set()
        self._identities: dict[CID, OrbitIdentity] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, cid: object) -> bool:
        if isinstance(cid, str):
            try:
                cid = hash_to_cid(cid)
            except CodecError:
                return False
        return cid in self._entries

    def __iter__(self) -> Iterator[OrbitEntry]:
        return iter(list(self._order))

    def __repr__(self) -> str:
        return f"OrbitLog({self.log_id!r}, {len(self)} entries, {len(self._heads)} heads)"

    @property
    def heads(self) -> list[OrbitEntry]:
        """The entries no other entry names in ``next``, newest first (OrbitDB's ``heads()`` order)."""
        return sorted((self._entries[c] for c in self._heads), key=by_sort_key, reverse=True)

    def values(self) -> list[OrbitEntry]:
        """Every entry, oldest first: OrbitDB's ``values()`` order."""
        return list(self._order)

    def traverse(self) -> Iterator[OrbitEntry]:
        """Every entry, newest first: OrbitDB's ``traverse()`` from the heads."""
        return reversed(list(self._order))

    def get(self, cid: CID | str) -> OrbitEntry:
        """Return the entry with this CID or hash.

        Raises:
            EntryNotFoundError: the log holds no such entry.
        """
        try:
            key = hash_to_cid(cid) if isinstance(cid, str) else cid
            return self._entries[key]
        except (CodecError, KeyError):
            raise EntryNotFoundError(cid) from None

    # ------------------------------------------------------------------ writing

    def append(self, payload: IPLDKind) -> OrbitEntry:
        """Sign a new entry on top of the heads, store it and its identity block, and admit it.

        Raises:
            IdentityError: the log has no writer.
            PermissionDeniedError: the access rule refuses the writer's identity.
            CodecError: the payload is not an IPLD value.
            EntryDecodeError: the payload is null.
        """
        writer = self.writer
        if writer is None:
            raise IdentityError(f"log {self.log_id!r} was opened without a writer")
        if not self.access.can_write(writer.identity):
            raise PermissionDeniedError(
                f"identity {writer.identity.id} may not write to {self.log_id!r}",
                None,
                bytes.fromhex(writer.identity.public_key),
            )
        heads = self.heads
        time = 1 + max((h.time for h in heads), default=0)
        order, n, count = self._order, len(heads), max(self.references_count, 0)
        end = len(order) - n
        refs = [e.hash for e in reversed(order[max(0, end - count) : max(0, end)])]
        entry = OrbitEntry.create(
            writer, self.log_id, payload, time=time, next=[h.hash for h in heads], refs=refs
        )
        self.store.put_many([(writer.identity.cid, writer.identity.block), (entry.cid, entry.block)])
        self._identities[writer.identity.cid] = writer.identity
        self._admit([entry])
        return entry

    # ------------------------------------------------------------------ reading

    def join_heads(
        self, heads: Iterable[CID | str | OrbitEntry], *, progress: Progress | None = None
    ) -> list[OrbitEntry]:
        """Fetch, verify and admit the entries reachable from ``heads`` that the log lacks.

        Heads may be CIDs, hashes (base58btc strings) or entries. Blocks are asked for a frontier at a
        time (``next`` and ``refs`` of the last batch). Every new entry must pass every check before any
        is admitted.

        Returns:
            The newly admitted entries, oldest first.

        Raises:
            BlockNotFoundError: an entry or identity block is not in the store (nothing is admitted).
            EntryRejectedError: an entry failed a check; its subclass says which (nothing is admitted).
            CodecError: a head is not a well-formed hash.
        """
        entries = self._entries
        frontier = {_head_cid(h) for h in heads} - entries.keys()
        new: dict[CID, OrbitEntry] = {}
        while frontier:
            blocks = self.store.get_many(frontier)
            missing = frontier - blocks.keys()
            if missing:
                first = min(missing)
                raise BlockNotFoundError(first, f"entry block not found: {first} ({len(missing)} missing)")
            batch = [
                OrbitEntry.from_block(cid, blocks[cid], log_id=self.log_id, limits=self.limits)
                for cid in sorted(frontier)
            ]
            self._check_writers(batch)
            next_frontier: set[CID] = set()
            for entry in batch:
                new[entry.cid] = entry
                next_frontier.update(entry.next_cids)
                next_frontier.update(entry.refs_cids)
            if progress is not None:
                progress(len(new))
            frontier = next_frontier - entries.keys() - new.keys()
        for entry in new.values():
            check_clock_rule(
                entry.time, [(new.get(c) or entries[c]).time for c in entry.next_cids], entry.cid
            )
        admitted = sorted(new.values(), key=by_sort_key)
        self._admit(admitted)
        return admitted

    def _check_writers(self, batch: list[OrbitEntry]) -> None:
        """Fetch and verify the identities of ``batch``; check key binding and permission."""
        known = self._identities
        wanted = {e.identity_cid for e in batch} - known.keys()
        if wanted:
            blocks = self.store.get_many(wanted)
            for entry in batch:
                cid = entry.identity_cid
                if cid in known:
                    continue
                block = blocks.get(cid)
                if block is None:
                    raise BlockNotFoundError(
                        cid, f"identity block not found: {entry.identity} (named by entry {entry.hash})"
                    )
                try:
                    known[cid] = OrbitIdentity.from_block(cid, block)
                except IdentityError as e:
                    raise InvalidIdentityError(str(e), entry.cid, entry.identity) from e
        for entry in batch:
            identity = known[entry.identity_cid]
            entry.check_identity(identity)
            if not self.access.can_write(identity):
                raise PermissionDeniedError(
                    f"identity {identity.id} may not write to {self.log_id!r}",
                    entry.cid,
                    bytes.fromhex(entry.key),
                )

    def _admit(self, entries: list[OrbitEntry]) -> None:
        store, heads, referenced = self._entries, self._heads, self._referenced
        for entry in entries:
            store[entry.cid] = entry
            for parent in entry.next_cids:
                heads.discard(parent)
                referenced.add(parent)
            if entry.cid not in referenced:
                heads.add(entry.cid)
        order = self._order
        tail = order[-1].sort_key if order else None
        order.extend(entries)
        if len(entries) > 1 or (tail is not None and entries and entries[0].sort_key < tail):
            order.sort(key=by_sort_key)


def _head_cid(head: CID | str | OrbitEntry) -> CID:
    if isinstance(head, OrbitEntry):
        return head.cid
    return hash_to_cid(head) if isinstance(head, str) else head
