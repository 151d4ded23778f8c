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
from typing import Final

from ipfs_log.access import AccessController
from ipfs_log.cid import CID
from ipfs_log.clock import Clock
from ipfs_log.codec import IPLDKind, check_links, decode_unchecked_links, encode
from ipfs_log.errors import (
    CodecError,
    EntryDecodeError,
    EntryTooLargeError,
    HashMismatchError,
    InvalidSignatureError,
    LogIdMismatchError,
    PermissionDeniedError,
    SignerMismatchError,
)
from ipfs_log.frozen import Frozen, frozen_init
from ipfs_log.identity import Identity, key_to_did, verify

__all__ = ["DEFAULT_LIMITS", "ENTRY_VERSION", "Entry", "Limits", "check_block", "check_link_count"]

ENTRY_VERSION: Final = 1
_FIELDS: Final = frozenset(("v", "id", "clock", "next", "refs", "payload", "key", "sig"))
_CLOCK_FIELDS: Final = frozenset(("id", "time"))
_MAX_TIME: Final = 2**63 - 1
_ENTRY_PREFIX: Final = b"\x01\x71\x12\x20"
_set = object.__setattr__


class Limits(Frozen):
    """Bounds on what an entry from outside may hold; each is checked before the signature.

    Attributes:
        max_entry_bytes: largest accepted block (Kubo's RPC takes request bodies under 1 MiB).
        max_next: most ``next`` links: one per concurrent head merged by the writer.
        max_refs: most ``refs`` skip pointers; a writer puts at most ``log2(length)`` of them.
    """

    __match_args__ = ("max_entry_bytes", "max_next", "max_refs")
    __slots__ = __match_args__
    max_entry_bytes: int
    max_next: int
    max_refs: int

    def __init__(self, max_entry_bytes: int = 1_000_000, max_next: int = 256, max_refs: int = 64) -> None:
        frozen_init(self, max_entry_bytes, max_next, max_refs)


DEFAULT_LIMITS: Final = Limits()


def check_block(cid: CID, block: bytes, limits: Limits, *, kind: str = "entries") -> None:
    """Check what an untrusted entry block shows before it is decoded: its size, its CID's form, its hash.

    The first checks of both entry formats (this one and :class:`ipfs_log.orbitdb.OrbitEntry`).

    Args:
        cid: the CID the block was asked for.
        block: the block's bytes.
        limits: the size limit.
        kind: the entry format, as the error names it.

    Raises:
        EntryDecodeError: the block is over ``limits.max_entry_bytes``, or ``cid`` is not a CIDv1
            dag-cbor sha2-256.
        HashMismatchError: the block does not hash to ``cid``.
    """
    if len(block) > limits.max_entry_bytes:
        raise EntryDecodeError(f"{len(block)} bytes is over the {limits.max_entry_bytes}-byte limit", cid)
    if not cid.is_entry_cid:
        raise EntryDecodeError(f"{kind} are CIDv1 dag-cbor sha2-256", cid)
    if hashlib.sha256(block).digest() != cid[4:]:
        raise HashMismatchError("block bytes do not hash to the CID", cid)


def check_link_count(field: str, count: int, limits: Limits, cid: CID, *, unit: str = "links") -> None:
    """Check that an entry's ``next`` or ``refs`` (``field``) holds no more than ``limits`` allow.

    Raises:
        EntryDecodeError: ``count`` is over ``limits.max_next`` (for ``next``) or ``limits.max_refs``.
    """
    limit = limits.max_next if field == "next" else limits.max_refs
    if count > limit:
        raise EntryDecodeError(f"{field} has {count} {unit}, over the limit of {limit}", cid)


