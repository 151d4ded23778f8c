"""The OrbitDB facade: databases by name or address, in one directory, with no daemon.

A directory holds a keystore (``keystore/identity.json``), the local block store (``blocks/``) and a
lock file. :meth:`OrbitDB.open` creates or opens a database by name (its address is computed from the
manifest) or by ``/orbitdb/<cid>`` address (the manifest is read from the local store). Every write is
durable against a process kill when it returns. Closing a database stores a checkpoint of its index,
tied to the log's heads and authenticated with a key derived from the identity, so the next open
restores the index instead of replaying the log; a checkpoint that does not match is ignored and the
index is rebuilt.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d, OrbitDB(d) as orbit:
...     kv = orbit.open("settings", type="keyvalue")
...     _ = kv.put("theme", "dark")
...     kv.get("theme"), kv.address.startswith("/orbitdb/z")
('dark', True)
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from ipfs_log.blockstore import MemoryBlockStore
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import Entry
from ipfs_log.errors import BlockNotFoundError, CodecError
from ipfs_log.identity import Identity
from orbit.address import Manifest, is_address, normalize_writers, parse_address
from orbit.blockstore.local import LocalBlockStore
from orbit.car import car_bytes, read_car
from orbit.errors import (
    DatabaseClosedError,
    DatabaseLockedError,
    UnknownAddressError,
    UnknownStoreTypeError,
)
from orbit.keystore import Keystore
from orbit.persisted import open_log
from stores import STORE_TYPES
from stores.base import Store, Update
from stores.errors import InvalidCheckpointError

__all__ = ["Database", "OrbitDB"]

_CHECKPOINT_MAGIC: Final = b"OCK2"
_CHECKPOINT_EVERY: Final = 10_000
"""Save a checkpoint after this many admitted entries (or a quarter of the log, if more), so a reopen
after a kill applies at most that many entries on top of the last checkpoint."""


class Database:
    """An open database: its store (reads and writes), its address, sync and CAR export/import.

    Attribute access falls through to the store, so ``db.put(...)``, ``db.get(...)``, ``db.add(...)``
    work as on the :class:`stores.base.Store` itself (``db.store``).
    """

    def __init__(self, orbit: OrbitDB, manifest: Manifest, store: Store, log_number: int) -> None:
        self.orbit = orbit
        self.manifest = manifest
        self.store = store
        self._log_number = log_number
        self._closed = False
        self._saved_at = len(store.log)
        store.subscribe(self._maybe_save_checkpoint)

    def _maybe_save_checkpoint(self, update: Update) -> None:
        admitted = len(self.store.log)  # a stored log only grows: its length counts its admissions
        if admitted - self._saved_at >= max(_CHECKPOINT_EVERY, admitted // 4):
            self.save_checkpoint()

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest CID>``."""
        return self.manifest.address

    @property
    def name(self) -> str:
        """The database's name."""
        return self.manifest.name

    @property
    def store_type(self) -> str:
        """The store type (``"eventlog"``, ``"keyvalue"``, ...)."""
        return self.manifest.type

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.store, name)

    def __len__(self) -> int:
        return len(self.store)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Database({self.address!r}, {self.store_type}, {len(self.store.log)} entries)"

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"database {self.address} is closed")

    def sync_from(self, other: Database) -> list[Entry]:
        """Fetch, verify and merge everything ``other`` (another OrbitDB's copy) has that this lacks.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: either database is closed.
            DatabaseError: ``other`` is another database (another address).
            EntryRejectedError: an entry from ``other`` failed verification; nothing was admitted.
        """
        from orbit.errors import DatabaseError

        self._check_open()
        other._check_open()
        if other.address != self.address:
            raise DatabaseError(f"cannot sync {self.address} from another database {other.address}")
        return self.store.join_heads(other.store.log.head_cids, source=other.orbit.blocks)

    def export_car(self, path: str | os.PathLike[str]) -> int:
        """Write the manifest and every entry to a CARv1 file whose roots are the log's heads.

        Returns:
            The number of blocks written.

        Raises:
            DatabaseClosedError: the database is closed.
        """
        self._check_open()
        log = self.store.log
        blocks = [(self.manifest.cid, self.manifest.block)] + [(e.cid, e.block) for e in log]
        data = car_bytes(log.head_cids, blocks)
        tmp = Path(str(path) + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return len(blocks)

    def import_car(self, path: str | os.PathLike[str] | bytes) -> list[Entry]:
        """Merge the entries of a CAR file (untrusted: every entry is verified by the log's join).

        Args:
            path: the file, or its contents as bytes.

        Returns:
            The entries newly admitted, in log order.

        Raises:
            DatabaseClosedError: the database is closed.
            CarError: the file is not a well-formed CARv1 file.
            EntryRejectedError: an entry failed verification; nothing was admitted.
            BlockNotFoundError: the file lacks blocks its heads need; what was complete was admitted.
        """
        self._check_open()
        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        roots, blocks = read_car(data)
        source = MemoryBlockStore()
        source.put_many(blocks.items())
        heads = [r for r in roots if r != self.manifest.cid]
        return self.store.join_heads(heads, source=source)

    def save_checkpoint(self) -> None:
        """Store a checkpoint of the index at the log's current heads (done by :meth:`close`).

        Raises:
            DatabaseClosedError: the database is closed.
            BlockStoreError: the write failed.
        """
        self._check_open()
        admitted = len(self.store.log)
        body = admitted.to_bytes(8, "big") + encode(self.store.checkpoint())
        mac = self.orbit._checkpoint_mac(self.address, body)
        self.orbit.blocks.save_checkpoint(self._log_number, _CHECKPOINT_MAGIC + mac + body)
        self._saved_at = admitted

    def close(self) -> None:
        """Save a checkpoint and close the store. Idempotent.

        Raises:
            BlockStoreError: the checkpoint could not be written.
        """
        if self._closed:
            return
        try:
            if not self.orbit.closed:
                self.save_checkpoint()
        finally:
            self._closed = True
            self.store.close()
            self.orbit._databases.pop(self.address, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class OrbitDB:
    """Databases in a directory: created on first use, locked against a second opener.

    Args:
        directory: where the keystore, blocks and lock live (created if absent).
        identity: write as this identity; by default the keystore's, created on first use.
        passphrase: encrypts a new keystore, and is needed to open an encrypted one.
        sync: flush every commit to disk (survives power loss, slower); by default a write survives
            a process kill.

    Raises:
        DatabaseLockedError: another OrbitDB, in this or another process, has the directory open.
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
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.directory / "LOCK")
        self.closed = False
        self._databases: dict[str, Database] = {}
        try:
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
            self._mac_key = hashlib.sha256(b"orbit/checkpoint-mac/v1" + identity.seed).digest()
            self.blocks = LocalBlockStore(self.directory / "blocks", sync=sync)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def __repr__(self) -> str:
        return f"OrbitDB({str(self.directory)!r}, {self.identity.did})"

    def _check_open(self) -> None:
        if self.closed:
            raise DatabaseClosedError(f"OrbitDB at {self.directory} is closed")

    def _checkpoint_mac(self, address: str, body: bytes) -> bytes:
        return hmac.new(self._mac_key, address.encode() + b"\0" + body, hashlib.sha256).digest()

    def manifest(
        self,
        name: str,
        type: str = "eventlog",
        write: str | Iterable[bytes | str] | None = None,
        meta: IPLDKind = None,
    ) -> Manifest:
        """Return the manifest ``open(name, …)`` would use (and so the database's address).

        Raises:
            UnknownStoreTypeError: ``type`` is not a store type.
            IdentityError: a writer key is malformed.
        """
        if type not in STORE_TYPES:
            raise UnknownStoreTypeError(type, list(STORE_TYPES))
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
            raise UnknownAddressError(address) from None
        return Manifest.from_block(cid, block)

    def open(
        self,
        name: str,
        type: str = "eventlog",
        write: str | Iterable[bytes | str] | None = None,
        meta: IPLDKind = None,
        **options: Any,
    ) -> Database:
        """Open a database by name (creating it) or by ``/orbitdb/<cid>`` address.

        Args:
            name: a name, or an address (then ``type``, ``write`` and ``meta`` come from its manifest).
            type: ``"eventlog"``, ``"keyvalue"``, ``"counter"`` or ``"documents"``.
            write: who may write: public keys (bytes or ``did:key``), or ``"*"``; default: this identity.
            meta: free-form IPLD metadata stored in the manifest (part of the address).
            **options: passed to the store type's constructor.

        Raises:
            DatabaseClosedError: this OrbitDB is closed.
            UnknownStoreTypeError: the type (asked for, or in the manifest) is not a store type.
            UnknownAddressError: no manifest for the address in the local store.
            IdentityError: a writer key is malformed.
            StorageCorruptError: the stored log is damaged.
        """
        self._check_open()
        if is_address(name):
            manifest = self.resolve(name)
            if manifest.type not in STORE_TYPES:
                raise UnknownStoreTypeError(manifest.type, list(STORE_TYPES))
        else:
            manifest = self.manifest(name, type, write, meta)
            if not self.blocks.has(manifest.cid):
                self.blocks.put(manifest.cid, manifest.block)
        address = manifest.address
        if address in self._databases:
            return self._databases[address]
        number = self.blocks.log_number(address)
        assert number is not None
        saved = self._load_checkpoint(address, number)
        since, checkpoint = saved if saved is not None else (None, None)
        log, late = open_log(self.blocks, self.identity, log_id=address, access=manifest.access, since=since)
        cls = STORE_TYPES[manifest.type]
        store = None
        if checkpoint is not None:
            try:
                store = cls(log, checkpoint=checkpoint, catch_up=late, **options)
            except InvalidCheckpointError:
                store = None
        if store is None:
            store = cls(log, **options)
        db = Database(self, manifest, store, number)
        self._databases[address] = db
        return db

    def _load_checkpoint(self, address: str, number: int) -> tuple[int, IPLDKind] | None:
        """Return ``(admission count, checkpoint)`` if a checkpoint is saved and authentic, else None."""
        record = self.blocks.load_checkpoint(number)
        if record is None or record[:4] != _CHECKPOINT_MAGIC or len(record) < 44:
            return None
        mac, body = record[4:36], record[36:]
        if not hmac.compare_digest(mac, self._checkpoint_mac(address, body)):
            return None
        try:
            return int.from_bytes(body[:8], "big"), decode(body[8:])
        except CodecError:
            return None

    def drop(
        self, name: str, type: str = "eventlog", write: str | Iterable[bytes | str] | None = None
    ) -> None:
        """Close a database and delete its log's heads, order index and checkpoint.

        Raises:
            DatabaseClosedError: this OrbitDB is closed.
            UnknownStoreTypeError: ``type`` is not a store type.
        """
        self._check_open()
        address = name if is_address(name) else self.manifest(name, type, write).address
        db = self._databases.get(address)
        if db is not None:
            db._closed = True
            db.store.close()
            del self._databases[address]
        self.blocks.drop_log(address)

    @property
    def databases(self) -> list[Database]:
        """The databases open now."""
        return list(self._databases.values())

    def close(self) -> None:
        """Close every database (saving checkpoints), the block store and the lock. Idempotent."""
        if self.closed:
            return
        try:
            for db in list(self._databases.values()):
                db.close()
            self.blocks.close()
        finally:
            self.closed = True
            os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise DatabaseLockedError(
            "the directory is open in another OrbitDB (this or another process)", path.parent
        ) from e
    return fd
