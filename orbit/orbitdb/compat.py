"""OrbitDB JS databases: manifest, ``ipfs`` access controller, ``/orbitdb/`` address, and their state.

This module opens a database written by ``@orbitdb/core`` 4 from its blocks (any block store, or a CAR
file), verifies every entry (see :mod:`ipfs_log.orbitdb`), reads its state with OrbitDB's semantics for
the ``events``, ``keyvalue`` and ``documents`` types, and appends entries OrbitDB accepts.

The blocks, as OrbitDB writes them (all DAG-CBOR, CIDv1 sha2-256, named by base58btc strings):

- access controller ``{type: "ipfs", write: [<identity id>…]}`` (``"*"`` for anyone), whose address is
  ``/ipfs/<hash>``;
- manifest ``{name, type, accessController: "/ipfs/<hash>"}``, plus ``meta`` when one was given;
- the database address is ``/orbitdb/<manifest hash>``, and it is also the log id of every entry.

>>> from ipfs_log import MemoryBlockStore
>>> from ipfs_log.orbitdb import OrbitWriter, SigningKey
>>> alice = OrbitWriter.from_keys(SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32))
>>> store = MemoryBlockStore()
>>> db = OrbitDBDatabase.create(store, "todo", "keyvalue", writer=alice)
>>> _ = db.put("milk", 2), db.put("eggs", 12), db.delete("milk")
>>> reader = OrbitDBDatabase.open(store, db.address, heads=db.log.heads)
>>> reader.keyvalue()
{'eggs': 12}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ipfs_log.blockstore import BlockStore, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import DEFAULT_LIMITS, Limits
from ipfs_log.errors import BlockNotFoundError, CodecError
from ipfs_log.orbitdb import (
    DEFAULT_REFERENCES_COUNT,
    OrbitEntry,
    OrbitIdentity,
    OrbitLog,
    OrbitWriter,
    cid_to_hash,
    hash_to_cid,
)
from orbit.car import read_car
from orbit.errors import DatabaseError, UnknownAddressError, UnknownStoreTypeError

__all__ = [
    "DATABASE_TYPES",
    "MAX_ACCESS_BYTES",
    "MAX_MANIFEST_BYTES",
    "ORBITDB_PREFIX",
    "IPFSAccessController",
    "OrbitDBDatabase",
    "OrbitDBManifest",
    "orbitdb_address",
    "parse_orbitdb_address",
]

ORBITDB_PREFIX: Final = "/orbitdb/"
_IPFS_PREFIX: Final = "/ipfs/"
DATABASE_TYPES: Final = ("events", "keyvalue", "documents")
"""The OrbitDB database types this module reads and writes."""
MAX_MANIFEST_BYTES: Final = 256 * 1024
"""Largest manifest block accepted (name, type, controller address and free-form ``meta``)."""
MAX_ACCESS_BYTES: Final = 1 << 20
"""Largest access controller block accepted (about 14,000 writer ids)."""
_MANIFEST_FIELDS: Final = frozenset(("name", "type", "accessController"))


def orbitdb_address(manifest: CID) -> str:
    """Return ``/orbitdb/<base58btc manifest CID>``, OrbitDB's address of the database."""
    return ORBITDB_PREFIX + cid_to_hash(manifest)


def parse_orbitdb_address(address: str) -> CID:
    """Return the manifest CID of an OrbitDB address ``/orbitdb/<hash>`` (a trailing ``/`` is allowed).

    Raises:
        DatabaseError: the text is not such an address.
    """
    if not isinstance(address, str) or not address.startswith(ORBITDB_PREFIX):
        raise DatabaseError(f"not an OrbitDB address (/orbitdb/<hash>): {address!r}")
    text = address[len(ORBITDB_PREFIX) :]
    text = text.removesuffix("/")
    try:
        return hash_to_cid(text)
    except CodecError as e:
        raise DatabaseError(f"not an OrbitDB address: {address!r} ({e})") from e


def _checked_value(cid: CID, block: bytes, what: str, limit: int) -> IPLDKind:
    where = f"{what} {cid_to_hash(cid) if cid.is_entry_cid else cid}"
    if len(block) > limit:
        raise DatabaseError(f"{where}: {len(block)} bytes is over the {limit}-byte limit")
    if CID.for_block(block) != cid:
        raise DatabaseError(f"{where}: block does not hash to its CID (CIDv1 dag-cbor sha2-256)")
    try:
        return decode(block)
    except CodecError as e:
        raise DatabaseError(f"{where}: {e}") from e


