"""What ``OrbitDB(directory, ipfs=…)`` does with an IPFS node: uploads, pins, heads, open by address.

- **Writes** stay local-first: every batch of entries a database commits is first recorded in the
  upload journal (:class:`~orbit.ipfs.uploads.CachedBlockStore`), then committed to the local
  store, and uploaded by a background thread; a write is acknowledged once it is durable locally, and
  what could not reach the node yet is retried, never lost.
- **Pins**: each database's manifest and heads are pinned recursively on the node (one pin per head
  keeps the whole log: ``next`` and ``refs`` are IPLD links), moved as the heads change, once the
  uploads they need have gone through.
- **Heads on the node**: after pinning, the heads are written to the node's MFS at
  ``/orbit/<manifest CID>`` (a DAG-CBOR record ``{v: 1, address, heads: [CID…], packs: [...]}``), so
  another directory (or machine) using the same node can open the database by address. The record
  only says where to start: every entry fetched from the node is verified as usual.
- **Packs**: the database's history is also kept as a few CAR files on the node
  (:mod:`orbit.ipfs.packs`), which a reader streams instead of walking the DAG block by block.
- **Commits and their trees**: each commit a database signs (:meth:`NodeLink.state_sink`) goes to the
  node the way entries do (journaled, then uploaded by the uploading thread): the state tree's new
  nodes and value blocks, and the commit block. The newest commit's tree is pinned recursively under
  the pin name ``<address>/state`` (moved as commits follow each other; a commit itself is not pinned
  recursively, since through ``prev`` that would pin every earlier tree), and the commit's bytes are
  kept in MFS at ``/orbit/<manifest CID>.commit`` (:meth:`NodeLink.commit_of`), so a light client that
  knows only the address finds the newest commit, and fetches the O(log n) tree blocks of a read from
  the node. The first commit of a session whose tree was opened from an earlier one uploads that whole
  tree once (it may have been written while the node was away), unless the journal shows the node
  has it pinned already.
- **State packs**: once the newest commit's tree is on the node, the uploading thread also adds one CAR
  file (pinned) of what a newcomer opening from that commit reads (:func:`state_pack_blocks`: the
  commit, the manifest, the heads, every node of its trees, the value blocks and winning entries they
  name), so the newcomer fetches the state with one ``cat`` rather than a ``block/get`` per block
  (:meth:`NodeLink.state_pack_of` names it, announcements carry it as a hint, and so does MFS, at
  ``/orbit/<manifest CID>.state``, for a newcomer that knows only the address:
  :meth:`NodeLink.state_pack_on_node`). Only the newest commit
  gets one, one at a time: commits signed while a pack is written are coalesced into the next (the
  pin journal keeps only a name's newest tree), and the pack it replaces is unpinned.
- **Open by address** from a directory that lacks the database: the manifest is fetched from the node
  (hash-checked), then the log from the recorded heads — in bulk from the packs (``cat``; without
  packs, ``dag/export``; the CARs' blocks are hash-checked) and block by block for whatever they lack
  — every entry verified by the log, with the progress callback.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from ipfs_log.blockstore import BlockStore, ChainedBlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError, CodecError, OrbitError
from ipfs_log.fetch import Progress
from ipfs_log.storage import LogStorage
from orbit.car import read_car, write_car
from orbit.errors import CarError, DatabaseClosedError, IpfsError, IpfsResponseError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.ipfs.packs import MAX_PACK_BYTES, MAX_PACKS, Pack, cuts, plan
from orbit.ipfs.uploads import CachedBlockStore
from orbit.state import Commit
from orbit.state.nodes import EMPTY_NODE, EMPTY_ROOT
from orbit.state.tree import tree_blocks
from orbit.storage.blocks import LocalBlockStore

History = Callable[[int], Sequence[Entry]]
"""The entries a database admitted as number ``n`` or later, in admission order."""


@dataclass(frozen=True, slots=True)
class StatePack:
    """A state pack on the node: the UnixFS file ``cid`` holding what opening from ``commit`` reads."""

    commit: CID
    cid: CID


def state_pack_blocks(
    store: BlockStore, commit: Commit, manifest: tuple[CID, bytes]
) -> Iterator[tuple[CID, bytes]]:
    """Yield, once each, the blocks a newcomer opening from ``commit`` reads, from ``store``.

    The commit block, the manifest, the heads' entries, and every node of the tree the open reads with
    the blocks its values name by digest that ``store`` holds: the winners tree and the winning entries
    (keyvalue, documents: the state and index trees are rebuilt from those, not read), else the state
    tree and its value blocks (counter).

    Raises:
        BlockNotFoundError: ``store`` lacks a head or a tree node.
    """
    seen: set[CID] = set()

    def fresh(items: Iterable[tuple[CID, bytes]]) -> Iterator[tuple[CID, bytes]]:
        for cid, block in items:
            if cid not in seen:
                seen.add(cid)
                yield cid, block

    yield from fresh([(commit.cid, commit.block), manifest])
    yield from fresh((h, store.get(h)) for h in commit.heads)
    yield from fresh(tree_blocks(store, commit.root if commit.winners is None else commit.winners))


@dataclass(frozen=True, slots=True)
class HeadsRecord:
    """What the node records of a database: its heads and the packs of its history."""

    heads: list[CID]
    packs: list[Pack]


class LinkedDatabase(Protocol):
    """What :meth:`NodeLink.attach` needs of a database (e.g. :class:`orbit.databases.Database`)."""

    @property
    def address(self) -> str:
        """The database's address."""

    @property
    def manifest(self) -> Any:
        """Its manifest (``cid`` and ``block``)."""

    def heads(self) -> list[CID]:
        """Its heads."""

    def entry_count(self) -> int:
        """How many entries its log holds."""

    def holds(self, heads: Iterable[CID]) -> bool:
        """Whether its log holds every one of ``heads``."""

    def join_heads(
        self, heads: Iterable[CID], *, source: Any = None, progress: Progress | None = None
    ) -> list[Entry]:
        """Fetch, verify and admit what is reachable from ``heads``."""


