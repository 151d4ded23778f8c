"""Properties of the OrbitDB v2 codec, keys and log.

- Entries and identities round-trip through their blocks byte for byte, for any payload.
- Hashes are the one base58btc text of their CID (multiformats agrees), and nothing else parses.
- Any mutation of a signed block is refused with an EntryRejectedError / IdentityError, never another
  exception; malformed signatures never verify and never raise.
- The log's order is OrbitDB's: a direct model of ``traverse()`` in @orbitdb/core (pop the greatest
  entry found so far by LastWriteWins, following ``next``) visits entries in exactly the reverse of
  ``values()``, and ``refs`` are what OrbitDB's ``getReferences`` picks from that traversal. Replicas
  that exchanged all heads agree, whatever the join order.
"""

from __future__ import annotations

import multiformats
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfs_log import CID, CodecError, EntryRejectedError, IdentityError, IPLDKind, MemoryBlockStore
from ipfs_log.codec import decode, encode
from ipfs_log.orbitdb import (
    OrbitEntry,
    OrbitIdentity,
    OrbitLog,
    OrbitWriter,
    SigningKey,
    cid_to_hash,
    hash_to_cid,
    parse_signature,
    verify_signature,
)
from tests.property.strategies import canonical, ipld_values, mutate

WRITERS = [
    OrbitWriter.from_keys(SigningKey(bytes([i]) * 32), SigningKey(bytes([i + 10]) * 32)) for i in (1, 2, 3)
]
ALICE = WRITERS[0]
LOG_ID = "/orbitdb/props"
SEED = OrbitEntry.create(ALICE, LOG_ID, {"op": "PUT", "key": "k", "value": [1, 2.5, None]}, time=1)

_mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "set"]), st.integers(min_value=0), st.integers(1, 255)
    ),
    min_size=1,
    max_size=3,
)


@given(ipld_values().filter(lambda v: v is not None), st.integers(1, 2**53 - 1))
def test_entry_round_trip(payload: IPLDKind, time: int) -> None:
    nxt = [SEED.hash] if time > 1 else []
    entry = OrbitEntry.create(ALICE, LOG_ID, payload, time=time, next=nxt, refs=nxt)
    back = OrbitEntry.from_block(entry.cid, entry.block, log_id=LOG_ID)
    assert back.block == entry.block == encode(decode(entry.block))
    assert canonical(back.payload) == canonical(payload)
    assert (back.time, back.key, back.next, back.refs, back.sig) == (
        time,
        ALICE.identity.public_key,
        tuple(nxt),
        tuple(nxt),
        entry.sig,
    )
    assert back.signing_bytes() == entry.signing_bytes()
    assert verify_signature(back.key, back.signing_bytes(), back.sig)


@given(st.binary(min_size=32, max_size=32))
def test_hash_is_the_one_base58btc_text(digest: bytes) -> None:
    cid = CID(b"\x01\x71\x12\x20" + digest)
    text = cid_to_hash(cid)
    assert text == multiformats.CID.decode(bytes(cid)).encode("base58btc")
    assert hash_to_cid(text) == cid


