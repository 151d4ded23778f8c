"""The native base58btc and the CID/did:key fast paths agree with the multiformats package (the oracle)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID as MFCID
from multiformats import multibase

from ipfs_log import base58
from ipfs_log.cid import CID
from ipfs_log.errors import CodecError, IdentityError
from ipfs_log.identity import key_from_did, key_to_did


@given(st.binary(max_size=80))
def test_encode_matches_multibase(data: bytes) -> None:
    assert "z" + base58.encode(data) == multibase.encode(data, "base58btc")
    assert base58.decode(base58.encode(data)) == data


@given(st.text(alphabet=base58.ALPHABET, max_size=60))
def test_decode_matches_multibase(text: str) -> None:
    assert base58.decode(text) == multibase.decode("z" + text)


def test_decode_refuses_characters_outside_the_alphabet() -> None:
    for bad in ("0", "O", "I", "l", "+", "é"):
        with pytest.raises(ValueError, match="not a base58btc character"):
            base58.decode("abc" + bad)


@given(st.binary(min_size=32, max_size=32))
def test_entry_cids_parse_as_multiformats_does(digest: bytes) -> None:
    cid = CID(b"\x01\x71\x12\x20" + digest)
    for text in (cid.encode("base58btc"), cid.encode("base32")):
        assert text == MFCID.decode(text).encode("base58btc" if text[0] == "z" else "base32")
        assert CID.parse(text) == cid == CID(bytes(MFCID.decode(text)))


@given(st.binary(min_size=32, max_size=32), st.sampled_from(["z", "b"]), st.integers(1, 49), st.characters())
def test_a_changed_cid_text_is_refused_or_parses_as_multiformats_does(
    digest: bytes, base: str, at: int, char: str
) -> None:
    cid = CID(b"\x01\x71\x12\x20" + digest)
    text = cid.encode("base58btc" if base == "z" else "base32")
    changed = text[:at] + char + text[at + 1 :]
    try:
        expected: bytes | None = bytes(MFCID.decode(changed))
    except Exception:
        expected = None
    try:
        got: bytes | None = bytes(CID.parse(changed))
    except CodecError:
        got = None
    assert got == expected


def test_a_non_canonical_base32_text_falls_back_to_the_full_parser() -> None:
    cid = CID.for_block(b"\xa0")
    upper = "B" + base64.b32encode(cid).decode().rstrip("=")  # multibase base32upper
    assert CID.parse(upper) == cid


@given(st.binary(min_size=32, max_size=32))
def test_did_key_matches_multibase(key: bytes) -> None:
    did = key_to_did(key)
    assert did == "did:key:" + multibase.encode(b"\xed\x01" + key, "base58btc")
    assert key_from_did(did) == key


@pytest.mark.parametrize("bad", ["did:key:z", "did:key:z0OIl", "did:key:z1111", "did:key:zabc"])
def test_malformed_did_keys_are_refused(bad: str) -> None:
    with pytest.raises(IdentityError):
        key_from_did(bad)
