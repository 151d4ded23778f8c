"""Database manifests and addresses.

A manifest is one DAG-CBOR block ``{name, type, access: {write: [...]}, meta}``; the write list holds
32-byte Ed25519 public keys in byte order, or the single string ``"*"``. The database's address is
``/orbitdb/`` followed by the manifest's CID in base58btc, so the same name, type, access and meta give
the same address on every machine.

>>> m = Manifest("todo", "keyvalue", "*")
>>> m.address == Manifest("todo", "keyvalue", "*").address != Manifest("todo", "counter", "*").address
True
>>> Manifest.from_block(m.cid, m.block) == m
True
>>> parse_address(m.address) == m.cid
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ipfs_log.access import WriteList
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError, IdentityError
from ipfs_log.frozen import Frozen, frozen_init
from ipfs_log.identity import key_from_did, key_to_did
from orbit.errors import DatabaseError

__all__ = ["ADDRESS_PREFIX", "Manifest", "is_address", "normalize_writers", "parse_address"]

ADDRESS_PREFIX: Final = "/orbitdb/"


def normalize_writers(write: str | Iterable[bytes | str]) -> tuple[bytes, ...] | str:
    """Return a write list as sorted unique 32-byte keys, or ``"*"``.

    Keys may be given as bytes or ``did:key`` strings.

    Raises:
        IdentityError: a key is malformed, or ``"*"`` is mixed with keys.
    """
    if isinstance(write, str):
        if write == "*":
            return "*"
        write = [write]
    keys: set[bytes] = set()
    items = list(write)
    if "*" in items:
        if len(items) != 1:
            raise IdentityError("a write list is either '*' or keys, not both")
        return "*"
    for item in items:
        key = key_from_did(item) if isinstance(item, str) else item
        if not isinstance(key, bytes) or len(key) != 32:
            raise IdentityError(f"a writer key is 32 bytes or a did:key, not {item!r}")
        keys.add(bytes(key))
    return tuple(sorted(keys))


class Manifest(Frozen):
    """What a database is: its name, store type, who may write, and free-form metadata.

    Two manifests are equal when these four are; ``block`` (its DAG-CBOR) and ``cid`` follow from them.
    """

    __match_args__ = ("name", "type", "write", "meta")
    __slots__ = (*__match_args__, "block", "cid")
    name: str
    type: str
    write: tuple[bytes, ...] | str
    meta: IPLDKind
    block: bytes
    cid: CID

    def __init__(self, name: str, type: str, write: tuple[bytes, ...] | str, meta: IPLDKind = None) -> None:
        frozen_init(self, name, type, write, meta)
        listed: list[IPLDKind] = ["*"] if write == "*" else list(write)
        value: dict[str, IPLDKind] = {"name": name, "type": type, "access": {"write": listed}, "meta": meta}
        block = encode(value)
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "cid", CID.for_block(block))

    @property
    def address(self) -> str:
        """``/orbitdb/<manifest CID in base58btc>``."""
        return ADDRESS_PREFIX + self.cid.encode("base58btc")

    @property
    def access(self) -> WriteList:
        """The manifest's write list as an access controller."""
        return WriteList("*" if self.write == "*" else self.write)

    @property
    def writers(self) -> list[str]:
        """The write list as ``did:key`` strings (or ``["*"]``)."""
        return ["*"] if isinstance(self.write, str) else [key_to_did(k) for k in self.write]

    @classmethod
    def from_block(cls, cid: CID, block: bytes) -> Manifest:
        """Decode and check a manifest block fetched as ``cid``.

        Raises:
            DatabaseError: the block does not hash to ``cid`` or is not a manifest.
        """
        if CID.for_block(block) != cid:
            raise DatabaseError(f"manifest {cid}: block does not hash to its CID")
        try:
            value = decode(block)
        except CodecError as e:
            raise DatabaseError(f"manifest {cid}: {e}") from e
        if not isinstance(value, dict) or value.keys() != {"name", "type", "access", "meta"}:
            raise DatabaseError(f"manifest {cid}: fields must be exactly name, type, access, meta")
        name, type_, access = value["name"], value["type"], value["access"]
        if not isinstance(name, str) or not isinstance(type_, str):
            raise DatabaseError(f"manifest {cid}: name and type must be strings")
        write = access.get("write") if isinstance(access, dict) and access.keys() == {"write"} else None
        if not isinstance(write, list):
            raise DatabaseError(f"manifest {cid}: access must be {{write: [...]}}")
        if write == ["*"]:
            keys: tuple[bytes, ...] | str = "*"
        elif all(isinstance(k, bytes) and len(k) == 32 for k in write):
            keys = tuple(k for k in write if isinstance(k, bytes))
        else:
            raise DatabaseError(f"manifest {cid}: write must be ['*'] or 32-byte keys")
        manifest = cls(name, type_, keys, value["meta"])
        if manifest.cid != cid:
            raise DatabaseError(f"manifest {cid}: not in canonical form (write keys unsorted?)")
        return manifest


def is_address(text: str) -> bool:
    """Return whether ``text`` looks like an ``/orbitdb/<cid>`` address (not a name)."""
    return text.startswith(ADDRESS_PREFIX)


def parse_address(address: str) -> CID:
    """Return the manifest CID of an ``/orbitdb/<cid>`` address (a trailing ``/<name>`` is allowed).

    Raises:
        DatabaseError: the text is not an address.
    """
    if not is_address(address):
        raise DatabaseError(f"not an /orbitdb/<cid> address: {address!r}")
    text = address[len(ADDRESS_PREFIX) :].split("/", 1)[0]
    try:
        return CID.parse(text)
    except CodecError as e:
        raise DatabaseError(f"not an /orbitdb/<cid> address: {address!r} ({e})") from e
