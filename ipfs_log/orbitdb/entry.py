"""OrbitDB v2 entries (``@orbitdb/core`` 2.x to 4.x): one signed DAG-CBOR block each.

An entry's block is the canonical DAG-CBOR of::

    {v: 2, id: <log id>, key: <hex signing key>, sig: <hex DER signature>, next: [<hash>…],
     refs: [<hash>…], clock: {id: <hex key>, time: <int>}, payload: <IPLD value>, identity: <hash>}

where a *hash* is a CIDv1 (dag-cbor, sha2-256) as a base58btc string (not an IPLD link), and ``identity``
is the hash of the writer's identity block (:mod:`ipfs_log.orbitdb.identity`). ``sig`` signs the
DAG-CBOR of ``{id, payload, next, refs, clock, v}`` (:meth:`OrbitEntry.signing_bytes`) with the key in
``key``. The entry's CID is CIDv1(dag-cbor, sha2-256) of the whole block.

:meth:`OrbitEntry.from_block` checks what one block can show: size, hash, canonical encoding, exact
fields and types, bounded ``next``/``refs``, ``clock.id == key``, and the signature. What needs other
blocks (the identity chain, ``key == identity.publicKey``, write permission, the clock rule) is checked
by :class:`ipfs_log.orbitdb.OrbitLog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, decode, encode
from ipfs_log.entry import DEFAULT_LIMITS, Limits, check_block, check_link_count
from ipfs_log.errors import (
    CodecError,
    EntryDecodeError,
    IdentityError,
    InvalidSignatureError,
    LogIdMismatchError,
    SignerMismatchError,
)
from ipfs_log.orbitdb.hashes import cid_to_hash, hash_to_cid
from ipfs_log.orbitdb.identity import OrbitIdentity, OrbitWriter
from ipfs_log.orbitdb.keys import check_public_key, check_signature, verify_signature

__all__ = ["ENTRY_VERSION", "MAX_TIME", "OrbitEntry"]

ENTRY_VERSION: Final = 2
_FIELDS: Final = frozenset(("v", "id", "key", "sig", "next", "refs", "clock", "payload", "identity"))
_CLOCK_FIELDS: Final = frozenset(("id", "time"))
MAX_TIME: Final = 2**53 - 1
"""Largest clock time: OrbitDB keeps times in JavaScript numbers, exact up to 2**53 - 1."""


@dataclass(frozen=True, slots=True, eq=False)
class OrbitEntry:
    """A verified OrbitDB v2 entry and the exact block it was read from or written as.

    Build with :meth:`create` (sign a new one) or :meth:`from_block` (check one from outside); the
    constructor checks nothing. Two entries are equal when their CIDs are.
    """

    cid: CID
    block: bytes
    log_id: str
    time: int
    key: str
    """The signing key (compressed secp256k1, hex); also ``clock.id``."""
    next: tuple[str, ...]
    """The hashes of the writer's heads at append time, as written (base58btc)."""
    refs: tuple[str, ...]
    """Hashes of older entries (skip pointers), as written."""
    payload: IPLDKind
    sig: str
    identity: str
    """The hash of the writer's identity block."""
    next_cids: tuple[CID, ...]
    refs_cids: tuple[CID, ...]
    identity_cid: CID
    sort_key: tuple[int, str, bytes]
    """``(clock.time, clock.id, CID bytes)``: OrbitDB's LastWriteWins order, with a total tie-break."""
    hash: str
    """The entry's CID as OrbitDB writes it (base58btc)."""

    @property
    def clock_id(self) -> str:
        """``clock.id``: always the signing key (checked on decode)."""
        return self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrbitEntry) and other.cid == self.cid

    def __hash__(self) -> int:
        return hash(self.cid)

    def __repr__(self) -> str:
        return f"OrbitEntry({self.hash}, time={self.time}, payload={self.payload!r})"

    def signing_bytes(self) -> bytes:
        """The bytes ``sig`` covers: DAG-CBOR of ``{id, payload, next, refs, clock, v}``."""
        return encode(_signed(self.log_id, self.payload, self.next, self.refs, self.key, self.time))

    @classmethod
    def create(
        cls,
        writer: OrbitWriter,
        log_id: str,
        payload: IPLDKind,
        *,
        time: int,
        next: Sequence[str] = (),
        refs: Sequence[str] = (),
    ) -> OrbitEntry:
        """Sign a new entry as OrbitDB JS would; the caller (the log) chooses time, next and refs.

        Raises:
            CodecError: the payload is not an IPLD value, or a hash in next/refs is malformed.
            EntryDecodeError: the payload is null (OrbitDB refuses one) or the time is out of range.
        """
        if payload is None:
            raise EntryDecodeError("OrbitDB entries need a payload (null is refused)")
        if type(time) is not int or not 1 <= time <= MAX_TIME:
            raise EntryDecodeError(f"clock.time must be an int in [1, 2**53), got {time!r}")
        next_cids = tuple(hash_to_cid(h) for h in next)
        refs_cids = tuple(hash_to_cid(h) for h in refs)
        identity = writer.identity
        key = identity.public_key
        body = _signed(log_id, payload, tuple(next), tuple(refs), key, time)
        sig = writer.sign(encode(body))
        body.update({"key": key, "sig": sig, "identity": identity.hash})
        block = encode(body)
        cid = CID.for_block(block)
        return cls(
            cid, block, log_id, time, key, tuple(next), tuple(refs), payload, sig, identity.hash,
            next_cids, refs_cids, identity.cid, (time, key, bytes(cid)), cid_to_hash(cid),
        )  # fmt: skip

    @classmethod
    def from_block(
        cls,
        cid: CID,
        block: bytes,
        *,
        log_id: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> OrbitEntry:
        """Check an untrusted block as the OrbitDB entry ``cid`` and return it.

        Checks, in order: size, hash, canonical DAG-CBOR (re-encoding gives the same bytes), exact
        fields and types, bounded and well-formed ``next``/``refs``, log id, ``clock.id == key``, and the
        signature against ``key``.

        Raises:
            EntryDecodeError: too large, not canonical, or a missing, extra or mistyped field.
            HashMismatchError: the block does not hash to ``cid``.
            LogIdMismatchError: ``log_id`` is given and the entry names another log.
            SignerMismatchError: ``clock.id`` is not ``key``.
            InvalidSignatureError: ``sig`` is malformed or does not verify against ``key``.
        """
        check_block(cid, block, limits, kind="OrbitDB entries")
        try:
            body = decode(block)
            canonical = encode(body) == block
        except CodecError as e:
            raise EntryDecodeError(str(e), cid) from e
        if not canonical:
            raise EntryDecodeError("not canonical DAG-CBOR (re-encoding changes the bytes)", cid)
        if type(body) is not dict or body.keys() != _FIELDS:
            raise EntryDecodeError(f"not an OrbitDB v2 entry: fields must be exactly {sorted(_FIELDS)}", cid)
        v, lid, key, sig, clock, payload = (
            body["v"], body["id"], body["key"], body["sig"], body["clock"], body["payload"],
        )  # fmt: skip
        if type(v) is not int or v != ENTRY_VERSION:
            raise EntryDecodeError(f"unsupported entry version {v!r} (OrbitDB v2 entries have v: 2)", cid)
        if type(lid) is not str:
            raise EntryDecodeError("id must be a string", cid)
        if payload is None:
            raise EntryDecodeError("payload is null (OrbitDB never writes one)", cid)
        try:
            key = check_public_key(key)
        except IdentityError as e:
            raise EntryDecodeError(f"key: {e}", cid) from e
        if type(clock) is not dict or clock.keys() != _CLOCK_FIELDS:
            raise EntryDecodeError("clock must be exactly {id, time}", cid)
        time = clock["time"]
        if type(time) is not int or not 1 <= time <= MAX_TIME:
            raise EntryDecodeError(f"clock.time must be an int in [1, 2**53), got {time!r}", cid)
        if type(clock["id"]) is not str:
            raise EntryDecodeError("clock.id must be a string", cid)
        nxt, next_cids = _hashes(body["next"], "next", limits, cid)
        refs, refs_cids = _hashes(body["refs"], "refs", limits, cid)
        identity = body["identity"]
        try:
            identity_cid = hash_to_cid(identity)
        except CodecError as e:
            raise EntryDecodeError(f"identity: {e}", cid) from e
        assert isinstance(identity, str)  # hash_to_cid accepts strings only
        if not next_cids and time != 1:
            raise EntryDecodeError(f"an entry with no next has clock.time 1, not {time}", cid)
        if log_id is not None and lid != log_id:
            raise LogIdMismatchError(f"belongs to log {lid!r}, not {log_id!r}", cid)
        if clock["id"] != key:
            raise SignerMismatchError(f"clock.id {clock['id']!r} is not the signing key {key}", cid)
        try:
            sig = check_signature(sig)
        except IdentityError as e:
            raise InvalidSignatureError(f"sig: {e}", cid, bytes.fromhex(key)) from e
        signed = encode(_signed(lid, payload, nxt, refs, key, time))
        if not verify_signature(key, signed, sig):
            raise InvalidSignatureError(f"signature by key {key} does not verify", cid, bytes.fromhex(key))
        return cls(
            cid, block, lid, time, key, nxt, refs, payload, sig, identity, next_cids, refs_cids,
            identity_cid, (time, key, bytes(cid)), cid_to_hash(cid),
        )  # fmt: skip

    def check_identity(self, identity: OrbitIdentity) -> None:
        """Check that ``identity`` is the one this entry names and that it holds the signing key.

        This is the check OrbitDB JS 3.x/4.x leaves out: without it, anyone can sign with her own key
        and name the identity of a permitted writer.

        Raises:
            SignerMismatchError: the identity is another block, or ``key`` is not its ``publicKey``.
        """
        if identity.cid != self.identity_cid:
            raise SignerMismatchError(f"names identity {self.identity}, not {identity.hash}", self.cid)
        if identity.public_key != self.key:
            raise SignerMismatchError(
                f"key {self.key} is not the publicKey {identity.public_key} of its identity "
                f"{self.identity} (id {identity.id})",
                self.cid,
            )


def _signed(
    log_id: str, payload: IPLDKind, next: tuple[str, ...], refs: tuple[str, ...], key: str, time: int
) -> dict[str, IPLDKind]:
    return {
        "id": log_id,
        "payload": payload,
        "next": list(next),
        "refs": list(refs),
        "clock": {"id": key, "time": time},
        "v": ENTRY_VERSION,
    }


def _hashes(value: IPLDKind, field: str, limits: Limits, cid: CID) -> tuple[tuple[str, ...], tuple[CID, ...]]:
    if type(value) is not list:
        raise EntryDecodeError(f"{field} must be a list of hashes", cid)
    check_link_count(field, len(value), limits, cid, unit="hashes")
    try:
        cids = tuple(hash_to_cid(h) for h in value)
    except CodecError as e:
        raise EntryDecodeError(f"{field}: {e}", cid) from e
    if len(frozenset(cids)) != len(cids):
        raise EntryDecodeError(f"{field} names a hash twice", cid)
    texts: tuple[str, ...] = tuple(value)  # type: ignore[arg-type]  # all str: hash_to_cid checked
    return texts, cids