@dataclass(frozen=True)
class IPFSAccessController:
    """OrbitDB's default access controller: a fixed list of identity ids (or ``"*"``) in one block.

    An identity may write when its ``id`` (the id key, hex) is on the list or the list holds ``*``;
    orbit also requires its chain to verify and the entry's ``key`` to be its ``publicKey``.
    """

    write: tuple[str, ...]
    block: bytes = field(init=False, repr=False, compare=False)
    cid: CID = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        block = encode({"type": "ipfs", "write": list(self.write)})
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "cid", CID.for_block(block))

    @property
    def address(self) -> str:
        """``/ipfs/<hash>``: how a manifest names this controller."""
        return _IPFS_PREFIX + cid_to_hash(self.cid)

    def can_write(self, identity: OrbitIdentity) -> bool:
        """Return whether ``identity.id`` is on the write list, or the list holds ``*``."""
        return "*" in self.write or identity.id in self.write

    @classmethod
    def from_block(cls, cid: CID, block: bytes) -> IPFSAccessController:
        """Decode and check an access controller block fetched as ``cid``.

        Raises:
            DatabaseError: too large, does not hash to ``cid``, not canonical, or not
                ``{type: "ipfs", write: [str…]}``.
        """
        value = _checked_value(cid, block, "access controller", MAX_ACCESS_BYTES)
        where = f"access controller {cid_to_hash(cid)}"
        if type(value) is not dict or value.keys() != {"type", "write"} or value["type"] != "ipfs":
            raise DatabaseError(f"{where}: not an OrbitDB 'ipfs' access controller {{type: 'ipfs', write}}")
        write = value["write"]
        if type(write) is not list or not all(type(w) is str for w in write):
            raise DatabaseError(f"{where}: write must be a list of identity ids (strings)")
        controller = cls(tuple(w for w in write if isinstance(w, str)))
        if controller.block != block:
            raise DatabaseError(f"{where}: not canonical DAG-CBOR")
        return controller


@dataclass(frozen=True)
class OrbitDBManifest:
    """What an OrbitDB database is: name, type, access controller address, and optional ``meta``.

    ``meta`` is written only when it is not None, as OrbitDB writes it only when one is given; a
    manifest read with an explicit ``meta: null`` keeps ``meta_null=True`` to re-encode the same.
    """

    name: str
    type: str
    access_controller: str
    meta: IPLDKind = None
    meta_null: bool = False
    block: bytes = field(init=False, repr=False, compare=False)
    cid: CID = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        value: dict[str, IPLDKind] = {
            "name": self.name,
            "type": self.type,
            "accessController": self.access_controller,
        }
        if self.meta is not None or self.meta_null:
            value["meta"] = self.meta
        block = encode(value)
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "cid", CID.for_block(block))

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest hash>``: the database's address and its log id."""
        return orbitdb_address(self.cid)

    @property
    def access_controller_cid(self) -> CID:
        """The CID of the ``ipfs`` access controller block the manifest names.

        Raises:
            DatabaseError: the controller is not of type ``ipfs`` or its address is malformed.
        """
        text = self.access_controller
        if not text.startswith(_IPFS_PREFIX):
            kind = text.split("/", 2)[1] if text.startswith("/") and text.count("/") >= 2 else text
            raise DatabaseError(
                f"manifest {cid_to_hash(self.cid)}: access controller type {kind!r} is not supported "
                "(only 'ipfs')"
            )
        try:
            return hash_to_cid(text[len(_IPFS_PREFIX) :])
        except CodecError as e:
            raise DatabaseError(f"manifest {cid_to_hash(self.cid)}: accessController: {e}") from e

    @classmethod
    def from_block(cls, cid: CID, block: bytes) -> OrbitDBManifest:
        """Decode and check a manifest block fetched as ``cid``.

        Raises:
            DatabaseError: too large, does not hash to ``cid``, not canonical, or wrong fields.
        """
        value = _checked_value(cid, block, "manifest", MAX_MANIFEST_BYTES)
        where = f"manifest {cid_to_hash(cid)}"
        if type(value) is not dict or not (
            value.keys() == _MANIFEST_FIELDS or value.keys() == _MANIFEST_FIELDS | {"meta"}
        ):
            raise DatabaseError(f"{where}: fields must be name, type, accessController and optional meta")
        name, type_, access = value["name"], value["type"], value["accessController"]
        if type(name) is not str or type(type_) is not str or type(access) is not str:
            raise DatabaseError(f"{where}: name, type and accessController must be strings")
        meta = value.get("meta")
        manifest = cls(name, type_, access, meta, meta_null="meta" in value and meta is None)
        if manifest.block != block:
            raise DatabaseError(f"{where}: not canonical DAG-CBOR")
        return manifest


