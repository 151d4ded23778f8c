"""The compiled codec against dag_cbor, the pure-Python reference: same bytes, same verdicts."""

from __future__ import annotations

import struct
from typing import Any

import dag_cbor
import multiformats
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ipfs_log import CID, CodecError, IPLDKind
from ipfs_log.codec import decode, encode
from tests.property.strategies import canonical, cids, float_values, int_values, ipld_values, mutate

# multiformats knows a fixed table of codecs and hash functions; a link naming another one is still a
# well-formed CID, which our codec may accept (it must then be canonical) while dag_cbor refuses it.
_REGISTRY_ERRORS = (
    multiformats.multicodec.err.MulticodecKeyError,
    multiformats.multihash.err.MultihashKeyError,
)


def to_reference(value: IPLDKind) -> Any:
    """The same value with our CIDs turned into multiformats CIDs, for dag_cbor.encode."""
    if isinstance(value, CID):
        return multiformats.CID.decode(bytes(value))
    if isinstance(value, list):
        return [to_reference(v) for v in value]
    if isinstance(value, dict):
        return {k: to_reference(v) for k, v in value.items()}
    return value


@given(ipld_values())
def test_encode_matches_reference(value: IPLDKind) -> None:
    assert encode(value) == dag_cbor.encode(to_reference(value))


@given(st.one_of(int_values, float_values, cids))
def test_encode_matches_reference_scalars(value: IPLDKind) -> None:
    assert encode(value) == dag_cbor.encode(to_reference(value))


@given(ipld_values())
def test_round_trip(value: IPLDKind) -> None:
    block = encode(value)
    back = decode(block)
    assert canonical(back) == canonical(value)
    assert encode(back) == block


@pytest.mark.parametrize("value", [-0.0, 0.0, 5e-324, -5e-324, 1e-310])
def test_float_sign_and_subnormals_survive(value: float) -> None:
    block = encode(value)
    assert block[0] == 0xFB, "DAG-CBOR floats are always 64-bit"
    back = decode(block)
    assert isinstance(back, float)
    assert struct.pack(">d", back) == struct.pack(">d", value)


def test_links_decode_as_our_cid() -> None:
    cid = CID.for_block(b"\xa0")
    back = decode(encode({"l": [cid]}))
    assert isinstance(back, dict)
    links = back["l"]
    assert isinstance(links, list)
    assert type(links[0]) is CID
    assert links[0] == cid


def check_same_verdict(data: bytes) -> None:
    """If dag_cbor rejects ``data``, so do we (with CodecError only); if both accept, they agree."""
    try:
        expected = dag_cbor.decode(data)
    except _REGISTRY_ERRORS:
        try:
            value = decode(data)
        except CodecError:
            return
        assert encode(value) == data, "an accepted value must be canonical"
        return
    except Exception:
        with pytest.raises(CodecError):
            decode(data)
        return
    assert canonical(decode(data)) == canonical(expected)


@given(st.binary(max_size=64))
@example(b"")
@example(b"\xff")
@example(b"\xf7")  # undefined
@example(b"\xf9\x3e\x00")  # 16-bit float
@example(b"\xfa\x3f\xc0\x00\x00")  # 32-bit float
@example(b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00")  # NaN
@example(b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00")  # infinity
@example(b"\x18\x01")  # non-minimal int
@example(b"\x9f\xff")  # indefinite array
@example(b"\xa2\x61\x62\x01\x61\x61\x02")  # unsorted keys
@example(b"\xa2\x61\x61\x01\x61\x61\x02")  # duplicate keys
@example(b"\xc1\x01")  # foreign tag
@example(b"\x01\x00")  # trailing byte
@example(b"\x62\xc3\x28")  # invalid UTF-8
@example(b"\xd8\x2a\x41\x00")  # empty link
@example(b"\xd8\x2a\x40")  # link with no multibase byte
def test_arbitrary_bytes_same_verdict(data: bytes) -> None:
    check_same_verdict(data)


_mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("set"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
)


@given(ipld_values(), st.lists(_mutations, min_size=1, max_size=3))
def test_mutated_encodings_same_verdict(value: IPLDKind, mutations: list[tuple[str, int, int]]) -> None:
    check_same_verdict(mutate(encode(value), mutations))


@given(cids, st.sampled_from(["base32", "base58btc"]))
def test_cid_text_round_trip(cid: CID, base: str) -> None:
    text = cid.encode(base)
    back = CID.parse(text)
    assert back == cid
    assert type(back) is CID
    assert str(multiformats.CID.decode(text)) == str(multiformats.CID.decode(bytes(cid)).set(base=base))


@given(cids)
def test_cid_text_matches_multiformats(cid: CID) -> None:
    reference = multiformats.CID.decode(bytes(cid))
    if cid.version == 1:
        assert str(cid) == str(reference.set(base="base32"))
        assert cid.encode("base58btc") == str(reference.set(base="base58btc"))
    else:
        assert str(cid) == str(reference)
    assert CID.from_bytes(bytes(cid)) == cid


_ENTRY_LINK = st.binary(min_size=32, max_size=32).map(lambda d: CID(b"\x01\x71\x12\x20" + d))
_TIMES = st.one_of(
    st.sampled_from([1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1]),
    st.integers(min_value=1, max_value=2**63 - 1),
)
_LOG_IDS = st.one_of(st.text(max_size=300), st.sampled_from(["", "x" * 23, "x" * 24, "é" * 128, "x" * 256]))


@given(
    _LOG_IDS,
    _TIMES,
    st.lists(_ENTRY_LINK, max_size=30, unique=True),
    st.lists(_ENTRY_LINK, max_size=30, unique=True),
    ipld_values(),
)
def test_entry_envelope_matches_generic_encoder(
    log_id: str, time: int, nexts: list[CID], refs: list[CID], payload: IPLDKind
) -> None:
    """Entries are pieced together byte by byte: the block, the signed bytes and the payload offset
    must be exactly what encoding the whole map gives."""
    from ipfs_log import Identity
    from ipfs_log.entry import Entry
    from ipfs_log.identity import verify

    writer = Identity.from_seed(b"w" * 32)
    entry = Entry.create(writer, log_id, payload, time=time, next=nexts, refs=refs)
    body: dict[str, IPLDKind] = {
        "v": 1,
        "id": log_id,
        "clock": {"id": writer.public_key, "time": time},
        "next": list(nexts),
        "refs": list(refs),
        "payload": payload,
        "key": writer.public_key,
    }
    assert entry.signing_bytes() == encode(body)
    assert entry.block == encode({**body, "sig": entry.sig})
    assert entry.block[entry.payload_offset :] == encode(payload)
    assert verify(writer.public_key, encode(body), entry.sig)
    if nexts or time == 1:  # a valid entry: reading it back checks the signature over the signed bytes
        again = Entry.from_block(entry.cid, entry.block)
        assert again.payload == payload
        assert again.signing_bytes() == entry.signing_bytes()