__all__ = [
    "HEADS_DIR",
    "MAX_EXPORT_BYTES",
    "STATE_PINS",
    "NodeLink",
    "StatePack",
    "StateUploads",
    "state_pack_blocks",
]

HEADS_DIR: Final = "/orbit"
"""The MFS directory where each database's heads are recorded, one file per manifest CID (and its newest
commit, in ``<manifest CID>.commit``, and the state pack of that commit, in ``<manifest CID>.state``)."""
STATE_PINS: Final = "/state"
"""The suffix of the pin name (after the address) under which a database's newest state tree is pinned."""
MAX_EXPORT_BYTES: Final = 256 << 20
"""Largest ``dag/export`` read into memory when opening from the node; bigger logs go block by block."""
_MAX_HEADS: Final = 256
_MAX_SERVED: Final = 1 << 16

_log = logging.getLogger(__name__)


class _Served:
    """The CIDs the node served lately (bounded): blocks that need no upload back to it."""

    def __init__(self, limit: int = _MAX_SERVED) -> None:
        self._cids: OrderedDict[CID, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()  # fetching threads add, committing threads take

    def add(self, cids: Iterable[CID]) -> None:
        """Remember ``cids`` as served (the oldest are forgotten past the limit)."""
        with self._lock:
            for cid in cids:
                self._cids[cid] = None
            while len(self._cids) > self._limit:
                self._cids.popitem(last=False)

    def take(self, cid: CID) -> bool:
        """Return True, once, if the node served ``cid``."""
        with self._lock:
            return self._cids.pop(cid, False) is None


class _RecordingSource:
    """A block store that reads from the node and remembers what it served (see :class:`_Served`)."""

    def __init__(self, inner: IpfsBlockStore, served: _Served) -> None:
        self._inner = inner
        self._served = served

    def get(self, cid: CID) -> bytes:
        block = self._inner.get(cid)
        self._served.add([cid])
        return block

    def get_many(self, cids: Iterable[CID]) -> dict[CID, bytes]:
        blocks = self._inner.get_many(cids)
        self._served.add(blocks)
        return blocks

    def has(self, cid: CID) -> bool:
        return self._inner.has(cid)

    def put(self, cid: CID, block: bytes) -> None:
        self._inner.put(cid, block)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._inner.put_many(blocks)


class _UploadingStorage:
    """A log's storage that journals the entries for upload before the local commit, then asks for pins.

    Entries the node itself served (fetched through :attr:`NodeLink.source`) are not uploaded back.
    """

    def __init__(self, inner: LogStorage, link: NodeLink, address: str, manifest: CID) -> None:
        self.inner = inner
        self.link = link
        self.address = address
        self.manifest = manifest

    def commit(self, entries: Sequence[Entry], heads: Sequence[CID], first: int) -> None:
        served = self.link.served
        self.link.uploads.queue_upload((e.cid, e.block) for e in entries if not served.take(e.cid))
        self.inner.commit(entries, heads, first)
        try:  # the write is durable now: a failure from here on must not undo it
            self.link.uploads.pin(self.address, [self.manifest, *heads])
        except OrbitError as e:
            _log.warning("pins of %s not recorded (retried at the next write): %s", self.address, e)


class StateUploads:
    """A database's state sink (:meth:`NodeLink.state_sink`): its tree goes to the local store and the node.

    The database's tree writes its nodes through :meth:`put_many` (journaled for upload, then stored
    locally, as entries are) and tells :meth:`publish` of each commit it signs. Nothing here waits on
    the network: the uploading thread sends what was journaled.
    """

    def __init__(self, link: NodeLink, address: str, manifest: CID, local: BlockStore) -> None:
        self.link = link
        self.address = address
        self.manifest = manifest
        self.local = local

    def get(self, cid: CID) -> bytes:
        """Return a block from the local store.

        Raises:
            BlockNotFoundError: the local store lacks it.
        """
        return self.local.get(cid)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Journal blocks for upload, then store them locally.

        Raises:
            IpfsBlockTooLargeError: a block is over the node's limit (nothing is stored).
            BlockStoreError: the journal or the local store failed.
        """
        items = list(blocks)
        self.link.uploads.queue_upload(items)  # first: a crash after this can only cause an extra upload
        self.local.put_many(items)

    def publish(self, commit: Commit, base: CID | None) -> None:
        """Journal a commit (and, once per session, the tree under ``base``) and pin its tree on the node.

        Args:
            commit: a commit the database signed; its tree's nodes were written through
                :meth:`put_many` (or are under ``base``).
            base: the root the database's tree was opened from in this session, if any: its nodes may
                never have reached the node, so the whole tree goes, unless the node has ``base``
                pinned (as far as the journal knows) or wants it pinned (then it was journaled).

        Raises:
            IpfsBlockTooLargeError: a block is over the node's limit.
            BlockStoreError: the journal or the local store failed.
        """
        uploads = self.link.uploads
        name = self.address + STATE_PINS
        blocks: list[tuple[CID, bytes]] = [(commit.cid, commit.block)]
        if commit.root == EMPTY_ROOT:
            blocks.append((EMPTY_ROOT, EMPTY_NODE))
        on_node = [base] in (uploads.pinned(name), uploads.wanted(name))
        if base is not None and base != EMPTY_ROOT and not on_node:
            uploads.queue_upload(tree_blocks(self.local, commit.root))  # state-sized, once per session
        uploads.queue_upload(blocks)
        self.link.note_commit(self.address, self.manifest, commit)
        uploads.pin(name, [commit.root])


class NodeLink:
    """An OrbitDB directory's link to an IPFS node (see the module documentation).

    Args:
        directory: the OrbitDB directory (the upload journal lives there).
        local: the directory's local store.
        ipfs: a :class:`~orbit.ipfs.KuboClient`, or the node's API address.
        retry_interval: seconds between upload retries after a failure.
        close_timeout: how long :meth:`close` waits for pending uploads and pins.
        pin: pin each database's manifest and heads recursively (heads are recorded either way; js-ipfs
            walks a pinned DAG path by path, which takes very long on large skip-linked logs).

    Raises:
        IpfsAddressError: ``ipfs`` is an address that is not understood.
        BlockStoreError: the upload journal cannot be opened.
    """

    def __init__(
        self,
        directory: Path,
        local: LocalBlockStore,
        ipfs: KuboClient | str,
        *,
        retry_interval: float = 5.0,
        close_timeout: float = 2.0,
        pin: bool = True,
    ) -> None:
        self.pin = pin
        self._owns_client = not isinstance(ipfs, KuboClient)
        self.client = ipfs if isinstance(ipfs, KuboClient) else KuboClient(ipfs)
        self.store = IpfsBlockStore(self.client)
        self.served = _Served()
        self.source: BlockStore = _RecordingSource(self.store, self.served)
        """The node as a source of blocks for joins: what it serves is not uploaded back to it."""
        self.close_timeout = close_timeout
        self.uploads = CachedBlockStore(
            local, self.store, directory, retry_interval=retry_interval, announce=self._announce, pin=pin
        )
        self._histories: dict[str, tuple[History, Callable[[], int]]] = {}  # and the entry count
        self._packs: dict[str, list[Pack]] = {}
        self._packs_lock = threading.Lock()
        # Recorded heads an open could not fetch yet, per address, with the database's `holds`: they stay
        # in the record this replica writes until its log holds them, so a partial replica never
        # replaces the record of a longer history with its own older heads.
        self._beyond: dict[str, tuple[list[CID], Callable[[Iterable[CID]], bool]]] = {}
        self._closing = threading.Event()  # no new packs: closing holds the directory's lock
        self._commits: dict[str, tuple[CID, Commit]] = {}  # address -> (manifest, newest commit published)
        self._commits_lock = threading.Lock()
        self._state_packs: dict[str, StatePack] = {}  # address -> the newest commit's state pack
        self._locals: dict[str, BlockStore] = {}  # address -> where its trees are read for a state pack

    # -- heads records --------------------------------------------------------------------------------

    @staticmethod
    def heads_path(manifest: CID) -> str:
        """The MFS path of a database's heads record."""
        return f"{HEADS_DIR}/{manifest.encode('base58btc')}"

    @staticmethod
    def commit_path(manifest: CID) -> str:
        """The MFS path of a database's newest commit (its block's bytes)."""
        return f"{HEADS_DIR}/{manifest.encode('base58btc')}.commit"

    @staticmethod
    def state_pack_path(manifest: CID) -> str:
        """The MFS path naming a database's newest state pack: ``{v: 1, commit, pack}`` in DAG-CBOR."""
        return f"{HEADS_DIR}/{manifest.encode('base58btc')}.state"

    def state_sink(self, address: str, manifest: CID, local: BlockStore) -> StateUploads:
        """Return where a database's state tree and commits go: ``local``, and the node (see the module)."""
        self._locals[address] = local
        return StateUploads(self, address, manifest, local)

    def state_pack_of(self, address: str) -> StatePack | None:
        """Return the state pack of this replica's newest commit of ``address`` on the node, if written."""
        with self._commits_lock:
            return self._state_packs.get(address)

    def read_state_pack(self, cid: CID, *, timeout: float | None = None) -> dict[CID, bytes]:
        """Read a state pack (or any CAR file) through the node with one ``cat``: its blocks by CID.

        Each block is checked against its CID; nothing else is (what they are for is the reader's to
        check: a snapshot open checks every block it uses against the commit's roots).

        Raises:
            IpfsError: the node failed, or did not produce the file within ``timeout`` seconds per read.
            CarError: the file is not a well-formed CAR file (at most
                :data:`~orbit.ipfs.packs.MAX_PACK_BYTES`), or a block does not hash to its CID.
        """
        return self.read_pack(Pack(cid, 0, 1), timeout=timeout)

    def state_pack_on_node(self, manifest: CID) -> StatePack | None:
        """Return the state pack the node's MFS names for a database (``/orbit/<manifest>.state``), if any.

        Written by a writer linked to this node once it has added the pack of its newest commit. It is
        a hint, untrusted: a pack's blocks are checked against the commit a reader trusts, and a pack of
        another commit is no use to it.

        Raises:
            IpfsResponseError: the record is over 1 KiB or not ``{v: 1, commit: CID, pack: CID}``.
            IpfsError: the node is unreachable or failed.
        """
        path = self.state_pack_path(manifest)
        data = self.client.files_read(path, max_bytes=1 << 10)
        if data is None:
            return None
        try:
            record = decode(data)
        except CodecError as e:
            raise IpfsResponseError(f"state pack record {path} is not DAG-CBOR: {e}", "files/read") from e
        if (
            not isinstance(record, dict)
            or set(record) != {"v", "commit", "pack"}
            or type(record["v"]) is not int
            or record["v"] != 1
            or type(record["commit"]) is not CID
            or type(record["pack"]) is not CID
        ):
            raise IpfsResponseError(
                f"state pack record {path} is not {{v: 1, commit: CID, pack: CID}}", "files/read"
            )
        return StatePack(record["commit"], record["pack"])

    def note_commit(self, address: str, manifest: CID, commit: Commit) -> None:
        """Remember a database's newest published commit, for the uploading thread to write to MFS."""
        with self._commits_lock:
            self._commits[address] = (manifest, commit)

    def commit_of(self, manifest: CID) -> bytes | None:
        """Return the newest commit block the node keeps for a database (unchecked), or None.

        It is untrusted: check it (``Commit.from_block`` with the write list, or a ``Snapshot``).

        Raises:
            IpfsError: the node is unreachable or failed.
        """
        return self.client.files_read(self.commit_path(manifest), max_bytes=64 << 10)

    def _announce(self, name: str, pins: list[CID]) -> None:
        """Write a database's heads record, or its newest commit for a state pin name.

        Called from the uploading thread, once the uploads are done.
        """
        if name.endswith(STATE_PINS):
            with self._commits_lock:
                known = self._commits.get(name[: -len(STATE_PINS)])
            if known is not None and known[1].root in pins:  # else a later commit's pin follows
                self.client.files_write(self.commit_path(known[0]), known[1].block)
                self._write_state_pack(name[: -len(STATE_PINS)], *known)
            return
        address = name
        manifest = pins[0]
        heads: list[IPLDKind] = list(pins[1:])
        beyond = self._beyond.get(address)
        if beyond is not None:
            cids, holds = beyond
            if not self._closing.is_set():  # while closing, the log cannot be read: keep them all
                cids = [h for h in cids if not holds([h])]
                self._beyond[address] = (cids, holds)
            heads += cids[: max(0, _MAX_HEADS - len(heads))]
        packs = self._repack(address)
        record = encode({"v": 1, "address": address, "heads": heads, "packs": [p.to_ipld() for p in packs]})
        self.client.files_write(self.heads_path(manifest), record)

    def _write_state_pack(self, address: str, manifest: CID, commit: Commit) -> None:
        """Add the state pack of a database's newest commit to the node (uploading thread; see the module).

        A failure is logged: newcomers then fetch the state block by block.
        """
        local = self._locals.get(address)
        held = self.state_pack_of(address)
        if local is None or self._closing.is_set() or (held is not None and held.commit == commit.cid):
            return  # while closing the directory's stores are going: the next session's commit writes it
        try:
            with tempfile.TemporaryFile() as car:
                write_car(
                    car, [commit.cid], state_pack_blocks(local, commit, (manifest, local.get(manifest)))
                )
                size = car.tell()
                if size > MAX_PACK_BYTES:
                    _log.info("%s: state of %d bytes is over a pack's limit: no state pack", address, size)
                    return
                car.seek(0)
                cid = self.client.add(car, pin=self.pin)
        except OrbitError as e:
            _log.warning("%s: no state pack (newcomers fetch the state block by block): %s", address, e)
            return
        with self._commits_lock:
            self._state_packs[address] = StatePack(commit.cid, cid)
        try:  # in MFS too, for a newcomer that knows only the address (state_pack_on_node)
            self.client.files_write(
                self.state_pack_path(manifest), encode({"v": 1, "commit": commit.cid, "pack": cid})
            )
        except OrbitError as e:
            _log.warning("%s: state pack not named in MFS (newcomers need the hint): %s", address, e)
        if self.pin and held is not None and held.cid != cid:
            try:
                self.client.pin_rm([held.cid])
            except OrbitError as e:
                _log.info("%s: state pack %s not unpinned: %s", address, held.cid, e)

    def _repack(self, address: str) -> list[Pack]:
        """Cut a new pack of the database's history if the policy says so; return the packs to record.

        A failure leaves the packs as they were (readers fetch the rest block by block).
        """
        linked = self._histories.get(address)
        with self._packs_lock:
            packs = list(self._packs.get(address, []))
        if linked is None or self._closing.is_set():
            return packs  # while closing, the history cannot be read (the closer holds its lock)
        history, count = linked
        try:
            todo = plan(packs, count())  # counted, not read: most record writes cut no pack
            if todo is None:
                return packs
            entries = history(todo.first)  # read once, only when a pack is cut
            made = []
            for start, size in cuts(todo.first, todo.first + len(entries)):
                run = entries[start - todo.first : start - todo.first + size]
                with tempfile.TemporaryFile() as car:
                    write_car(car, [e.cid for e in run[-1:]], ((e.cid, e.block) for e in run))
                    car.seek(0)
                    made.append(Pack(self.client.add(car, pin=self.pin), start, size))
            packs = [*todo.keep, *made]
        except DatabaseClosedError:  # closed meanwhile: the next open's record write cuts it
            return packs
        except OrbitError as e:
            _log.warning("%s: no new pack (readers fetch block by block): %s", address, e)
            return packs
        with self._packs_lock:
            self._packs[address] = packs
        if self.pin:
            for old in todo.replaces:
                try:
                    self.client.pin_rm([old.cid])
                except OrbitError as e:
                    _log.info("%s: pack %s not unpinned: %s", address, old.cid, e)
        return packs

    def packs_of(self, address: str) -> list[Pack]:
        """Return the packs of a database's history on the node (what its announcements name)."""
        with self._packs_lock:
            return list(self._packs.get(address, []))

    def read_pack(self, pack: Pack, *, timeout: float | None = None) -> dict[CID, bytes]:
        """Read a pack through the node (which fetches it from peers if it must): its blocks by CID.

        Each block is checked against its CID; the entries are still unverified (a join verifies them).

        Raises:
            IpfsError: the node failed, or did not produce the pack within ``timeout`` seconds per read.
            CarError: the pack is not a well-formed CAR file, or a block does not hash to its CID.
        """
        with tempfile.TemporaryFile() as car:
            self.client.cat(pack.cid, car, max_bytes=MAX_PACK_BYTES, timeout=timeout)
            car.seek(0)
            _, blocks = read_car(car.read())
        # Not marked as served: the node holds the pack's file, not these blocks, so the entries a join
        # admits from them are uploaded as blocks (the node can then pin them, and serve them to peers).
        return blocks

    def record_of(self, address: str, manifest: CID) -> HeadsRecord:
        """Return what the node records of a database: heads and packs (empty if nothing is recorded).

        Raises:
            IpfsResponseError: the record is malformed or names another database.
            IpfsError: the node is unreachable or failed.
        """
        path = self.heads_path(manifest)
        data = self.client.files_read(path, max_bytes=64 << 10)
        if data is None:
            return HeadsRecord([], [])
        try:
            record: Any = decode(data)
        except CodecError as e:
            raise IpfsResponseError(f"heads record {path} is not DAG-CBOR: {e}", "files/read") from e
        heads = record.get("heads") if isinstance(record, dict) else None
        listed = record.get("packs", []) if isinstance(record, dict) else None
        packs = [Pack.from_ipld(p) for p in listed] if isinstance(listed, list) else [None]
        if (
            not isinstance(record, dict)
            or record.get("address") != address
            or not isinstance(heads, list)
            or len(heads) > _MAX_HEADS
            or not all(type(h) is CID and h.is_entry_cid for h in heads)
            or len(packs) > MAX_PACKS
            or None in packs
        ):
            raise IpfsResponseError(
                f"heads record {path} is malformed or names another database", "files/read"
            )
        return HeadsRecord(list(heads), [p for p in packs if p is not None])

    # -- databases ----------------------------------------------------------------------------------------

    def manifest_block(self, cid: CID) -> bytes | None:
        """Return a manifest block from the node (hash-checked), or None if the node does not produce it.

        Raises:
            IpfsError: the node is unreachable or failed.
        """
        try:
            return self.store.get(cid)
        except BlockNotFoundError:
            return None

    def uploading(self, address: str, manifest: CID) -> Callable[[LogStorage], LogStorage]:
        """Return a wrapper for a database's log storage that uploads and pins what it commits.

        Committed entries are journaled for upload before the local commit, and the heads pinned after.
        """
        return lambda inner: _UploadingStorage(inner, self, address, manifest)

    def attach(
        self,
        db: LinkedDatabase,
        progress: Progress | None = None,
        *,
        by_address: bool = True,
        history: History | None = None,
    ) -> None:
        """Link an opened database to the node: fetch what its recorded heads reach, then upload and pin.

        The database's log must commit through :meth:`uploading` (the facade opens it so). A database
        opened by name (``by_address=False``) also opens while the node is down, slow or failing
        (local-first: its log is looked up on the node only if that works); one opened by address
        fails instead, since its log would be missing. With ``history``, the database's history is
        kept in packs on the node (see :mod:`orbit.ipfs.packs`).

        Raises:
            EntryRejectedError: an entry from the node failed verification; nothing was admitted.
            BlockNotFoundError: the node lacks blocks the recorded heads need; what was complete was
                admitted.
            IpfsError: the node is unreachable or failed while fetching.
            BlockStoreError: the upload journal failed.
        """
        manifest = db.manifest
        try:
            record = self.record_of(db.address, manifest.cid)
        except IpfsError as e:
            if by_address and db.entry_count() == 0:
                raise
            _log.warning("%s: opened without looking on the IPFS node: %s", db.address, e)
            record = HeadsRecord([], [])
        empty = db.entry_count() == 0
        if record.heads and not db.holds(record.heads):
            # New here, or an earlier open stopped part-way (its verified entries wait, pending), or
            # another process wrote since: fetch what the record reaches that the log lacks. Until the
            # log holds them, the recorded heads stay in the record this replica writes (from the
            # uploading thread, as soon as the fetch commits), so the longer history stays findable.
            self._beyond[db.address] = (list(record.heads), db.holds)
            try:
                self.fetch(db, record.heads, progress, packs=record.packs)
            except (BlockNotFoundError, IpfsError) as e:
                if by_address and empty:  # what it admitted uploads on: the record keeps the heads
                    self._beyond[db.address] = (list(record.heads), lambda _heads: False)
                    raise
                _log.warning("%s: opened with what it holds; the rest comes later: %s", db.address, e)
            if db.holds(record.heads):
                self._beyond.pop(db.address, None)
        if history is not None:
            with self._packs_lock:
                self._packs[db.address] = list(record.packs)
            self._histories[db.address] = (history, db.entry_count)
        self.uploads.queue_upload([(manifest.cid, manifest.block)])
        self.uploads.pin(db.address, [manifest.cid, *db.heads()])

    def fetch(
        self,
        db: LinkedDatabase,
        heads: list[CID],
        progress: Progress | None = None,
        *,
        packs: Sequence[Pack] = (),
    ) -> list[Entry]:
        """Fetch, verify and admit a database's log from the node, starting at ``heads``.

        First in bulk — the ``packs`` (``cat``, each up to :data:`~orbit.ipfs.packs.MAX_PACK_BYTES`),
        or without packs ``dag/export`` of each head (up to :data:`MAX_EXPORT_BYTES`) — then block by
        block (``block/get``, concurrently) for anything the bulk reads did not bring.

        Raises:
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: blocks are missing on the node; what was complete was admitted.
            IpfsError: the node is unreachable or failed.
        """
        bulk = MemoryBlockStore()
        packed = False
        for pack in packs[:MAX_PACKS]:
            try:
                bulk.put_many(self.read_pack(pack).items())
                packed = True
            except (IpfsError, CarError) as e:  # what the pack would have brought comes block by block
                _log.info("pack %s of %s not read: %s", pack.cid, db.address, e)
        for head in [] if packed else heads:
            if bulk.has(head):
                continue
            try:
                with tempfile.TemporaryFile() as car:
                    self.client.dag_export(head, car, max_bytes=MAX_EXPORT_BYTES)
                    car.seek(0)
                    _, blocks = read_car(car.read())
                bulk.put_many(blocks.items())
                self.served.add(blocks)  # the export stored them on the node, hash-checked when read
            except (IpfsError, CarError) as e:  # the block-by-block path fetches what is left
                _log.info("dag/export of %s failed, fetching block by block: %s", head, e)
        return db.join_heads(heads, source=ChainedBlockStore(bulk, self.source), progress=progress)

    def flush(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, for every pending upload and pin to reach the node.

        A call that fails (the node slow or refusing for a moment) is tried again until the deadline;
        :attr:`CachedBlockStore.last_error <orbit.ipfs.uploads.CachedBlockStore.last_error>` says what
        failed last.

        Returns:
            True if everything reached the node in time.
        """
        return self.uploads.wait_uploaded(timeout)

    def close(self) -> None:
        """Stop within about ``close_timeout`` seconds in all, giving pending uploads most of it.

        What did not reach the node stays journaled, for the next open of the directory.

        If the last upload failed (the node is down), it does not wait at all. No new pack is cut
        meanwhile (the next writer's record write cuts it).
        """
        deadline = time.monotonic() + self.close_timeout
        self._closing.set()
        try:
            if not self.uploads.backing_off:
                self.uploads.wait_uploaded(self.close_timeout * 0.75, retry=False)
        finally:
            self.uploads.close(max(0.1, deadline - time.monotonic()))
            self.store.close()
            if self._owns_client:
                self.client.close()

    def __repr__(self) -> str:
        return f"NodeLink({self.client.base_url!r})"
