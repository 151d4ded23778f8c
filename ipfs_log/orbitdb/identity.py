"""OrbitDB identities: a two-key chain in one DAG-CBOR block.

An identity block (OrbitDB's ``publickey`` provider) is::

    {id: <hex id key>, publicKey: <hex signing key>, signatures: {id, publicKey}, type: "publickey"}

The *id key* is the long-lived root (``id`` is its compressed public key in hex, and it is what access
controllers list); the *signing key* signs entries (``publicKey``). The chain, as
``@orbitdb/core`` 4 ``src/identities`` makes and checks it:

- ``signatures.id`` is the signing key's signature of the UTF-8 bytes of ``id``;
- ``signatures.publicKey`` is the id key's signature of the UTF-8 bytes of
  ``publicKey + signatures.id`` (the two hex strings concatenated).

An entry names its writer's identity by the block's hash and carries the signing key in ``key``; orbit
requires ``key == identity.publicKey`` (OrbitDB does not).

>>> ident = OrbitIdentity.create(SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32))
>>> OrbitIdentity.from_block(ident.cid, ident.block) == ident
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.errors import CodecError, IdentityError
from ipfs_log.orbitdb.hashes import cid_to_hash
from ipfs_log.orbitdb.keys import SigningKey, check_public_key, check_signature, verify_signature

__all__ = ["IDENTITY_TYPE", "MAX_IDENTITY_BYTES", "OrbitIdentity", "OrbitWriter"]

IDENTITY_TYPE: Final = "publickey"
"""The one identity provider orbit verifies (OrbitDB's default)."""
MAX_IDENTITY_BYTES: Final = 2048
"""Largest identity block accepted; a ``publickey`` identity is about 500 bytes."""
_FIELDS: Final = frozenset(("id", "publicKey", "signatures", "type"))
_SIGNATURE_FIELDS: Final = frozenset(("id", "publicKey"))


@dataclass(frozen=True, slots=True)
class OrbitIdentity:
    """A verified OrbitDB identity and the exact block it was read from or written as.

    Build with :meth:`create` or :meth:`from_block`; both check the whole chain. The constructor
    itself checks nothing.
    """

    id: str
    """The id key (the identity's root) as compressed public key hex; access controllers list it."""
    public_key: str
    """The signing key as compressed public key hex: the key that signs this writer's entries."""
    id_signature: str
    """``signatures.id``: the signing key's signature of ``id``."""
    public_key_signature: str
    """``signatures.publicKey``: the id key's signature of ``publicKey + signatures.id``."""
    cid: CID
    block: bytes

    @property
    def hash(self) -> str:
        """The block's CID as OrbitDB writes it (base58btc), the ``identity`` field of entries."""
        return cid_to_hash(self.cid)

    @classmethod
    def create(cls, id_key: SigningKey, signing_key: SigningKey) -> OrbitIdentity:
        """Make the identity block of ``id_key`` (the root) and ``signing_key``, as OrbitDB does."""
        ident = id_key.public_hex
        public = signing_key.public_hex
        id_sig = signing_key.sign(ident.encode())
        public_sig = id_key.sign((public + id_sig).encode())
        block = encode(_value(ident, public, id_sig, public_sig))
        return cls(ident, public, id_sig, public_sig, CID.for_block(block), block)

    @classmethod
    def from_block(cls, cid: CID, block: bytes) -> OrbitIdentity:
        """Decode an untrusted identity block fetched as ``cid`` and verify its chain.

        Raises:
            IdentityError: the block is too large, does not hash to ``cid``, is not canonical DAG-CBOR,
                has missing, extra or mistyped fields, is of another provider type, or a signature of
                the chain does not verify.
        """
        where = f"identity {cid_to_hash(cid) if cid.is_entry_cid else cid}"
        if len(block) > MAX_IDENTITY_BYTES:
            raise IdentityError(f"{where}: {len(block)} bytes is over the {MAX_IDENTITY_BYTES}-byte limit")
        if not cid.is_entry_cid or hashlib.sha256(block).digest() != cid.digest:
            raise IdentityError(f"{where}: block does not hash to its CID (CIDv1 dag-cbor sha2-256)")
        try:
            value = decode(block)
        except CodecError as e:
            raise IdentityError(f"{where}: {e}") from e
        if type(value) is not dict or value.keys() != _FIELDS:
            raise IdentityError(f"{where}: fields must be exactly {sorted(_FIELDS)}")
        sigs = value["signatures"]
        if type(sigs) is not dict or sigs.keys() != _SIGNATURE_FIELDS:
            raise IdentityError(f"{where}: signatures must be exactly {{id, publicKey}}")
        if value["type"] != IDENTITY_TYPE:
            raise IdentityError(
                f"{where}: identity type {value['type']!r} is not supported (only 'publickey')"
            )
        try:
            ident = check_public_key(value["id"])
            public = check_public_key(value["publicKey"])
            id_sig = check_signature(sigs["id"])
            public_sig = check_signature(sigs["publicKey"])
        except IdentityError as e:
            raise IdentityError(f"{where}: {e}") from e
        if not verify_signature(public, ident.encode(), id_sig):
            raise IdentityError(f"{where}: signatures.id is not publicKey's signature of id")
        if not verify_signature(ident, (public + id_sig).encode(), public_sig):
            raise IdentityError(
                f"{where}: signatures.publicKey is not id's signature of publicKey + signatures.id"
            )
        return cls(ident, public, id_sig, public_sig, cid, block)


def _value(ident: str, public: str, id_sig: str, public_sig: str) -> dict[str, IPLDKind]:
    return {
        "id": ident,
        "publicKey": public,
        "signatures": {"id": id_sig, "publicKey": public_sig},
        "type": IDENTITY_TYPE,
    }


class OrbitWriter:
    """What appends OrbitDB entries: an identity and the private signing key it names.

    Args:
        identity: the writer's identity.
        signing_key: the private key whose public key is ``identity.public_key``.

    Raises:
        IdentityError: the signing key is not the identity's ``publicKey``.
    """

    __slots__ = ("identity", "signing_key")

    def __init__(self, identity: OrbitIdentity, signing_key: SigningKey) -> None:
        if signing_key.public_hex != identity.public_key:
            raise IdentityError(f"signing key {signing_key.public_hex} is not the identity's publicKey")
        self.identity = identity
        self.signing_key = signing_key

    @classmethod
    def from_keys(cls, id_key: SigningKey, signing_key: SigningKey) -> OrbitWriter:
        """Make the identity of ``id_key`` and ``signing_key`` and a writer for it."""
        return cls(OrbitIdentity.create(id_key, signing_key), signing_key)

    @classmethod
    def generate(cls) -> OrbitWriter:
        """A writer with two new random keys."""
        return cls.from_keys(SigningKey.generate(), SigningKey.generate())

    def sign(self, data: bytes) -> str:
        """Sign ``data`` with the signing key (hex DER, deterministic, low-S)."""
        return self.signing_key.sign(data)

    def __repr__(self) -> str:
        return f"OrbitWriter(id={self.identity.id})"