@given(st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0Ol", max_size=52))
def test_hash_parser_accepts_only_canonical_text(body: str) -> None:
    text = "z" + body
    try:
        cid = hash_to_cid(text)
    except CodecError:
        return
    assert cid_to_hash(cid) == text


@given(_mutations)
def test_mutated_entry_blocks_are_rejected_cleanly(mutations: list[tuple[str, int, int]]) -> None:
    data = mutate(SEED.block, mutations)
    cid = CID.for_block(data)
    if _only_identity_changed(data):
        # identity is not signed: the block is a valid entry, and the log's key binding catches it
        assert OrbitEntry.from_block(cid, data, log_id=LOG_ID).key == SEED.key
        return
    with pytest.raises(EntryRejectedError) as info:
        OrbitEntry.from_block(cid, data, log_id=LOG_ID)
    assert info.value.cid == cid


def _only_identity_changed(data: bytes) -> bool:
    try:
        value = decode(data)
        assert isinstance(value, dict)
        hash_to_cid(value["identity"])
    except (CodecError, AssertionError, KeyError):
        return False
    return encode({**value, "identity": SEED.identity}) == SEED.block


@given(_mutations)
def test_mutated_identity_blocks_are_rejected_cleanly(mutations: list[tuple[str, int, int]]) -> None:
    ident = ALICE.identity
    data = mutate(ident.block, mutations)
    if data == ident.block:
        assert OrbitIdentity.from_block(ident.cid, data) == ident
        return
    with pytest.raises(IdentityError):
        OrbitIdentity.from_block(CID.for_block(data), data)


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=80))
def test_signatures_never_raise(message: bytes, junk: bytes) -> None:
    key = ALICE.signing_key
    sig = key.sign(message)
    r, s = parse_signature(sig)
    assert r > 0
    assert s > 0
    assert verify_signature(key.public_hex, message, sig)
    assert not verify_signature(key.public_hex, message + b"x", sig)
    assert not verify_signature(WRITERS[1].signing_key.public_hex, message, sig)
    assert not verify_signature(key.public_hex, message, junk.hex())
    assert not verify_signature(junk.hex(), message, sig)
    mutated = mutate(bytes.fromhex(sig), [("flip", len(junk), junk[0] or 1)]).hex()
    assert not verify_signature(key.public_hex, message, mutated)


# ------------------------------------------------------------------ the log against a model of OrbitDB


def orbitdb_traverse(log: OrbitLog, roots: list[OrbitEntry]) -> list[OrbitEntry]:
    """@orbitdb/core's traverse(): repeatedly pop the greatest (LastWriteWins) entry discovered so far,
    then discover its ``next`` (refs are not followed)."""

    def lww(e: OrbitEntry) -> tuple[int, str]:
        return (e.time, e.clock_id)

    stack = sorted(roots, key=lww)
    seen = {e.cid for e in stack}
    out = []
    while stack:
        entry = stack.pop()
        out.append(entry)
        for h in entry.next:
            parent = log.get(h)
            if parent.cid not in seen:
                seen.add(parent.cid)
                stack.append(parent)
        stack.sort(key=lww)
    return out


Step = tuple[str, int, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 2), st.integers(0, 3)),
        st.tuples(st.just("join"), st.integers(0, 2), st.integers(0, 2)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(0, 4))
def test_log_matches_orbitdb_traversal_and_refs(ops: list[Step], references_count: int) -> None:
    store = MemoryBlockStore()
    logs = [OrbitLog(LOG_ID, store, writer=w, references_count=references_count) for w in WRITERS]
    for n, (kind, a, b) in enumerate(ops):
        log = logs[a]
        if kind == "join":
            log.join_heads(logs[b].heads)
            continue
        heads = log.heads
        before = orbitdb_traverse(log, heads)
        entry = log.append({"op": "PUT", "key": str(b), "value": n})
        assert list(entry.next) == [h.hash for h in heads]
        assert list(entry.refs) == [e.hash for e in before[len(heads) : len(heads) + references_count]]
        assert entry.time == 1 + max((h.time for h in heads), default=0)
    for log in logs:
        assert orbitdb_traverse(log, log.heads) == list(reversed(log.values()))
        assert log.values() == sorted(log.values(), key=lambda e: e.sort_key)
    # after everyone has everyone's heads, all replicas hold the same log
    for log in logs:
        for other in logs:
            log.join_heads(other.heads)
    first = logs[0]
    for log in logs[1:]:
        assert [e.cid for e in log.values()] == [e.cid for e in first.values()]
        assert [h.cid for h in log.heads] == [h.cid for h in first.heads]
    fresh = OrbitLog(LOG_ID, store)
    fresh.join_heads(first.heads)
    assert [e.cid for e in fresh.values()] == [e.cid for e in first.values()]