class Entry(Frozen):
    """A verified, immutable log entry and the exact block it was read from or written as.

    Build entries with :meth:`create` (sign a new one) or :meth:`from_block` (verify one from outside);
    the constructor itself checks nothing. Two entries are equal when their CIDs are.
    """

    __match_args__ = ("cid", "block", "log_id", "time", "key", "next", "refs", "payload", "sig", "sort_key")
    __slots__ = __match_args__
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

    def __init__(
        self,
        cid: CID,
        block: bytes,
        log_id: str,
        time: int,
        key: bytes,
        next: tuple[CID, ...],
        refs: tuple[CID, ...],
        payload: IPLDKind,
        sig: bytes,
        sort_key: tuple[int, bytes, bytes],
    ) -> None:
        init = _set
        init(self, "cid", cid)
        init(self, "block", block)
        init(self, "log_id", log_id)
        init(self, "time", time)
        init(self, "key", key)
        init(self, "next", next)
        init(self, "refs", refs)
        init(self, "payload", payload)
        init(self, "sig", sig)
        init(self, "sort_key", sort_key)

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
        return _unsigned(self.block, self.log_id)

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
        max_bytes: int | None = None,
    ) -> Entry:
        """Sign a new entry. The caller (the log) chooses ``time``, ``next`` and ``refs``.

        Raises:
            CodecError: the payload is not an IPLD value.
            EntryTooLargeError: the block would be over ``max_bytes``; nothing was signed.
        """
        key = identity.public_key
        payload_bytes = encode(payload)
        front = _front(log_id, key)
        back = _back(key, time, next, refs) + payload_bytes
        size = 1 + len(front) + _SIG_PAIR_LEN + len(back)
        if max_bytes is not None and size > max_bytes:
            raise EntryTooLargeError(size, max_bytes)
        sig = identity.sign(b"\xa7" + front + back)
        block = b"\xa8" + front + _SIG_PAIR + sig + back
        cid = CID.for_block(block)
        return cls(
            cid, block, log_id, time, key, tuple(next), tuple(refs), payload, sig,
            (time, key, bytes(cid)),
        )  # fmt: skip

    @property
    def payload_offset(self) -> int:
        """Where the payload's DAG-CBOR starts in :attr:`block` (it ends the block).

        Computed from the other fields: every entry's block is the canonical encoding of its fields.
        """
        return _payload_start(self.log_id, self.time, len(self.next), len(self.refs))

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
        check_block(cid, block, limits)
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
        next_ = _links(nxt, "next", limits, cid)
        refs_ = _links(refs, "refs", limits, cid)
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
        signed = _unsigned(block, lid)
        if not signed:  # not reached for a canonical block of exactly these fields; kept as a guard
            del body["sig"]
            signed = encode(body)
        if not verify(key, signed, sig):
            raise InvalidSignatureError(f"signature by {key.hex()} does not verify", cid, key)
        return cls(
            cid, block, lid, time, key, next_, refs_, body["payload"], sig,
            (time, key, bytes(cid)),
        )  # fmt: skip


# The entry map's DAG-CBOR, pieced together: canonical key order is by length, then bytes (v, id, key,
# sig, next, refs, clock, payload), so the signed bytes are the block without the sig pair, header 7
# entries instead of 8. The property tests check these bytes against the generic encoder.
_V_PAIR: Final = b"\x61v\x01"
_ID_KEY: Final = b"\x62id"
_KEY_PAIR: Final = b"\x63key\x58\x20"
_SIG_PAIR: Final = b"\x63sig\x58\x40"
_SIG_PAIR_LEN: Final = len(_SIG_PAIR) + 64
_NEXT_KEY: Final = b"\x64next"
_REFS_KEY: Final = b"\x64refs"
_CLOCK_HEAD: Final = b"\x65clock\xa2\x62id\x58\x20"
_TIME_KEY: Final = b"\x64time"
_PAYLOAD_KEY: Final = b"\x67payload"
_LINK: Final = b"\xd8\x2a\x58\x25\x00"
_LINK_LEN: Final = len(_LINK) + 36
_ONE_LINK: Final = b"\x81" + _LINK
_FIXED_BACK: Final = (
    len(_NEXT_KEY) + len(_REFS_KEY) + len(_CLOCK_HEAD) + 32 + len(_TIME_KEY) + len(_PAYLOAD_KEY)
)


