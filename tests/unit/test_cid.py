"""CIDs: binary identity, validation of untrusted bytes, multibase text at the edges."""

from __future__ import annotations

import hashlib

import multiformats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID, CodecError
from tests.property.strategies import cids

DIGEST = hashlib.sha256(b"hello").digest()
V1 = CID(b"\x01\x71\x12\x20" + DIGEST)


def test_for_block() -> None:
    cid = CID.for_block(b"hello")
    assert cid == V1
    assert bytes(cid) == b"\x01\x71\x12\x20" + DIGEST
    assert type(bytes(cid)) is bytes
    assert cid.version == 1
    assert cid.is_entry_cid
    assert cid.digest == DIGEST
    assert str(cid) == str(multiformats.CID("base32", 1, "dag-cbor", ("sha2-256", DIGEST)))


def test_equality_ignores_the_text_form() -> None:
    b32, b58 = V1.encode("base32"), V1.encode("base58btc")
    assert b32.startswith("b")
    assert b58.startswith("z")
    assert CID.parse(b32) == CID.parse(b58) == V1
    assert hash(CID.parse(b58)) == hash(V1)
    assert repr(V1) == f"CID({b32!r})"


def test_cid_v0() -> None:
    v0 = CID(b"\x12\x20" + DIGEST)
    assert v0.version == 0
    assert not v0.is_entry_cid
    assert v0.digest == DIGEST
    text = v0.encode()
    assert text.startswith("Qm")
    assert text == v0.encode("base58btc")
    assert CID.parse(text) == v0
    assert CID.from_bytes(bytes(v0)) == v0


def test_other_codecs() -> None:
    raw = CID(b"\x01\x55\x12\x20" + DIGEST)
    assert raw.version == 1
    assert not raw.is_entry_cid
    assert raw.digest == DIGEST
    assert CID.parse(str(raw)) == raw
    assert CID.from_bytes(bytes(raw)) == raw


@given(cids, st.sampled_from(["base32", "base58btc"]))
def test_text_round_trip(cid: CID, base: str) -> None:
    assert CID.parse(cid.encode(base)) == cid
    assert CID.from_bytes(bytes(cid)) == cid


GARBAGE = {
    "empty": b"",
    "one byte": b"\x01",
    "version 2": b"\x02\x71\x12\x20" + DIGEST,
    "version 0 in v1 form": b"\x00\x71\x12\x20" + DIGEST,
    "truncated digest": b"\x01\x71\x12\x20" + DIGEST[:31],
    "long digest": b"\x01\x71\x12\x20" + DIGEST + b"\0",
    "no digest length": b"\x01\x71\x12",
    "non-minimal varint": b"\x81\x00\x71\x12\x20" + DIGEST,
    "unterminated varint": b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "v0 too short": b"\x12\x20" + DIGEST[:31],
    "v0 too long": b"\x12\x20" + DIGEST + b"\0",
    "text": b"bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje",
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_from_bytes_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(CodecError):
        CID.from_bytes(raw)


@given(st.binary(max_size=48))
def test_from_bytes_raises_only_codec_error(raw: bytes) -> None:
    try:
        cid = CID.from_bytes(raw)
    except CodecError:
        return
    assert bytes(cid) == raw
    assert CID.from_bytes(bytes(cid)) == cid


@pytest.mark.parametrize("text", ["", "b", "z", "not a cid", "bafy!", "Qm", V1.encode()[:-2], "b" + "a" * 10])
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(CodecError):
        CID.parse(text)


def test_parse_survives_the_multibase_registration_race(monkeypatch: pytest.MonkeyPatch) -> None:
    """multiformats registers base32 on first use, without a lock. Replay what the losing thread of two
    first parses sees (the encoding appears between its check and its registration, which then raises
    "already exists"): parse must still succeed (measured: a live OrbitDB test failed on this)."""
    from multiformats.multibase import raw

    register = raw._jit_register_encoding

    def lose_the_race(name: str) -> bool:
        register(name)  # the other thread wins...
        return register(name)  # ...and this one raises MultibaseValueError "already exists"

    cid = CID.for_block(b"\xa0")
    monkeypatch.delitem(raw._raw_encodings, "base32", raising=False)
    monkeypatch.setattr(raw, "_jit_register_encoding", lose_the_race)
    assert CID.parse(str(cid)) == cid
