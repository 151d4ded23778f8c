"""Entries from outside are untrusted: every way to forge, bend or bloat one is refused, precisely.

Each crafted block is delivered the way a peer would deliver it: put in a block store under its CID,
then ``log.join_heads([cid], source=that_store)``. Each must raise its own subclass of
:class:`EntryRejectedError` and leave the log as it was. Bodies are signed correctly wherever the
defect is elsewhere, so a lenient decoder would let them in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import (
    CID,
    BlockNotFoundError,
    ClockError,
    Entry,
    EntryDecodeError,
    EntryRejectedError,
    HashMismatchError,
    Identity,
    InvalidSignatureError,
    IPLDKind,
    Limits,
    Log,
    LogIdMismatchError,
    MemoryBlockStore,
    PermissionDeniedError,
    SignerMismatchError,
)
from ipfs_log.codec import decode, encode
from tests.conftest import ALICE, BOB, CAROL, MALLORY, WRITERS
from tests.property.strategies import mutate

LOG_ID = "test-log"
Fields = dict[str, IPLDKind]


# ------------------------------------------------------------------ crafting


def fields(
    identity: Identity = ALICE,
    *,
    time: int = 1,
    next: tuple[CID, ...] = (),
    refs: tuple[CID, ...] = (),
    payload: IPLDKind = "x",
    log_id: str = LOG_ID,
) -> Fields:
    """An entry body without ``sig``, as a writer would build it."""
    key = identity.public_key
    return {
        "v": 1,
        "id": log_id,
        "clock": {"id": key, "time": time},
        "next": list(next),
        "refs": list(refs),
        "payload": payload,
        "key": key,
    }


def signed(body: Fields, signer: Identity = ALICE) -> Fields:
    """``body`` plus the signature of its DAG-CBOR by ``signer``."""
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    return {**unsigned, "sig": signer.sign(encode(unsigned))}


def block(body: Fields, signer: Identity | None = None) -> bytes:
    """The canonical block of ``body`` signed by ``signer``, by default the writer it names as key."""
    if signer is None:
        signer = next(i for i in (ALICE, BOB, CAROL, MALLORY) if i.public_key == body["key"])
    return encode(signed(body, signer))


def deliver(log: Log, data: bytes, *extra: bytes) -> tuple[CID, list[Entry]]:
    """Offer ``data`` (and any ``extra`` blocks) to ``log`` as a peer's head."""
    source = MemoryBlockStore()
    for b in (data, *extra):
        source.put(CID.for_block(b), b)
    cid = CID.for_block(data)
    return cid, log.join_heads([cid], source=source)


def snapshot(log: Log) -> tuple[int, list[CID], list[CID]]:
    return len(log), log.head_cids, [e.cid for e in log]


def reject(log: Log, data: bytes, error: type[EntryRejectedError], *extra: bytes) -> EntryRejectedError:
    """Deliver ``data``; it must raise exactly ``error`` about its CID and leave ``log`` unchanged."""
    before = snapshot(log)
    cid = CID.for_block(data)
    with pytest.raises(error) as info:
        deliver(log, data, *extra)
    assert type(info.value) is error
    assert info.value.cid == cid
    assert str(cid) in str(info.value)
    assert snapshot(log) == before
    assert cid not in log
    assert not log.store.has(cid)
    return info.value


@pytest.fixture
def log(store: MemoryBlockStore) -> Log:
    """Alice's replica with two entries of her own, open to ALICE, BOB and CAROL."""
    log = Log(ALICE, store, log_id=LOG_ID, access=WRITERS)
    log.append("a1")
    log.append("a2")
    return log


def test_a_well_formed_crafted_entry_is_admitted(log: Log) -> None:
    """Positive control for the crafting helpers: a correct block by a writer gets in."""
    head = log.heads[0]
    cid, admitted = deliver(log, block(fields(BOB, time=head.time + 1, next=(head.cid,), payload="b")))
    assert [e.cid for e in admitted] == [cid]
    assert log.head_cids == [cid]
    assert log.get(cid).payload == "b"
    assert log.store.has(cid)