def _js_key(key: IPLDKind) -> str | None:
    """The property name JavaScript gives ``key`` in ``keys[key]`` (OrbitDB's per-key bookkeeping).

    None for keys OrbitDB could not meaningfully use (bytes, lists, maps, links); entries with such
    keys are skipped.
    """
    if type(key) is str:
        return key
    if key is None:
        return "null"
    if type(key) is bool:
        return "true" if key else "false"
    if type(key) is int:
        return str(key)
    if type(key) is float and math.isfinite(key):
        return str(int(key)) if key.is_integer() and abs(key) < 1e21 else repr(key)
    return None


class OrbitDBDatabase:
    """An OrbitDB JS database opened from its blocks: verified log, state views, and writes.

    Open one with :meth:`open` (from a block store), :meth:`from_car` (from a CAR file) or make a new
    one with :meth:`create`. Reads follow OrbitDB 4 exactly: ``events`` yields every entry's
    ``payload.value`` oldest first; ``keyvalue`` and ``documents`` keep, per key, the newest operation
    in the log order, and list keys in the order of their newest ``PUT``.
    """

    def __init__(
        self,
        store: BlockStore,
        manifest: OrbitDBManifest,
        access: IPFSAccessController,
        *,
        writer: OrbitWriter | None = None,
        references_count: int = DEFAULT_REFERENCES_COUNT,
        limits: Limits = DEFAULT_LIMITS,
        index_by: str = "_id",
    ) -> None:
        if manifest.type not in DATABASE_TYPES:
            raise UnknownStoreTypeError(manifest.type, DATABASE_TYPES)
        self.store = store
        self.manifest = manifest
        self.access = access
        self.index_by = index_by
        self.log = OrbitLog(
            manifest.address,
            store,
            writer=writer,
            access=access,
            references_count=references_count,
            limits=limits,
        )

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest hash>``."""
        return self.manifest.address

    @property
    def type(self) -> str:
        """``events``, ``keyvalue`` or ``documents``."""
        return self.manifest.type

    def __repr__(self) -> str:
        return f"OrbitDBDatabase({self.address!r}, type={self.type!r}, {len(self.log)} entries)"

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(
        cls,
        store: BlockStore,
        name: str,
        type: str,
        *,
        writer: OrbitWriter,
        write: Sequence[str] | None = None,
        meta: IPLDKind = None,
        references_count: int = DEFAULT_REFERENCES_COUNT,
        index_by: str = "_id",
    ) -> OrbitDBDatabase:
        """Make a new database as OrbitDB's ``open(name)`` does, and store its two blocks.

        Args:
            store: where the controller, manifest, identity and entry blocks go.
            name: the database name.
            type: ``events``, ``keyvalue`` or ``documents``.
            writer: who appends.
            write: identity ids allowed to write (``["*"]`` for anyone); default the writer's id.
            meta: optional free-form metadata, written in the manifest.
            references_count: ``refs`` per entry (OrbitDB's default is 16).
            index_by: the document field that keys a ``documents`` database.

        Raises:
            UnknownStoreTypeError: the type is not one of :data:`DATABASE_TYPES`.
        """
        if type not in DATABASE_TYPES:
            raise UnknownStoreTypeError(type, DATABASE_TYPES)
        access = IPFSAccessController(tuple(write) if write is not None else (writer.identity.id,))
        manifest = OrbitDBManifest(name, type, access.address, meta)
        store.put_many([(access.cid, access.block), (manifest.cid, manifest.block)])
        return cls(
            store, manifest, access, writer=writer, references_count=references_count, index_by=index_by
        )

    @classmethod
    def open(
        cls,
        store: BlockStore,
        address: str,
        *,
        heads: Iterable[CID | str | OrbitEntry] | None = None,
        writer: OrbitWriter | None = None,
        references_count: int = DEFAULT_REFERENCES_COUNT,
        limits: Limits = DEFAULT_LIMITS,
        index_by: str = "_id",
    ) -> OrbitDBDatabase:
        """Open the database at ``address`` from ``store``, load and verify its log.

        Args:
            store: holds the manifest, controller, entry and identity blocks.
            address: ``/orbitdb/<manifest hash>``.
            heads: the log's heads (CIDs, hashes or entries), e.g. from a CAR file's roots or a
                pubsub message. If None, a store that can be iterated (``MemoryBlockStore``) is
                scanned for this log's entries; otherwise the log starts empty.
            writer: who appends (None: read-only).
            references_count: ``refs`` per appended entry.
            limits: bounds on entries read.
            index_by: the document field that keys a ``documents`` database.

        Raises:
            DatabaseError: the address, manifest or access controller is malformed or unsupported.
            UnknownAddressError: the store holds no manifest for the address.
            UnknownStoreTypeError: the database type is not one this module reads.
            BlockNotFoundError: a block the log needs is missing (the controller, an entry, an
                identity).
            EntryRejectedError: an entry failed verification (its subclass says why).
        """
        manifest_cid = parse_orbitdb_address(address)
        try:
            manifest_block = store.get(manifest_cid)
        except BlockNotFoundError:
            raise UnknownAddressError(address, f"no manifest block for OrbitDB address {address!r}") from None
        manifest = OrbitDBManifest.from_block(manifest_cid, manifest_block)
        access_cid = manifest.access_controller_cid
        try:
            access_block = store.get(access_cid)
        except BlockNotFoundError:
            raise BlockNotFoundError(
                access_cid, f"access controller block not found: {manifest.access_controller} (of {address})"
            ) from None
        access = IPFSAccessController.from_block(access_cid, access_block)
        db = cls(
            store,
            manifest,
            access,
            writer=writer,
            references_count=references_count,
            limits=limits,
            index_by=index_by,
        )
        found: list[CID | str | OrbitEntry] = list(_scan_heads(store, db.address) if heads is None else heads)
        if found:
            db.log.join_heads(found)
        return db

    @classmethod
    def from_car(
        cls,
        data: bytes,
        *,
        address: str | None = None,
        writer: OrbitWriter | None = None,
        limits: Limits = DEFAULT_LIMITS,
        index_by: str = "_id",
    ) -> OrbitDBDatabase:
        """Open a database from a CAR file holding its manifest, controller, identities and entries.

        The heads are the CAR roots that are entries of the database, or, if there are none, the
        entries no other entry names in ``next``.

        Args:
            data: the CAR file's bytes.
            address: the database address; if None, the CAR must hold exactly one manifest.
            writer: who appends (None: read-only). New blocks go to an in-memory store.
            limits: bounds on entries read.
            index_by: the document field that keys a ``documents`` database.

        Raises:
            CarError: the CAR file is malformed.
            DatabaseError: no address was given and the CAR holds no or several manifests.
            UnknownAddressError: the CAR holds no manifest for ``address``.
            BlockNotFoundError: a block the log needs is not in the CAR.
            EntryRejectedError: an entry failed verification.
        """
        roots, blocks = read_car(data)
        store = MemoryBlockStore()
        store.put_many(blocks.items())
        if address is None:
            manifests = [cid for cid, block in blocks.items() if _looks_like_manifest(block)]
            if len(manifests) != 1:
                raise DatabaseError(f"the CAR holds {len(manifests)} OrbitDB manifests; pass the address")
            address = orbitdb_address(manifests[0])
        heads: list[CID | str | OrbitEntry] = [
            r for r in roots if r in blocks and _entry_of(blocks[r], address)
        ]
        return cls.open(store, address, heads=heads or None, writer=writer, limits=limits, index_by=index_by)

    # ------------------------------------------------------------------ state

    def events(self) -> list[tuple[str, IPLDKind]]:
        """``events`` state: ``(hash, payload.value)`` of every entry, oldest first (OrbitDB ``all()``)."""
        return [(e.hash, _field(e.payload, "value")) for e in self.log.values()]

    def _latest(self) -> list[tuple[OrbitEntry, IPLDKind, IPLDKind]]:
        """Per key, the newest PUT not shadowed by a newer DEL: ``(entry, key, value)``, newest first."""
        seen: set[str] = set()
        out = []
        for entry in self.log.traverse():
            payload = entry.payload
            if type(payload) is not dict:
                continue
            op, key = payload.get("op"), payload.get("key")
            if op not in ("PUT", "DEL"):
                continue
            name = _js_key(key)
            if name is None or name in seen:
                continue
            seen.add(name)
            if op == "PUT":
                out.append((entry, key, payload.get("value")))
        return out

    def keyvalue(self) -> dict[str, IPLDKind]:
        """``keyvalue`` state: key → value, in OrbitDB's ``all()`` order (oldest newest-write first)."""
        return {str(_js_key(k)): v for _, k, v in reversed(self._latest())}

    def documents(self) -> dict[str, IPLDKind]:
        """``documents`` state: key → document, in OrbitDB's ``all()`` order."""
        return self.keyvalue()

    def get(self, key: IPLDKind) -> IPLDKind:
        """The value (``keyvalue``) or document (``documents``) at ``key``, or None (OrbitDB's undefined)."""
        name = _js_key(key)
        for _, k, v in self._latest():
            if _js_key(k) == name:
                return v
        return None

    def query(self, predicate: Callable[[IPLDKind], bool]) -> list[IPLDKind]:
        """``documents``: the documents for which ``predicate`` is true, newest first (OrbitDB's order)."""
        return [v for _, _, v in self._latest() if predicate(v)]

    # ------------------------------------------------------------------ writes

    def _need(self, *types: str) -> None:
        if self.type not in types:
            raise DatabaseError(
                f"{self.address} is a {self.type} database; this operation needs {'/'.join(types)}"
            )

    def add(self, value: IPLDKind) -> OrbitEntry:
        """``events``: append ``{op: "ADD", key: null, value}``.

        Raises:
            DatabaseError: the database is not of type ``events``.
            IdentityError: it was opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
        """
        self._need("events")
        return self.log.append({"op": "ADD", "key": None, "value": value})

    def put(self, key: IPLDKind, value: IPLDKind | None = None) -> OrbitEntry:
        """``keyvalue``: append ``{op: "PUT", key, value}``; ``documents``: ``put(doc)``, keyed by index_by.

        Raises:
            DatabaseError: wrong database type, or a document lacks its ``index_by`` field.
            IdentityError: the database was opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
        """
        self._need("keyvalue", "documents")
        if self.type == "documents":
            doc = key
            doc_key = doc.get(self.index_by) if isinstance(doc, dict) else None
            if not doc_key:
                raise DatabaseError(f"the document has no field {self.index_by!r}")
            return self.log.append({"op": "PUT", "key": doc_key, "value": doc})
        return self.log.append({"op": "PUT", "key": key, "value": value})

    def delete(self, key: IPLDKind) -> OrbitEntry:
        """``keyvalue`` / ``documents``: append ``{op: "DEL", key, value: null}``.

        Raises:
            DatabaseError: wrong database type, or (``documents``, as OrbitDB) no document at ``key``.
            IdentityError: the database was opened without a writer.
            PermissionDeniedError: the writer is not on the write list.
        """
        self._need("keyvalue", "documents")
        if self.type == "documents" and self.get(key) is None:
            raise DatabaseError(f"no document with key {key!r} in {self.address}")
        return self.log.append({"op": "DEL", "key": key, "value": None})


def _field(payload: IPLDKind, name: str) -> IPLDKind:
    return payload.get(name) if type(payload) is dict else None


def _looks_like_manifest(block: bytes) -> bool:
    try:
        value = decode(block)
    except CodecError:
        return False
    return type(value) is dict and _MANIFEST_FIELDS <= value.keys() <= _MANIFEST_FIELDS | {"meta"}


def _entry_of(block: bytes, log_id: str) -> dict[str, IPLDKind] | None:
    """The decoded block if it looks like an OrbitDB v2 entry of ``log_id`` (checked fully later)."""
    try:
        value = decode(block)
    except CodecError:
        return None
    if type(value) is dict and value.get("v") == 2 and value.get("id") == log_id:
        return value
    return None


def _scan_heads(store: BlockStore, log_id: str) -> list[CID]:
    """Heads of ``log_id`` among every block of an iterable store: its entries no other names in next."""
    if not isinstance(store, Iterable):
        return []
    cids: list[CID] = list(store)
    candidates: set[CID] = set()
    referenced: set[CID] = set()
    for cid, block in store.get_many(cids).items():
        value = _entry_of(block, log_id)
        if value is None:
            continue
        candidates.add(cid)
        nxt = value.get("next")
        if type(nxt) is list:
            for h in nxt:
                try:
                    referenced.add(hash_to_cid(h))
                except CodecError:
                    continue  # the entry is rejected with a clear error when it is verified
    return sorted(candidates - referenced)
