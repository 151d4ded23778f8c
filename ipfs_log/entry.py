"""Log entries: one signed DAG-CBOR block each.

An entry's block is the canonical DAG-CBOR of::

    {v: 1, id: <log id>, clock: {id: <key>, time: <int>}, next: [<CID>…], refs: [<CID>…],
     payload: <IPLD value>, key: <32-byte Ed25519 public key>, sig: <64-byte signature>}

and its CID is CIDv1(dag-cbor, sha2-256) of those bytes. ``sig`` signs the DAG-CBOR of the same map
without ``sig`` (:meth:`Entry.signing_bytes`). The key that verifies ``sig`` is the key access control
checks, and ``clock.id`` must equal it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.clock import Clock
from ipfs_log.codec import IPLDKind, check_links, decode_unchecked_links, encode
from ipfs_log.errors import (
    CodecError,
    EntryDecodeError,
    HashMismatchError,
    InvalidSignatureError,
    LogIdMismatchError,
    PermissionDeniedError,
    SignerMismatchError,
)
from ipfs_log.identity import Identity, key_to_did, verify

__all__ = ["ENTRY_VERSION", "Entry", "Limits"]

ENTRY_VERSION: Final = 1
_FIELDS: Final = frozenset(("v", "id", "clock", "next", "refs", "payload", "key", "sig"))
_CLOCK_FIELDS: Final = frozenset(("id", "time"))
_MAX_TIME: Final = 2**63 - 1
_ENTRY_PREFIX: Final = b"\x01\x71\x12\x20"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what an entry from outside may hold; each is checked before the signature."""

    max_entry_bytes: int = 1_000_000
    """Largest accepted block: Kubo's RPC takes request bodies under 1 MiB."""
    max_next: int = 256
    """Most ``next`` links: one per concurrent head merged by the writer."""
    max_refs: int = 64
    """Most ``refs`` skip pointers; a writer puts at most ``log2(length)`` of them."""


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """A verified, immutable log entry and the exact block it was read from or written as.

    Build entries with :meth:`create` (sign a new one) or :meth:`from_block` (verify one from outside);
    the constructor itself checks nothing. Two entries are equal when their CIDs are.
    """

    cid: CID
    block: bytes
    log_id: str
    time: int
    key: bytes
    next: tuple[CID, ...]
    refs: tuple[CID, ...]
    payload: IPLDKind
    sig: bytes
    sort_key: tuple[int, bytes, bytes]
    """``(time, key, bytes(cid))``: the log's total order."""

    @property
    def clock(self) -> Clock:
        """The entry's Lamport clock: its time and its writer's key."""
        return Clock(self.time, self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and other.cid == self.cid

    def __hash__(self) -> int:
        return hash(self.cid)

    def __repr__(self) -> str:
        return f"Entry({self.cid}, time={self.time}, payload={self.payload!r})"

    def signing_bytes(self) -> bytes:
        """The bytes the signature covers: the entry's DAG-CBOR without ``sig``."""
        return encode(_body(self.log_id, self.key, self.time, self.next, self.refs, self.payload))

    @classmethod
    def create(
        cls,
        identity: Identity,
        log_id: str,
        payload: IPLDKind,
        *,
        time: int,
        next: Sequence[CID] = (),
        refs: Sequence[CID] = (),
    ) -> Entry:
        """Sign a new entry. The caller (the log) chooses ``time``, ``next`` and ``refs``.

        Raises:
            CodecError: the payload is not an IPLD value.
        """
        key = identity.public_key
        body = _body(log_id, key, time, next, refs, payload)
        sig = identity.sign(encode(body))
        body["sig"] = sig
        block = encode(body)
        cid = CID.for_block(block)
        return cls(
            cid, block, log_id, time, key, tuple(next), tuple(refs), payload, sig,
            (time, key, bytes(cid)),
        )  # fmt: skip

    @classmethod
    def from_block(
        cls,
        cid: CID,
        block: bytes,
        *,
        log_id: str | None = None,
        access: AccessController | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> Entry:
        """Verify an untrusted block as the entry ``cid`` and return it.

        Checks, in order: size, hash, canonical DAG-CBOR, fields and types, log id, ``clock.id == key``,
        permission, signature. The clock rule needs the entry's parents and is checked by the log.

        Raises:
            EntryDecodeError: too large, not canonical DAG-CBOR, or a missing, extra or mistyped field.
            HashMismatchError: the block does not hash to ``cid``.
            LogIdMismatchError: ``log_id`` is given and the entry names another log.
            SignerMismatchError: ``clock.id`` is not ``key``.
            PermissionDeniedError: ``access`` is given and refuses the key.
            InvalidSignatureError: the signature does not verify.
        """
        if len(block) > limits.max_entry_bytes:
            raise EntryDecodeError(f"{len(block)} bytes is over the {limits.max_entry_bytes}-byte limit", cid)
        if not cid.is_entry_cid:
            raise EntryDecodeError("entries are CIDv1 dag-cbor sha2-256", cid)
        if hashlib.sha256(block).digest() != bytes(cid)[4:]:
            raise HashMismatchError("block bytes do not hash to the CID", cid)
        try:
            body = decode_unchecked_links(block)
        except CodecError as e:
            raise EntryDecodeError(str(e), cid) from e
        if not isinstance(body, dict) or body.keys() != _FIELDS:
            raise EntryDecodeError(f"fields must be exactly {sorted(_FIELDS)}", cid)
        v, lid, clock, nxt, refs, key, sig = (
            body["v"], body["id"], body["clock"], body["next"], body["refs"], body["key"],
            body["sig"],
        )  # fmt: skip
        if type(v) is not int or v != ENTRY_VERSION:
            raise EntryDecodeError(f"unsupported entry version {v!r}", cid)
        if type(lid) is not str:
            raise EntryDecodeError("id must be a string", cid)
        if type(key) is not bytes or len(key) != 32:
            raise EntryDecodeError("key must be a 32-byte Ed25519 public key", cid)
        if type(sig) is not bytes or len(sig) != 64:
            raise EntryDecodeError("sig must be a 64-byte Ed25519 signature", cid)
        if type(clock) is not dict or clock.keys() != _CLOCK_FIELDS:
            raise EntryDecodeError("clock must be exactly {id, time}", cid)
        if type(clock["id"]) is not bytes:
            raise EntryDecodeError("clock.id must be bytes (the writer's public key)", cid)
        time = clock["time"]
        if type(time) is not int or not 1 <= time <= _MAX_TIME:
            raise EntryDecodeError(f"clock.time must be an int in [1, 2**63), got {time!r}", cid)
        next_ = _links(nxt, "next", limits.max_next, cid)
        refs_ = _links(refs, "refs", limits.max_refs, cid)
        if block.count(b"\xd8\x2a") > len(next_) + len(refs_):  # the payload may hold links
            try:
                check_links(body["payload"])
            except CodecError as e:
                raise EntryDecodeError(f"payload: {e}", cid) from e
        if not next_ and time != 1:
            raise EntryDecodeError(f"an entry with no next has clock.time 1, not {time}", cid)
        if log_id is not None and lid != log_id:
            raise LogIdMismatchError(f"belongs to log {lid!r}, not {log_id!r}", cid)
        if clock["id"] != key:
            raise SignerMismatchError("clock.id is not the signing key", cid)
        if access is not None and not access.can_write(key):
            raise PermissionDeniedError(f"writer {key_to_did(key)} may not write", cid, key)
        del body["sig"]
        if not verify(key, encode(body), sig):
            raise InvalidSignatureError(f"signature by {key.hex()} does not verify", cid, key)
        return cls(
            cid, block, lid, time, key, next_, refs_, body["payload"], sig,
            (time, key, bytes(cid)),
        )  # fmt: skip


def _body(
    log_id: str,
    key: bytes,
    time: int,
    next: Sequence[CID],
    refs: Sequence[CID],
    payload: IPLDKind,
) -> dict[str, IPLDKind]:
    return {
        "v": ENTRY_VERSION,
        "id": log_id,
        "clock": {"id": key, "time": time},
        "next": list(next),
        "refs": list(refs),
        "payload": payload,
        "key": key,
    }


def _links(value: IPLDKind, field: str, limit: int, cid: CID) -> tuple[CID, ...]:
    if type(value) is not list:
        raise EntryDecodeError(f"{field} must be a list of links", cid)
    if len(value) > limit:
        raise EntryDecodeError(f"{field} has {len(value)} links, over the limit of {limit}", cid)
    for link in value:
        if type(link) is not CID or len(link) != 36 or not link.startswith(_ENTRY_PREFIX):
            raise EntryDecodeError(f"{field} must hold dag-cbor sha2-256 CIDv1 links", cid)
    links: tuple[CID, ...] = tuple(value)  # type: ignore[arg-type]  # checked just above
    if len(frozenset(links)) != len(links):
        raise EntryDecodeError(f"{field} names a link twice", cid)
    return links