# ------------------------------------------------------------------ signatures and signers


@pytest.mark.parametrize("index", [0, 1, 31, 32, 63])
def test_forged_signature(log: Log, index: int) -> None:
    entry = Entry.create(BOB, LOG_ID, "hi", time=1)
    body = decode(entry.block)
    assert isinstance(body, dict)
    sig = bytearray(entry.sig)
    sig[index] ^= 0x01
    body["sig"] = bytes(sig)
    err = reject(log, encode(body), InvalidSignatureError)
    assert isinstance(err, InvalidSignatureError)
    assert err.key == BOB.public_key


def test_tampered_payload_under_a_valid_signature(log: Log) -> None:
    entry = Entry.create(BOB, LOG_ID, "pay alice 1", time=1)
    body = decode(entry.block)
    assert isinstance(body, dict)
    body["payload"] = "pay alice 1000"
    reject(log, encode(body), InvalidSignatureError)


def test_signed_by_another_writer(log: Log) -> None:
    # names BOB as key and clock.id, but CAROL (also a permitted writer) signed it
    reject(log, block(fields(BOB), signer=CAROL), InvalidSignatureError)


def test_signed_by_a_claiming_clock_id_b(log: Log) -> None:
    body = fields(BOB)
    body["clock"] = {"id": CAROL.public_key, "time": 1}
    reject(log, block(body, signer=BOB), SignerMismatchError)


def test_unauthorised_writer_naming_an_authorised_one(log: Log) -> None:
    """The OrbitDB JS hole: Mallory signs with her own key and names Alice as the writer."""
    body = fields(MALLORY)
    body["clock"] = {"id": ALICE.public_key, "time": 1}
    reject(log, block(body, signer=MALLORY), SignerMismatchError)
    # naming Alice as the key too: the signature no longer verifies
    reject(log, block(fields(ALICE), signer=MALLORY), InvalidSignatureError)


def test_writer_not_in_the_write_list(log: Log) -> None:
    err = reject(log, block(fields(MALLORY), signer=MALLORY), PermissionDeniedError)
    assert isinstance(err, PermissionDeniedError)
    assert err.key == MALLORY.public_key


def test_default_access_is_only_the_owner(store: MemoryBlockStore) -> None:
    own = Log(ALICE, store, log_id=LOG_ID)
    reject(own, block(fields(BOB), signer=BOB), PermissionDeniedError)
    _, admitted = deliver(own, block(fields(ALICE)))
    assert len(admitted) == 1


# ------------------------------------------------------------------ hashes


def test_block_that_does_not_hash_to_its_cid(log: Log) -> None:
    good = Entry.create(BOB, LOG_ID, "good", time=1)
    other = Entry.create(BOB, LOG_ID, "other", time=1)
    source = MemoryBlockStore()
    source.put(good.cid, other.block)  # a valid entry, under the wrong name
    before = snapshot(log)
    with pytest.raises(HashMismatchError) as info:
        log.join_heads([good.cid], source=source)
    assert type(info.value) is HashMismatchError
    assert info.value.cid == good.cid
    assert snapshot(log) == before
    assert not log.store.has(good.cid)


def test_hash_mismatch_in_an_ancestor_admits_nothing(store: MemoryBlockStore) -> None:
    bob = Log(BOB, MemoryBlockStore(), log_id=LOG_ID, access=WRITERS)
    b1, b2, b3 = bob.append("b1"), bob.append("b2"), bob.append("b3")
    source = MemoryBlockStore()
    source.put_many([(b3.cid, b3.block), (b2.cid, b2.block), (b1.cid, b3.block)])
    target = Log(ALICE, store, log_id=LOG_ID, access=WRITERS)
    with pytest.raises(HashMismatchError) as info:
        target.join_heads([b3.cid], source=source)
    assert info.value.cid == b1.cid
    assert len(target) == 0
    assert target.head_cids == []


