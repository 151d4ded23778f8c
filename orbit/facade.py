"""The OrbitDB facade: databases by name or address, in one directory, with no daemon.

A directory holds a format stamp (``FORMAT``), a keystore (``keystore/identity.json``), the local store
(``blocks/``) and a lock file. :meth:`OrbitDB.open` creates or opens a database by name (its address is
computed from the manifest) or by ``/orbitdb/<cid>`` address (the manifest is read from the local
store). Every write is durable against a process kill when it returns, and visible only then. Closing a
database stores a checkpoint of its index, authenticated with a key derived from the identity, so the
next open restores the index instead of replaying the log; a checkpoint that does not match is ignored
and the index is rebuilt.

One re-entrant lock per OrbitDB (:attr:`OrbitDB.lock`) guards its storage and its databases, so they
can be shared between threads (see :mod:`orbit.databases.base`).

This module is the one place that wires things together: it opens the storage, builds each
database's store and hands the database a :class:`~orbit.databases.DatabaseContext`; with ``ipfs=``,
it links the database to the node (:mod:`orbit.ipfs.node_link`) and starts its replicator
(:mod:`orbit.replication`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d, OrbitDB(d) as orbit:
...     kv = orbit.open("settings", type="keyvalue")
...     _ = kv.put("theme", "dark")
...     kv.get("theme"), kv.address.startswith("/orbitdb/z")
('dark', True)
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, overload

from ipfs_log.blockstore import BlockStore, ChainedBlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError, EntryRejectedError, OrbitError
from ipfs_log.frontier import Frontier
from ipfs_log.identity import Identity
from ipfs_log.lazy import lazy_logger
from ipfs_log.log import Log
from orbit.address import Manifest, is_address, normalize_writers, parse_address
from orbit.car import CarReader
from orbit.databases import BUILT_IN, Database, DatabaseContext, OpenReport, database_class
from orbit.errors import (
    CarError,
    CommitError,
    DatabaseClosedError,
    DatabaseError,
    DatabaseLockedError,
    IpfsError,
    ReplicationTimeoutError,
    StorageCorruptError,
    UnknownAddressError,
)
from orbit.keystore import Keystore
from orbit.registry import Registry, RegistryEntry
from orbit.storage.blocks import LocalBlockStore
from orbit.storage.checkpoints import Checkpoints
from orbit.storage.compaction import LogCompactor
from orbit.storage.fmt import check_format, stamp_format
from orbit.storage.frontiers import FrontierRecord, FrontierRecords
from orbit.storage.logs import LogRecords
from orbit.storage.stored_log import admitted_since, open_log
from stores.base import Sharing
from stores.errors import InvalidCheckpointError

_log = lazy_logger("orbit")

# Imported where used: a directory without a node never loads httpx, nor one without a table sqlite3.
if TYPE_CHECKING:
    from orbit.databases import CounterDatabase, DocumentsDatabase, EventLogDatabase, KeyValueDatabase
    from orbit.ipfs.client import KuboClient
    from orbit.ipfs.node_link import NodeLink
    from orbit.sql.database import TableDatabase

__all__ = ["OrbitDB"]

CHECKPOINT_EVERY: Final = 10_000
"""Save a checkpoint after this many admitted entries (or half the log, if more), so a reopen after a
kill applies at most that many entries on top of the last checkpoint. Half, not less: a checkpoint costs
O(state), and saving at every doubling keeps that under two saved records per write in all."""

Writers = str | Iterable[bytes | str] | None

REMEMBERED_OPTIONS: Final = ("index_by", "indexes")
"""Open options kept in the directory's registry with a database's name (a documents database's key
field and indexes), so opening it again by name or address, from Python or the command line, uses them."""


class OrbitDB:
    """Databases in a directory: created on first use, locked against a second opener.

    Args:
        directory: where the keystore, blocks and lock live (created if absent).
        identity: write as this identity; by default the keystore's, created on first use.
        passphrase: encrypts a new keystore, and is needed to open an encrypted one.
        sync: flush every commit to disk (survives power loss, slower); by default a write survives
            a process kill.
        checkpoint_every: save a database's index checkpoint after this many new entries.
        ipfs: an IPFS node to keep the blocks on too: its API address (``"http://127.0.0.1:5001"``,
            ``"/ip4/127.0.0.1/tcp/5001"``) or a :class:`~orbit.ipfs.KuboClient`. Writes stay local-first
            and are uploaded in the background; heads are pinned; databases this directory lacks are
            opened by address from the node (see :mod:`orbit.ipfs.node_link`).
        replicate: with ``ipfs``, keep every open database in sync with its peers through the node
            (a :class:`~orbit.replication.Replicator` per database; ``open(..., replicate=False)`` turns
            it off for one database).
        pin: with ``ipfs``, pin each database's manifest and heads recursively on the node (the node
            then keeps the whole log).
        replication: options for each database's :class:`~orbit.replication.Replicator` (``interval``:
            seconds of an anti-entropy round, 30 by default; ``peer_poll``, ``retry``, ``max_retry``,
            ``close_timeout``), and ``open_wait``: how long an open by address that found nothing on
            the node waits for peers (10 s by default; ``open(..., wait=...)`` for one open).

    Raises:
        DatabaseLockedError: another OrbitDB, in this or another process, has the directory open.
        UnsupportedFormatError: the directory is of an unknown or newer on-disk format.
        KeystoreError: the keystore cannot be read or written.
        WrongPassphraseError: the keystore is encrypted and the passphrase is missing or wrong.
        BlockStoreError: the block store cannot be opened.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        identity: Identity | None = None,
        passphrase: str | bytes | None = None,
        *,
        sync: bool = False,
        checkpoint_every: int = CHECKPOINT_EVERY,
        ipfs: str | KuboClient | None = None,
        replicate: bool = True,
        pin: bool = True,
        replication: Mapping[str, float] | None = None,
    ) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DatabaseError(f"cannot create the directory {self.directory}: {e}") from e
        stamped = check_format(self.directory)  # before anything is written to the directory
        self._lock_fd = _lock(self.directory / "LOCK")
        self.closed = False
        self._closing = False
        self.checkpoint_every = checkpoint_every
        self._databases: dict[str, Database[Any]] = {}
        try:
            if not stamped:
                stamp_format(self.directory)
            self.keystore = Keystore(self.directory / "keystore" / "identity.json")
            if identity is None:
                if self.keystore.exists():
                    identity = self.keystore.load(passphrase)
                else:
                    identity = Identity.generate()
                    self.keystore.save(identity, passphrase)
            elif not self.keystore.exists():
                self.keystore.save(identity, passphrase)
            self.identity: Identity = identity
            self.blocks = LocalBlockStore(self.directory / "blocks", sync=sync)
            self.lock = self.blocks.env.lock
            """The re-entrant lock that guards this directory's storage and databases."""
            self._logs = LogRecords(self.blocks.env)
            mac_key = hashlib.sha256(b"orbit/checkpoint-mac/v1" + identity.seed).digest()
            self._checkpoints = Checkpoints(self.blocks.env, mac_key)
            self._frontiers = FrontierRecords(self.blocks.env)
            self.ipfs: NodeLink | None = None
            if ipfs is not None:
                from orbit.ipfs.node_link import NodeLink

                self.ipfs = NodeLink(self.directory, self.blocks, ipfs, pin=pin)
            self.replicate = replicate
            self.replication = dict(replication or {})
            self.registry = Registry(self.directory)
            """The databases this directory knows by name (``databases.json``, read by the CLI too)."""
        except BaseException:
            os.close(self._lock_fd)
            raise

    def __repr__(self) -> str:
        return f"OrbitDB({str(self.directory)!r}, {self.identity.did})"

    def _check_open(self) -> None:
        if self.closed or self._closing:
            raise DatabaseClosedError(f"OrbitDB at {self.directory} is closed")

    def manifest(
        self, name: str, type: str = "eventlog", write: Writers = None, meta: IPLDKind = None
    ) -> Manifest:
        """Return the manifest ``open(name, …)`` would use (and so the database's address).

        Raises:
            UnknownStoreTypeError: ``type`` is not a store type.
            IdentityError: a writer key is malformed.
        """
        _database_class(type)  # raises UnknownStoreTypeError
        writers = normalize_writers([self.identity.public_key] if write is None else write)
        return Manifest(name, type, writers, meta)

    def resolve(self, address: str) -> Manifest:
        """Return the manifest of an ``/orbitdb/<cid>`` address from the local store.

        Raises:
            UnknownAddressError: the local store holds no manifest for this address.
            DatabaseError: the address is malformed, or the block is not a manifest.
        """
        cid = parse_address(address)
        try:
            block = self.blocks.get(cid)
        except BlockNotFoundError:
            fetched = None if self.ipfs is None else self.ipfs.manifest_block(cid)  # hash-checked
            if fetched is None:
                raise UnknownAddressError(address) from None
            manifest = Manifest.from_block(cid, fetched)
            self.blocks.put(cid, fetched)
            return manifest
        return Manifest.from_block(cid, block)

    @overload
    def open(
        self, name: str, type: Literal["keyvalue"], write: Writers = ..., meta: IPLDKind = ..., **options: Any
    ) -> KeyValueDatabase: ...
    @overload
    def open(
        self, name: str, type: Literal["eventlog"], write: Writers = ..., meta: IPLDKind = ..., **options: Any
    ) -> EventLogDatabase: ...
    @overload
    def open(
        self, name: str, type: Literal["counter"], write: Writers = ..., meta: IPLDKind = ..., **options: Any
    ) -> CounterDatabase: ...
    @overload
    def open(
        self,
        name: str,
        type: Literal["documents"],
        write: Writers = ...,
        meta: IPLDKind = ...,
        **options: Any,
    ) -> DocumentsDatabase: ...
    @overload
    def open(
        self, name: str, type: Literal["table"], write: Writers = ..., meta: IPLDKind = ..., **options: Any
    ) -> TableDatabase: ...
    @overload
    def open(
        self, name: str, type: str | None = ..., write: Writers = ..., meta: IPLDKind = ..., **options: Any
    ) -> Database[Any]: ...

    def open(
        self,
        name: str,
        type: str | None = None,
        write: Writers = None,
        meta: IPLDKind = None,
        **options: Any,
    ) -> Database[Any]:
        """Open a database by name or by ``/orbitdb/<cid>`` address; a new name is created with ``type``.

        Names are unique in a directory: every database opened is remembered by its name in the
        directory's registry (:attr:`registry`, the one ``orbit ls`` reads). Opening a name the directory
        knows opens that database, whose type (and writers, metadata and schema) were fixed when it was
        created: ``type`` may then be omitted, and if given must be the same.

        Args:
            name: a name, or an address (then ``write`` and ``meta`` come from its manifest).
            type: ``"eventlog"``, ``"keyvalue"``, ``"counter"``, ``"documents"`` or ``"table"`` (then
                ``schema="CREATE TABLE ..."``, see :mod:`orbit.sql`); required to create a database;
                with an address, the manifest's type must match it if given.
            write: who may write: public keys (bytes or ``did:key``), or ``"*"``; default: this identity
                (or, for a name the directory knows, the writers it was created with).
            meta: free-form IPLD metadata stored in the manifest (part of the address).
            **options: passed to the store type's constructor; with ``ipfs=``, ``progress`` is called
                with the number of entries verified while a database new here is fetched from the node
                (and during the replicator's long fetches), ``replicate=False`` opens the database
                without a replicator, and ``wait`` (seconds) bounds how long an open by address that
                found nothing on the node waits for peers (``0``: not at all; see :attr:`Database.reached`).
                ``snapshot=`` opens a database new here from a signed commit (a :class:`~orbit.state.Commit`,
                its block or CID, or a list of them for a quorum) under ``trust``: ``"replay"`` (the
                default: fetch and verify every entry under it, then check its root), ``"writer"`` (a
                commit by any writer is enough) or ``"quorum:k"`` (``k`` writers signed the same root):
                the log then starts at the commit's heads and only the state's blocks are fetched and
                checked (:mod:`orbit.state.bootstrap`); ``source=`` is where blocks come from (default:
                this directory, then the IPFS node); ``pack=`` (with ``ipfs=``) names a state pack on the
                node (the CID a peer announced with the commit: ``db.state_pack_of(commit)``), read with
                one ``cat`` and tried before the other sources (untrusted: every block is still checked
                against the commit; a pack that cannot be read or parsed is skipped). Without ``pack=``,
                the pack the node's MFS names for the commit is used, if it names one
                (``NodeLink.state_pack_on_node``).

        Returns:
            The database, typed by ``type`` (:class:`KeyValueDatabase`, ...). Opening an open
            database again returns the same object.

        Raises:
            DatabaseClosedError: this OrbitDB is closed.
            UnknownStoreTypeError: the type (asked for, or in the manifest) is not a store type.
            UnknownAddressError: no manifest for the address in the local store (nor on the IPFS node).
            CommitError: with ``snapshot=``, no commit meets the trust mode, or its trees do not match
                the blocks served (nothing is stored).
            TreeNodeError: with ``snapshot=``, a tree block served is forged (nothing is stored).
            DatabaseError: with ``snapshot=``, the database is here already; the manifest's type is not
                the ``type`` asked for; the name is a database of
                another type (or with other writers, metadata or schema) here; the name is new and no
                ``type`` was given.
            RegistryError: the directory's registry cannot be read or written.
            IpfsError: with ``ipfs=``, the node failed while the database was fetched from it.
            ReplicationTimeoutError: with ``ipfs=``, opening by address found nothing on the node and no
                peer answered within ``wait`` seconds (nothing is silently empty).
            IdentityError: a writer key is malformed.
            StorageCorruptError: the stored log is damaged.
            BlockStoreError: the store cannot be read or written.
        """
        snapshot = options.pop("snapshot", None)
        trust = options.pop("trust", "replay")
        source = options.pop("source", None)
        pack = options.pop("pack", None)
        if pack is None and snapshot is not None and self.ipfs is not None and trust != "replay":
            pack = self._pack_on_node(name, snapshot)
        if pack is not None and snapshot is not None:
            source = self._packed_source(pack, source)
        if snapshot is not None:  # (a commit of an empty database opens it empty, the usual way)
            if trust == "replay":
                return self._open_replayed(name, type, snapshot, source, options)
            self._start_at(name, type, snapshot, trust, source, options)
        progress = options.pop("progress", None)
        replicate = bool(options.pop("replicate", self.replicate))
        wait = options.pop("wait", None)
        with self.lock:
            self._check_open()
            if is_address(name):
                manifest = self.resolve(name)
                cls = _database_class(manifest.type)
                if type is not None and type != manifest.type:
                    raise DatabaseError(f"{name} is a {manifest.type} database, not {type}")
            else:
                manifest = self._by_name(name, type, write, meta, options)
                cls = _database_class(manifest.type)
                if not self.blocks.has(manifest.cid):
                    self.blocks.put(manifest.cid, manifest.block)
            address = manifest.address
            if address in self._databases:
                return self._databases[address]
            known = self.registry.by_address(address)
            if known is not None:
                options = {**known.options, **options}
            db = self._open_database(cls, manifest, options)
            self._databases[address] = db
            if known is None:
                self._remember(manifest, options)
        if self.ipfs is not None:
            from orbit.replication.replicator import Replicator

            link = self.ipfs
            try:  # fetching from the node runs outside the lock (the join takes it to admit)
                history = functools.partial(self._history, db.log)
                link.attach(db, progress, by_address=is_address(name), history=history)
                if replicate:
                    o = self.replication
                    db.start_replication(
                        lambda d: Replicator(
                            d, link.client, link.source, progress=progress, upload=False,
                            interval=o.get("interval", 30.0), peer_poll=o.get("peer_poll", 1.0),
                            retry=o.get("retry", 0.5), max_retry=o.get("max_retry", 30.0),
                            close_timeout=o.get("close_timeout", 2.0), packs=link,
                        ).start()
                    )  # fmt: skip
                    if is_address(name) and known is None:  # new here: say what the open reached
                        self._reach(db, self.replication.get("open_wait", 10.0) if wait is None else wait)
            except BaseException:
                empty = db.entry_count() == 0
                db.close()
                if known is None and empty:  # nothing was reached: leave no empty database registered
                    with self.lock:
                        self._forget_name(manifest.address)
                raise
        return db

    def _reach(self, db: Database[Any], wait: float) -> None:
        """After an open by address, new here, through the node: wait for peers if nothing was found; report.

        A database that holds nothing after the node's record was read waits up to ``wait`` seconds for a
        peer to answer on its topic, then for what those peers announced (whatever it reached by then is
        kept, and the rest keeps coming in the background).

        Raises:
            ReplicationTimeoutError: nothing is held and no peer answered within ``wait`` seconds.
        """
        replicator = db.replicator
        if replicator is None:
            return
        started = time.monotonic()
        peers: list[str] = []
        synced = True
        if db.entry_count() == 0 and wait > 0:
            peers = replicator.wait_heard(wait)
            if not peers:
                raise ReplicationTimeoutError(
                    f"{db.address}: nothing reached: the IPFS node records no heads for it and no peer "
                    f"answered on its topic within {wait:g} s (is a peer holding it online and connected? "
                    "open(..., wait=0) opens it empty and keeps listening)"
                )
            try:
                replicator.wait_synced(max(0.0, wait - (time.monotonic() - started)))
            except ReplicationTimeoutError:
                synced = False
        db.note_reached(OpenReport(db.entry_count(), len(peers), synced, time.monotonic() - started))

    def _by_name(
        self, name: str, type: str | None, write: Writers, meta: IPLDKind, options: dict[str, Any]
    ) -> Manifest:
        """The manifest of the database ``open(name, type, write, meta, **options)`` opens (lock held).

        Raises:
            DatabaseError: the name is another database here, or new and ``type`` is None.
            UnknownStoreTypeError: ``type`` is not a store type.
        """
        known = self.registry.get(name)
        if known is None:
            if type is None:
                raise DatabaseError(
                    f"no database {name!r} in {self.directory}: give its type to create it "
                    "(type='eventlog', 'keyvalue', 'counter', 'documents' or 'table')"
                )
            cls = _database_class(type)
            return self.manifest(name, cls.STORE.TYPE, write, cls.manifest_meta(options, meta))
        if type is not None and type != known.type:
            _database_class(type)  # an unknown type is named as such
            raise DatabaseError(
                f"{name!r} is a {known.type} database in {self.directory} ({known.address}), not {type}; "
                "open it without a type, or choose another name"
            )
        if write is None and meta is None and options.get("schema") is None:
            return self.resolve(known.address)
        cls = _database_class(known.type)
        manifest = self.manifest(name, known.type, write, cls.manifest_meta(options, meta))
        if manifest.address != known.address:
            raise DatabaseError(
                f"{name!r} is another {known.type} database in {self.directory} ({known.address}: other "
                "writers, metadata or schema); open it by name alone, or choose another name"
            )
        return manifest

    def _remember(self, manifest: Manifest, options: Mapping[str, Any]) -> None:
        """Register a database opened here by its manifest's name, unless the name is another's (lock held).

        A name a person could not type back (unprintable, starting with '-', an address) is not registered.

        Raises:
            RegistryError: the registry cannot be read or written.
        """
        name = manifest.name
        if not name or not name.isprintable() or name.startswith("-") or is_address(name):
            return
        if self.registry.get(name) is not None:
            return  # another database by that name (opened by address): it keeps it
        kept = {k: options[k] for k in REMEMBERED_OPTIONS if options.get(k) is not None}
        if kept.get("index_by") == "_id":
            del kept["index_by"]
        if "indexes" in kept:
            kept["indexes"] = list(kept["indexes"])
        self.registry.add(RegistryEntry(name, manifest.address, manifest.type, kept))

    def open_car(self, car: str | os.PathLike[str] | bytes, **options: Any) -> Database[Any]:
        """Open the database a CAR file holds, creating it here if it is new (its entries are not read yet).

        The file's manifest (its first block that is one: an export writes it first) is checked and kept in
        the local store, and the database opened by address; :meth:`Database.import_car` then verifies
        and merges the file's entries.

        Args:
            car: a CAR file (e.g. from :meth:`Database.export_car`), or its contents.
            **options: the store type's open options, as for :meth:`open`.

        Raises:
            CarError: the file cannot be read, is malformed before its manifest, or holds none.
            DatabaseClosedError: this OrbitDB is closed.
            UnknownStoreTypeError: the manifest's type is not a store type.
            BlockStoreError: the store cannot be read or written.
        """
        with CarReader(car) as reader:
            manifest = reader.first(Manifest.from_block)
        if manifest is None:
            raise CarError(f"{reader.where} holds no database manifest")
        with self.lock:
            self._check_open()
            if not self.blocks.has(manifest.cid):
                self.blocks.put(manifest.cid, manifest.block)  # it hashes to its CID: checked
        db: Database[Any] = self.open(manifest.address, **options)
        return db

    def _open_database(
        self, cls: type[Database[Any]], manifest: Manifest, options: dict[str, Any]
    ) -> Database[Any]:
        """Open the stored log, restore (or rebuild) the store, and give the database its context."""
        address = manifest.address
        lognum = self._logs.number(address)
        assert lognum is not None
        saved = self._checkpoints.load(lognum, address)
        since, checkpoint = saved if saved is not None else (None, None)
        commit_through = None if self.ipfs is None else self.ipfs.uploading(address, manifest.cid)
        start = self._frontier_of(manifest, lognum)
        log, late = open_log(
            self.blocks, self._logs, self.identity, log_id=address, access=manifest.access, since=since,
            commit_through=commit_through, frontier=None if start is None else start[0],
        )  # fmt: skip
        options = cls.store_options(manifest, options)
        shared: Sharing = {"guard": self.lock, "closed_error": DatabaseClosedError}
        store = None
        if checkpoint is not None:
            try:
                store = cls.STORE(log, checkpoint=checkpoint, catch_up=late, **shared, **options)
            except InvalidCheckpointError:
                store = None
        if store is None and start is not None:  # no history here to replay: from the frontier record
            since = len(start[0].heads)
            late = admitted_since(log, self._logs, since)
            store = cls.STORE(log, checkpoint=start[1], catch_up=late, **shared, **options)
        if store is None:
            since = 0
            store = cls.STORE(log, **shared, **options)
        state_sink = None if self.ipfs is None else self.ipfs.state_sink(address, manifest.cid, self.blocks)
        context = DatabaseContext(
            lock=self.lock,
            blocks=self.blocks,
            directory=self.directory,
            save_checkpoint=functools.partial(self._checkpoints.save, lognum, address),
            admitted_since=functools.partial(admitted_since, log, self._logs),
            on_close=self._forget,
            on_drop=self._dropped,
            remote=None if self.ipfs is None else self.ipfs.source,
            checkpoint_every=self.checkpoint_every,
            checkpointed=since or 0,
            state_sink=state_sink,
        )
        db = cls(manifest, store, context)
        db.compactor = LogCompactor(self.blocks, self._logs, self._checkpoints, self._frontiers, address)
        return db

    def _frontier_of(self, manifest: Manifest, lognum: int) -> tuple[Frontier, IPLDKind] | None:
        """The frontier a database opened from a commit starts at, and its checkpoint there (lock held).

        Raises:
            StorageCorruptError: the record, or a head it names, is damaged or missing.
        """
        record = self._frontiers.load(lognum)
        if record is None:
            return None
        from orbit.state.commits import Commit

        if not self._logs.heads(lognum):  # written before the log's first records, which never came
            self._frontiers.remove(lognum)
            return None
        try:
            commit = Commit.from_block(record.commit, address=manifest.address)
            heads = [
                Entry.from_block(c, self.blocks.get(c), log_id=manifest.address, access=manifest.access)
                for c in commit.heads
            ]
        except (CommitError, EntryRejectedError, BlockNotFoundError) as e:
            raise StorageCorruptError(
                f"the frontier record or a head it names is damaged: {e}", self.blocks.path
            ) from e
        if record.dropped is not None:  # compacted: every entry under it is listed here
            under = self._frontiers.under(lognum)
            return Frontier(heads, count=commit.count, under=under, complete=True), record.checkpoint
        return Frontier(heads, count=commit.count), record.checkpoint

    def _snapshot_source(self, source: BlockStore | None) -> BlockStore:
        """Where a snapshot's blocks come from: ``source``, else this directory and its IPFS node."""
        if source is not None:
            return source
        return self.blocks if self.ipfs is None else ChainedBlockStore(self.blocks, self.ipfs.source)

    def _pack_on_node(self, address: str, snapshot: Any) -> CID | None:
        """The state pack the node's MFS names for the snapshot's commit, if it names one (see :meth:`open`).

        A hint like ``pack=``: anything wrong with it (no record, a malformed one, a pack of another
        commit, a node that fails) only means the blocks come one by one.
        """
        assert self.ipfs is not None
        try:
            refs = _commit_refs(snapshot)
        except (TypeError, ValueError):  # the open says what is wrong with the snapshot
            return None
        wanted = {ref if isinstance(ref, CID) else CID.for_block(ref) for ref in refs}
        if not wanted or not is_address(address):
            return None
        try:
            hint = self.ipfs.state_pack_on_node(parse_address(address))
        except (OrbitError, ValueError) as e:
            _log.info("no state pack named on the node for %s: %s", address, e)
            return None
        return hint.cid if hint is not None and hint.commit in wanted else None

    def _packed_source(self, pack: CID | str, source: BlockStore | None) -> BlockStore:
        """A state pack's blocks read from the node into memory, before ``source`` (see :meth:`open`).

        A pack the node cannot produce, or that is not a well-formed CAR of hash-checked blocks, is
        skipped (logged): the blocks then come from ``source`` one by one.

        Raises:
            DatabaseError: no IPFS node is linked, or ``pack`` is not a CID.
        """
        if self.ipfs is None:
            raise DatabaseError("pack= names a state pack on an IPFS node: open with ipfs=")
        try:
            cid = CID.parse(pack) if isinstance(pack, str) else pack
        except ValueError as e:
            raise DatabaseError(f"pack= is not a CID: {e}") from e
        if type(cid) is not CID:
            raise DatabaseError(f"pack= is a CID, not {type(pack).__name__}")
        packed = MemoryBlockStore()
        try:
            packed.put_many(self.ipfs.read_state_pack(cid).items())
        except (IpfsError, CarError) as e:
            _log.warning("state pack %s not read (blocks come one by one): %s", cid, e)
        return ChainedBlockStore(packed, self._snapshot_source(source))

    def _new_here(self, address: str, source: BlockStore) -> Manifest:
        """The manifest of a database this directory does not hold yet (lock held), from here or ``source``.

        Raises:
            DatabaseError: not an address, or the database is open, registered or stored here already.
            UnknownAddressError: neither here nor ``source`` has its manifest.
        """
        if not is_address(address):
            raise DatabaseError(f"a snapshot opens a database by address, not {address[:80]!r}")
        self._check_open()
        try:
            manifest = self.resolve(address)
        except UnknownAddressError:
            cid = parse_address(address)
            try:
                manifest = Manifest.from_block(cid, source.get(cid))  # checked: hashes to the address
            except BlockNotFoundError:
                raise UnknownAddressError(address) from None
        lognum = self._logs.number(manifest.address, create=False)
        if (
            manifest.address in self._databases
            or self.registry.by_address(manifest.address) is not None
            or (lognum is not None and self._logs.heads(lognum))
        ):
            raise DatabaseError(f"{address} is here already: a snapshot opens only a database new here")
        return manifest

    def _start_at(
        self, address: str, type: str | None, snapshot: Any, trust: str, source: Any, options: dict[str, Any]
    ) -> None:
        """Store a database new here as the state a trusted commit vouches for (see :meth:`open`).

        Every check is made before anything is stored: the commit under ``trust``, the heads and
        winning entries, every tree block, and the rebuilt state's roots against the commit's.
        """
        from orbit.state.bootstrap import bootstrap, trusted_commit

        src = self._snapshot_source(source)
        with self.lock:
            manifest = self._new_here(address, src)
        cls = _database_class(manifest.type)
        if type is not None and type != manifest.type:
            raise DatabaseError(f"{address} is a {manifest.type} database, not {type}")
        writers: list[bytes | str] = ["*"] if manifest.write == "*" else list(manifest.write)
        commit = trusted_commit(
            _commit_blocks(snapshot, src), address=manifest.address, writers=writers, trust=trust
        )
        kept = {k: v for k, v in options.items() if k in REMEMBERED_OPTIONS}
        store_options = cls.store_options(manifest, kept)
        boot = bootstrap(
            commit, src, cls.STORE, identity=self.identity, access=manifest.access, options=store_options
        )
        with self.lock:
            self._new_here(address, src)
            if not self.blocks.has(manifest.cid):
                self.blocks.put(manifest.cid, manifest.block)
            if not boot.heads:
                return  # the empty state: nothing to start from, the database opens empty
            lognum = self._logs.number(manifest.address)
            assert lognum is not None
            heads = sorted(boot.heads, key=lambda e: e.sort_key)
            record = FrontierRecord(commit.block, boot.checkpoint)
            self._frontiers.save(lognum, record)  # first: the log's start
            try:
                self._logs.commit(lognum, heads, [e.cid for e in heads], 0)
                self._checkpoints.save(lognum, manifest.address, len(heads), boot.checkpoint)
            except BaseException:
                self._frontiers.remove(lognum)
                raise

    def _open_replayed(
        self, address: str, type: str | None, snapshot: Any, source: Any, options: dict[str, Any]
    ) -> Database[Any]:
        """Open a database new here by replaying the history under a commit, verifying everything."""
        from orbit.state.bootstrap import trusted_commit

        src = self._snapshot_source(source)
        with self.lock:
            manifest = self._new_here(address, src)
            if not self.blocks.has(manifest.cid):
                self.blocks.put(manifest.cid, manifest.block)
        writers: list[bytes | str] = ["*"] if manifest.write == "*" else list(manifest.write)
        blocks = _commit_blocks(snapshot, src)
        commit = trusted_commit(blocks, address=manifest.address, writers=writers, trust="writer")
        db = self.open(address, type, **options)
        try:
            db.join_heads(commit.heads, source=src)  # every entry verified
            db.verify_commit(commit)  # its root recomputed from them
        except BaseException:
            db.drop()  # a bad commit leaves nothing behind
            raise
        return db

    def drop(self, name: str, type: str | None = None, write: Writers = None) -> None:
        """Close a database, delete its log's heads, order index and checkpoint, and forget its name.

        Args:
            name: a name this directory knows, or an address.
            type: for a name the registry does not hold, its type (with ``write``, its address).
            write: for a name the registry does not hold, its writers.

        Raises:
            DatabaseClosedError: this OrbitDB is closed.
            DatabaseError: the name is unknown here and no ``type`` was given.
            UnknownStoreTypeError: ``type`` is not a store type.
            BlockStoreError: the store cannot be written.
            RegistryError: the registry cannot be read or written.
        """
        with self.lock:
            self._check_open()
            known = None if is_address(name) else self.registry.get(name)
            if is_address(name):
                address = name
            elif known is not None and (type is None or type == known.type) and write is None:
                address = known.address
            elif type is None:
                raise DatabaseError(f"no database {name!r} in {self.directory}")
            else:
                address = self.manifest(name, type, write).address
            db = self._databases.get(address)
            if db is not None:
                db.drop()  # calls _dropped
            else:
                self._logs.drop(address)
                self._forget_name(address)

    def _forget_name(self, address: str) -> None:
        """Remove the registry's name for ``address``, if it has one (lock held)."""
        known = self.registry.by_address(address)
        if known is not None:
            self.registry.remove(known.name)

    def _history(self, log: Log, since: int) -> list[Entry]:
        """The entries ``log`` admitted as number ``since`` or later (read under the lock)."""
        with self.lock:
            return admitted_since(log, self._logs, since)

    def _forget(self, db: Database[Any]) -> None:
        self._databases.pop(db.address, None)

    def _dropped(self, db: Database[Any]) -> None:
        self._databases.pop(db.address, None)
        self._logs.drop(db.address)
        self._forget_name(db.address)

    @property
    def databases(self) -> list[Database[Any]]:
        """The databases open now."""
        with self.lock:
            return list(self._databases.values())

    def close(self) -> None:
        """Close every database (saving checkpoints), the block store and the lock. Idempotent.

        Raises:
            BlockStoreError: a checkpoint or the final flush could not be written (everything is
                closed anyway).
        """
        with self.lock:
            if self.closed or self._closing:
                return
            self._closing = True  # opens fail from now on
            databases = list(self._databases.values())
        # Outside the directory's lock: each database takes it as it needs it, and the threads that stop
        # now (replicators, the uploading thread finishing a heads record) may need it to end in time.
        error: BaseException | None = None
        try:
            for db in databases:
                try:
                    db.close()
                except Exception as e:
                    error = error or e
            if self.ipfs is not None:
                self.ipfs.close()  # waits a little for uploads; what is left stays journaled
        finally:
            with self.lock:
                try:
                    self.blocks.close()
                finally:
                    self.closed = True
                    os.close(self._lock_fd)
        if error is not None:
            raise error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _commit_refs(snapshot: Any) -> list[CID | bytes]:
    """The commits ``snapshot`` gives, each as its block (bytes) or its CID (a block to fetch).

    Raises:
        TypeError: an item is not a Commit, its block or its CID.
        ValueError: a string is not a CID.
    """
    from orbit.state.commits import Commit

    refs: list[CID | bytes] = []
    for item in snapshot if isinstance(snapshot, list | tuple) else [snapshot]:
        if isinstance(item, Commit):
            refs.append(item.block)
        elif isinstance(item, CID | str):  # before bytes: a CID is bytes too
            refs.append(CID.parse(item) if isinstance(item, str) else item)
        elif isinstance(item, bytes):
            refs.append(item)
        else:
            raise TypeError(f"a snapshot is a Commit, its block or its CID, not {type(item).__name__}")
    return refs


def _commit_blocks(snapshot: Any, source: BlockStore) -> list[bytes]:
    """The commit blocks ``snapshot`` gives: commits, their blocks or CIDs (fetched from ``source``).

    Raises:
        CommitError: a CID's block is not to be had.
        TypeError: an item is none of those.
        ValueError: a string is not a CID.
    """
    blocks: list[bytes] = []
    for ref in _commit_refs(snapshot):
        if isinstance(ref, CID):
            try:
                blocks.append(source.get(ref))
            except BlockNotFoundError as e:
                raise CommitError(f"commit {ref} is not to be had", ref) from e
        else:
            blocks.append(ref)
    return blocks


def _database_class(type_name: str) -> type[Database[Any]]:
    """The database class of a store type, its module imported on first use (``table``'s loads sqlite3).

    Raises:
        UnknownStoreTypeError: no database class is registered for ``type_name``.
    """
    if type_name not in BUILT_IN:  # "table", or unknown: then the error lists table too
        import orbit.sql.database  # noqa: F401  (registers the table type)
    return database_class(type_name)


def _lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise DatabaseError(f"cannot open the lock file {path}: {e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise DatabaseLockedError(
            "the directory is open in another OrbitDB (this or another process)", path.parent
        ) from e
    return fd