def _head(major: int, n: int) -> bytes:
    """A CBOR head: major type and argument, in the shortest form."""
    if n < 24:
        return _SMALL_HEADS[major][n]
    m = major << 5
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 0x1_0000_0000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


_SMALL_HEADS: Final = tuple(tuple(bytes(((major << 5) | n,)) for n in range(24)) for major in range(8))
_FRONTS: dict[tuple[str, bytes], bytes] = {}
_FRONT_LENGTHS: dict[str, int] = {}


def _front(log_id: str, key: bytes) -> bytes:
    """The pairs before ``sig``: v, id, key (remembered per log and writer)."""
    found = _FRONTS.get((log_id, key))
    if found is None:
        text = log_id.encode()
        found = _V_PAIR + _ID_KEY + _head(3, len(text)) + text + _KEY_PAIR + key
        if len(_FRONTS) >= 256:
            _FRONTS.clear()
        _FRONTS[(log_id, key)] = found
    return found


def _links_bytes(links: Sequence[CID]) -> bytes:
    if len(links) == 1:
        return _ONE_LINK + links[0]
    return _head(4, len(links)) + b"".join([_LINK + link for link in links])


def _back(key: bytes, time: int, next: Sequence[CID], refs: Sequence[CID]) -> bytes:
    """The pairs after ``sig`` up to the payload's value: next, refs, clock, and the payload key."""
    return (
        _NEXT_KEY + _links_bytes(next) + _REFS_KEY + _links_bytes(refs)
        + _CLOCK_HEAD + key + _TIME_KEY + _head(0, time) + _PAYLOAD_KEY
    )  # fmt: skip


def _front_length(log_id: str) -> int:
    found = _FRONT_LENGTHS.get(log_id)
    if found is None:
        text = len(log_id.encode())
        found = len(_V_PAIR) + len(_ID_KEY) + len(_head(3, text)) + text + len(_KEY_PAIR) + 32
        if len(_FRONT_LENGTHS) >= 256:
            _FRONT_LENGTHS.clear()
        _FRONT_LENGTHS[log_id] = found
    return found


def _payload_start(log_id: str, time: int, nexts: int, refs: int) -> int:
    """Where the payload's value starts in the block of an entry with these fields."""
    start = 1 + _front_length(log_id) + _SIG_PAIR_LEN + _FIXED_BACK + len(_head(0, time))
    return start + len(_head(4, nexts)) + len(_head(4, refs)) + _LINK_LEN * (nexts + refs)


def _unsigned(block: bytes, log_id: str) -> bytes:
    """The signed bytes of a canonical entry block of log ``log_id`` (b"" if ``sig`` is elsewhere)."""
    at = 1 + _front_length(log_id)
    if block[:1] != b"\xa8" or block[at : at + len(_SIG_PAIR)] != _SIG_PAIR:
        return b""
    return b"\xa7" + block[1:at] + block[at + _SIG_PAIR_LEN :]


def _links(value: IPLDKind, field: str, limits: Limits, cid: CID) -> tuple[CID, ...]:
    if type(value) is not list:
        raise EntryDecodeError(f"{field} must be a list of links", cid)
    check_link_count(field, len(value), limits, cid)
    for link in value:
        if type(link) is not CID or len(link) != 36 or not link.startswith(_ENTRY_PREFIX):
            raise EntryDecodeError(f"{field} must hold dag-cbor sha2-256 CIDv1 links", cid)
    links: tuple[CID, ...] = tuple(value)  # type: ignore[arg-type]  # checked just above
    if len(frozenset(links)) != len(links):
        raise EntryDecodeError(f"{field} names a link twice", cid)
    return links