def test_entry_under_a_non_entry_cid(log: Log) -> None:
    data = block(fields(BOB), signer=BOB)
    raw_cid = CID(b"\x01\x55" + bytes(CID.for_block(data))[2:])  # raw codec, same digest
    source = MemoryBlockStore()
    source.put(raw_cid, data)
    with pytest.raises(EntryDecodeError):
        log.join_heads([raw_cid], source=source)
    assert raw_cid not in log


# ------------------------------------------------------------------ canonical DAG-CBOR


def cbor_head(major: int, n: int) -> bytes:
    """A minimal CBOR head (major type and argument)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def items(body: Fields) -> list[tuple[bytes, bytes]]:
    """The encoded (key, value) pairs of a map, in canonical order."""
    return sorted((encode(k), encode(v)) for k, v in body.items())


def raw_map(pairs: list[tuple[bytes, bytes]], *, indefinite: bool = False) -> bytes:
    body = b"".join(k + v for k, v in pairs)
    if indefinite:
        return b"\xbf" + body + b"\xff"
    return cbor_head(5, len(pairs)) + body


def replace_value(body: Fields, field: str, raw: bytes) -> bytes:
    """The canonical block of ``body`` with one field's encoded value swapped for ``raw``."""
    key = encode(field)
    return raw_map([(k, raw if k == key else v) for k, v in items(body)])


def bob(**kw: IPLDKind) -> Fields:
    return signed(fields(BOB, **kw), BOB)  # type: ignore[arg-type]


def test_raw_builder_reproduces_canonical_bytes(log: Log) -> None:
    body = bob(payload=1.5)
    data = raw_map(items(body))
    assert data == encode(body)
    assert replace_value(body, "payload", encode(1.5)) == data
    _, admitted = deliver(log, data)
    assert len(admitted) == 1


NON_CANONICAL: dict[str, Callable[[], bytes]] = {
    "unsorted keys": lambda: raw_map(list(reversed(items(bob())))),
    "length-first order broken": lambda: raw_map(sorted(items(bob()), key=lambda kv: kv[0][1:])),
    "duplicate key, same value": lambda: raw_map(items(bob())[:1] + items(bob())),
    "duplicate key, other value": lambda: raw_map([(encode("v"), encode(2)), *items(bob())]),
    "non-minimal int (1 byte)": lambda: replace_value(bob(), "v", b"\x18\x01"),
    "non-minimal int (2 bytes)": lambda: replace_value(bob(), "v", b"\x19\x00\x01"),
    "non-minimal int (8 bytes)": lambda: replace_value(bob(), "v", b"\x1b" + (1).to_bytes(8, "big")),
    "non-minimal map length": lambda: b"\xb8\x08" + raw_map(items(bob()))[1:],
    "non-minimal string length": lambda: replace_value(bob(payload="x"), "payload", b"\x78\x01x"),
    "indefinite map": lambda: raw_map(items(bob()), indefinite=True),
    "indefinite array": lambda: replace_value(bob(), "refs", b"\x9f\xff"),
    "indefinite string": lambda: replace_value(bob(payload="x"), "payload", b"\x7f\x61x\xff"),
    "indefinite bytes": lambda: replace_value(bob(payload=b"x"), "payload", b"\x5f\x41x\xff"),
    "16-bit float": lambda: replace_value(bob(payload=1.5), "payload", b"\xf9\x3e\x00"),
    "32-bit float": lambda: replace_value(bob(payload=1.5), "payload", b"\xfa\x3f\xc0\x00\x00"),
    "NaN": lambda: replace_value(bob(payload=0.0), "payload", b"\xfb\x7f\xf8" + bytes(6)),
    "infinity": lambda: replace_value(bob(payload=0.0), "payload", b"\xfb\x7f\xf0" + bytes(6)),
    "undefined": lambda: replace_value(bob(payload=None), "payload", b"\xf7"),
    "foreign tag": lambda: replace_value(bob(payload=1), "payload", b"\xc1\x01"),
    "tag 42 on a string": lambda: replace_value(bob(payload="x"), "payload", b"\xd8\x2a\x61x"),
    "invalid utf-8": lambda: replace_value(bob(payload="x"), "payload", b"\x62\xc3\x28"),
    "trailing byte": lambda: encode(bob()) + b"\x00",
    "two entries": lambda: encode(bob()) + encode(bob(payload="y")),
    "truncated": lambda: encode(bob())[:-1],
    "empty": lambda: b"",
    "break alone": lambda: b"\xff",
}


@pytest.mark.parametrize("make", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_cbor(log: Log, make: Callable[[], bytes]) -> None:
    reject(log, make(), EntryDecodeError)


# ------------------------------------------------------------------ fields and types


def without(name: str) -> Fields:
    body = bob()
    del body[name]
    return body


def with_field(name: str, value: IPLDKind, *, resign: bool = True) -> Fields:
    body = fields(BOB)
    body[name] = value
    return signed(body, BOB) if resign else {**bob(), name: value}


OTHER_CID = CID.for_block(b"other")
BAD_FIELDS: dict[str, Callable[[], Fields]] = {
    **{f"missing {name}": partial(without, name) for name in sorted(fields(BOB).keys() | {"sig"})},
    "extra field": lambda: with_field("extra", 1),
    "v = 2": lambda: with_field("v", 2),
    "v = 0": lambda: with_field("v", 0),
    "v = '1'": lambda: with_field("v", "1"),
    "v = True": lambda: with_field("v", True),
    "v = 1.0": lambda: with_field("v", 1.0),
    "v = None": lambda: with_field("v", None),
    "id is bytes": lambda: with_field("id", LOG_ID.encode()),
    "id is int": lambda: with_field("id", 1),
    "clock is a list": lambda: with_field("clock", [BOB.public_key, 1]),
    "clock missing time": lambda: with_field("clock", {"id": BOB.public_key}),
    "clock missing id": lambda: with_field("clock", {"time": 1}),
    "clock extra field": lambda: with_field("clock", {"id": BOB.public_key, "time": 1, "x": 0}),
    "clock.time = True": lambda: with_field("clock", {"id": BOB.public_key, "time": True}),
    "clock.time = '1'": lambda: with_field("clock", {"id": BOB.public_key, "time": "1"}),
    "clock.time = 1.0": lambda: with_field("clock", {"id": BOB.public_key, "time": 1.0}),
    "clock.time = 0": lambda: with_field("clock", {"id": BOB.public_key, "time": 0}),
    "clock.time = -1": lambda: with_field("clock", {"id": BOB.public_key, "time": -1}),
    "clock.time = 2**63": lambda: with_field("clock", {"id": BOB.public_key, "time": 2**63}),
    "clock.time > 1 without next": lambda: with_field("clock", {"id": BOB.public_key, "time": 2}),
    "clock.id is text": lambda: with_field("clock", {"id": BOB.public_key.hex(), "time": 1}),
    "clock.id is a did": lambda: with_field("clock", {"id": BOB.did, "time": 1}),
    "key is 31 bytes": lambda: with_field("key", BOB.public_key[:31]),
    "key is 33 bytes": lambda: with_field("key", BOB.public_key + b"\0"),
    "key is text": lambda: with_field("key", BOB.public_key.hex()),
    "key is None": lambda: with_field("key", None),
    "sig is 63 bytes": lambda: with_field("sig", bob()["sig"][:63], resign=False),  # type: ignore[index]
    "sig is 65 bytes": lambda: with_field("sig", bob()["sig"] + b"\0", resign=False),  # type: ignore[operator]
    "sig is text": lambda: with_field("sig", "00" * 64, resign=False),
    "next is a link": lambda: with_field("next", OTHER_CID),
    "next is a map": lambda: with_field("next", {}),
    "next holds bytes": lambda: with_field("next", [bytes(OTHER_CID)]),
    "next holds None": lambda: with_field("next", [None]),
    "next holds a raw CID": lambda: with_field("next", [CID(b"\x01\x55" + bytes(OTHER_CID)[2:])]),
    "next holds a CIDv0": lambda: with_field("next", [CID(bytes(OTHER_CID)[2:])]),
    "next twice the same": lambda: with_field("next", [OTHER_CID, OTHER_CID]),
    "refs is text": lambda: with_field("refs", "x"),
    "refs holds text": lambda: with_field("refs", [str(OTHER_CID)]),
    "refs twice the same": lambda: with_field("refs", [OTHER_CID, OTHER_CID]),
}


@pytest.mark.parametrize("make", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_fields(log: Log, make: Callable[[], Fields]) -> None:
    reject(log, encode(make()), EntryDecodeError)


@pytest.mark.parametrize("value", [[], ["entry"], 1, "entry", None, b"entry"])
def test_not_a_map(log: Log, value: IPLDKind) -> None:
    reject(log, encode(value), EntryDecodeError)


# ------------------------------------------------------------------ limits


def test_oversize_entry(log: Log) -> None:
    big = block(fields(BOB, payload=bytes(Limits().max_entry_bytes)), BOB)
    assert len(big) > Limits().max_entry_bytes
    reject(log, big, EntryDecodeError)


def test_entry_size_limit_is_the_logs(store: MemoryBlockStore) -> None:
    data = block(fields(BOB, payload=bytes(400)), BOB)
    small = Log(ALICE, store, log_id=LOG_ID, access=WRITERS, limits=Limits(max_entry_bytes=len(data) - 1))
    reject(small, data, EntryDecodeError)
    exact = Log(
        ALICE, MemoryBlockStore(), log_id=LOG_ID, access=WRITERS, limits=Limits(max_entry_bytes=len(data))
    )
    _, admitted = deliver(exact, data)
    assert len(admitted) == 1


FAKE = [CID.for_block(i.to_bytes(2, "big")) for i in range(300)]


def test_too_many_next(log: Log) -> None:
    n = Limits().max_next + 1
    reject(log, block(fields(BOB, time=2, next=tuple(FAKE[:n])), BOB), EntryDecodeError)


def test_too_many_refs(log: Log) -> None:
    n = Limits().max_refs + 1
    reject(log, block(fields(BOB, refs=tuple(FAKE[:n])), BOB), EntryDecodeError)


def test_next_and_refs_limits_are_the_logs(store: MemoryBlockStore) -> None:
    source = Log(BOB, MemoryBlockStore(), log_id=LOG_ID, access=WRITERS)
    parents = [Entry.create(w, LOG_ID, "p", time=1) for w in (ALICE, BOB, CAROL)]
    extra = [p.block for p in parents]
    cids = tuple(p.cid for p in parents)
    tight = Log(ALICE, store, log_id=LOG_ID, access=WRITERS, limits=Limits(max_next=2, max_refs=2))
    reject(tight, block(fields(BOB, time=2, next=cids), BOB), EntryDecodeError, *extra)
    reject(tight, block(fields(BOB, time=2, next=cids[:1], refs=cids), BOB), EntryDecodeError, *extra)
    _, admitted = deliver(tight, block(fields(BOB, time=2, next=cids[:2], refs=cids[2:]), BOB), *extra)
    assert len(admitted) == 4  # the head, its two parents, and the ref
    assert len(source) == 0


# ------------------------------------------------------------------ clocks and log ids


@pytest.mark.parametrize("time", [1, 2, 4, 1000, 2**63 - 1])
def test_clock_jump(log: Log, time: int) -> None:
    head = log.heads[0]  # a2, time 2: the only honest time on top of it is 3
    reject(log, block(fields(BOB, time=time, next=(head.cid,)), BOB), ClockError)
    _, admitted = deliver(log, block(fields(BOB, time=3, next=(head.cid,)), BOB))
    assert [e.time for e in admitted] == [3]


def test_clock_rule_uses_the_max_of_all_next(log: Log) -> None:
    a2 = log.heads[0]
    b1 = Entry.create(BOB, LOG_ID, "b1", time=1)
    reject(log, block(fields(CAROL, time=2, next=(b1.cid, a2.cid)), CAROL), ClockError, b1.block)
    _, admitted = deliver(log, block(fields(CAROL, time=3, next=(b1.cid, a2.cid)), CAROL), b1.block)
    assert [e.time for e in admitted] == [1, 3]


def test_clock_jump_over_a_parent_fetched_in_the_same_join(log: Log) -> None:
    b1 = Entry.create(BOB, LOG_ID, "b1", time=1)
    reject(log, block(fields(BOB, time=9, next=(b1.cid,)), BOB), ClockError, b1.block)
    assert b1.cid not in log  # nothing from the failed join was admitted


def test_clock_jump_is_caught_when_a_missing_parent_arrives_later(store: MemoryBlockStore) -> None:
    """A head verified while its parent is missing must still meet the clock rule when it resumes."""
    parent = Entry.create(BOB, LOG_ID, "p", time=1)
    evil = block(fields(BOB, time=1000, next=(parent.cid,), payload="win every LWW"), BOB)
    evil_cid = CID.for_block(evil)
    target = Log(ALICE, store, log_id=LOG_ID, access=WRITERS)
    source = MemoryBlockStore()
    source.put(evil_cid, evil)
    with pytest.raises(BlockNotFoundError):
        target.join_heads([evil_cid], source=source)
    assert target.pending == 1
    source.put(parent.cid, parent.block)
    with pytest.raises(ClockError) as info:
        target.resume(source)
    assert info.value.cid == evil_cid
    assert evil_cid not in target
    # the honest parent arrives on the next attempt; the forged child never does
    assert [e.cid for e in target.join_heads([parent.cid], source=source)] == [parent.cid]
    assert target.head_cids == [parent.cid]


def test_wrong_log_id(log: Log) -> None:
    reject(log, block(fields(BOB, log_id="another-log"), BOB), LogIdMismatchError)


def test_entry_of_another_log_through_join(log: Log) -> None:
    other = Log(BOB, MemoryBlockStore(), log_id="another-log", access=WRITERS)
    other.append("elsewhere")
    before = snapshot(log)
    with pytest.raises(LogIdMismatchError):
        log.join(other)
    assert snapshot(log) == before


# ------------------------------------------------------------------ where the bad entry sits


def test_rejected_ancestor_admits_nothing(store: MemoryBlockStore) -> None:
    forged = decode(Entry.create(BOB, LOG_ID, "b1", time=1).block)
    assert isinstance(forged, dict)
    forged["payload"] = "tampered"
    bad = encode(forged)
    child = block(fields(BOB, time=2, next=(CID.for_block(bad),)), BOB)
    target = Log(ALICE, store, log_id=LOG_ID, access=WRITERS)
    with pytest.raises(InvalidSignatureError) as info:
        deliver(target, child, bad)
    assert info.value.cid == CID.for_block(bad)
    assert len(target) == 0


def bad_blocks() -> dict[str, tuple[CID, bytes | None]]:
    """Blocks a ``refs`` link may name: each would fail the join if it were named by ``next``."""
    forged = decode(Entry.create(BOB, LOG_ID, "b1", time=1).block)
    assert isinstance(forged, dict)
    forged["payload"] = "tampered"
    forged_block = encode(forged)
    stranger = block(fields(MALLORY), MALLORY)
    elsewhere = block(fields(BOB, log_id="another-log"), BOB)
    return {
        "forged signature": (CID.for_block(forged_block), forged_block),
        "unauthorised writer": (CID.for_block(stranger), stranger),
        "other log": (CID.for_block(elsewhere), elsewhere),
        "hash mismatch": (CID.for_block(b"not this"), elsewhere),
        "not canonical": (CID.for_block(encode(bob()) + b"\0"), encode(bob()) + b"\0"),
        "missing": (CID.for_block(b"nowhere"), None),
    }


@pytest.mark.parametrize("name", list(bad_blocks()))
def test_rejected_entry_reached_only_through_refs_does_not_fail_the_join(
    store: MemoryBlockStore, name: str
) -> None:
    bad_cid, bad = bad_blocks()[name]
    parent = Entry.create(BOB, LOG_ID, "p", time=1)
    head = block(fields(BOB, time=2, next=(parent.cid,), refs=(bad_cid,)), BOB)
    source = MemoryBlockStore()
    source.put(parent.cid, parent.block)
    source.put(CID.for_block(head), head)
    if bad is not None:
        source.put(bad_cid, bad)
    target = Log(ALICE, store, log_id=LOG_ID, access=WRITERS)
    admitted = target.join_heads([CID.for_block(head)], source=source)
    assert [e.cid for e in admitted] == [parent.cid, CID.for_block(head)]
    assert bad_cid not in target
    assert not target.missing
    assert target.pending == 0
    # the same block named by next is fatal
    via_next = block(fields(BOB, time=3, next=(CID.for_block(head), bad_cid)), BOB)
    source.put(CID.for_block(via_next), via_next)
    expected: type[Exception] = BlockNotFoundError if bad is None else EntryRejectedError
    with pytest.raises(expected):
        target.join_heads([CID.for_block(via_next)], source=source)
    assert CID.for_block(via_next) not in target
    assert len(target) == 2


# ------------------------------------------------------------------ links inside the payload


def test_payload_links_must_be_cids(log: Log) -> None:
    good = bob(payload={"link": OTHER_CID})
    link = encode(OTHER_CID)
    assert link in encode(good)
    _, admitted = deliver(log, encode(good))
    assert admitted[0].payload == {"link": OTHER_CID}
    for bad_link in [
        b"\xd8\x2a\x45\x00\x01\x02\x03\x04",  # 0x00 then not a CID
        b"\xd8\x2a\x41\x00",  # 0x00 and nothing
        b"\xd8\x2a\x58\x24" + bytes(OTHER_CID),  # no 0x00 multibase prefix
        b"\xd8\x2a\x58\x26\x00" + bytes(OTHER_CID) + b"\x00",  # digest longer than its header says
    ]:
        body = bob(payload={"link": OTHER_CID})
        data = encode(body).replace(link, bad_link)
        reject(log, data, EntryDecodeError)


def test_payload_may_link_to_any_cid(log: Log) -> None:
    raw = CID(b"\x01\x55" + bytes(OTHER_CID)[2:])
    v0 = CID(bytes(OTHER_CID)[2:])
    _, admitted = deliver(log, encode(bob(payload=[raw, v0])))
    assert admitted[0].payload == [raw, v0]


# ------------------------------------------------------------------ fuzzing a real block

SEED_PARENT = Entry.create(BOB, LOG_ID, "p", time=1)
SEED_ENTRY = Entry.create(
    BOB,
    LOG_ID,
    {"op": "PUT", "key": "k", "value": [1, -2.5, None, True, b"\x00", OTHER_CID]},
    time=2,
    next=[SEED_PARENT.cid],
    refs=[OTHER_CID],
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "set"]),
            st.integers(min_value=0),
            st.integers(1, 255),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_entry_blocks_are_rejected_cleanly(mutations: list[tuple[str, int, int]]) -> None:
    """Any change to a signed block is refused with an EntryRejectedError, never another exception."""
    data = mutate(SEED_ENTRY.block, mutations)
    cid = CID.for_block(data)
    if data == SEED_ENTRY.block:  # the mutations cancelled out
        assert Entry.from_block(cid, data, log_id=LOG_ID, access=WRITERS) == SEED_ENTRY
        return
    with pytest.raises(EntryRejectedError) as info:
        Entry.from_block(cid, data, log_id=LOG_ID, access=WRITERS)
    assert info.value.cid == cid
