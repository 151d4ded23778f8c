"""Identities: Ed25519 keys, signatures, and their did:key text form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import multibase

from ipfs_log import Identity, IdentityError, OrbitError, WriteList, key_from_did, key_to_did, verify
from tests.conftest import ALICE, BOB

# The did:key spec's test vector for the all-zero seed (and the doctest in identity.py).
ZERO_SEED_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


def test_known_did() -> None:
    ident = Identity.from_seed(bytes(32))
    assert ident.did == ZERO_SEED_DID
    assert key_from_did(ZERO_SEED_DID) == ident.public_key
    assert key_to_did(ident.public_key) == ZERO_SEED_DID


@given(st.binary(min_size=32, max_size=32))
def test_did_round_trip(key: bytes) -> None:
    did = key_to_did(key)
    assert did.startswith("did:key:z6Mk")
    assert key_from_did(did) == key


@given(st.binary(min_size=32, max_size=32))
def test_seed_determines_the_identity(seed: bytes) -> None:
    a, b = Identity.from_seed(seed), Identity(seed)
    assert a == b
    assert hash(a) == hash(b)
    assert a.public_key == b.public_key
    assert len(a.public_key) == 32
    assert a.seed == seed
    assert key_from_did(a.did) == a.public_key
    assert a.did in repr(a)
    assert seed.hex() not in repr(a)


def test_generate_is_random() -> None:
    a, b = Identity.generate(), Identity.generate()
    assert a != b
    assert verify(a.public_key, b"m", a.sign(b"m"))
    assert not verify(b.public_key, b"m", a.sign(b"m"))


def _did(prefix: bytes, key: bytes, base: str = "base58btc") -> str:
    return "did:key:" + multibase.encode(prefix + key, base)


MALFORMED_DIDS = {
    "empty": "",
    "no key": "did:key:",
    "only the base": "did:key:z",
    "other method": "did:web:example.com",
    "no method": ALICE.did[len("did:key:") :],
    "upper-case scheme": ALICE.did.replace("did:key:", "DID:KEY:"),
    "base32": _did(b"\xed\x01", ALICE.public_key, "base32"),
    "base64": _did(b"\xed\x01", ALICE.public_key, "base64"),
    "invalid base58 character": ALICE.did[:-1] + "0",
    "invalid base58 characters": "did:key:zOIl0",
    "secp256k1 key": _did(b"\xe7\x01", bytes([2]) + ALICE.public_key),
    "x25519 key": _did(b"\xec\x01", ALICE.public_key),
    "short key": _did(b"\xed\x01", ALICE.public_key[:31]),
    "long key": _did(b"\xed\x01", ALICE.public_key + b"\0"),
    "no multicodec": _did(b"", ALICE.public_key),
    "trailing text": ALICE.did + "#key-1",
    "leading space": " " + ALICE.did,
}


@pytest.mark.parametrize("did", MALFORMED_DIDS.values(), ids=MALFORMED_DIDS.keys())
def test_malformed_did(did: str) -> None:
    with pytest.raises(IdentityError):
        key_from_did(did)


@pytest.mark.parametrize("value", [None, b"did:key:z6Mk", 42])
def test_did_that_is_not_text(value: object) -> None:
    with pytest.raises(IdentityError):
        key_from_did(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), bytes(64)])
def test_key_to_did_wants_32_bytes(key: bytes) -> None:
    with pytest.raises(IdentityError):
        key_to_did(key)


@pytest.mark.parametrize(
    "seed",
    [b"", bytes(31), bytes(33), bytes(64), "a" * 32, bytearray(32), None, 0],
    ids=["empty", "31", "33", "64", "text", "bytearray", "None", "int"],
)
def test_bad_seed(seed: object) -> None:
    with pytest.raises(IdentityError):
        Identity.from_seed(seed)  # type: ignore[arg-type]
    with pytest.raises(IdentityError):
        Identity(seed)  # type: ignore[arg-type]


def test_identity_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Identity.from_seed(b"short")
    assert issubclass(IdentityError, OrbitError)


def test_sign_and_verify() -> None:
    sig = ALICE.sign(b"hello")
    assert len(sig) == 64
    assert sig == ALICE.sign(b"hello")  # Ed25519 is deterministic
    assert verify(ALICE.public_key, b"hello", sig)
    assert not verify(BOB.public_key, b"hello", sig)
    assert not verify(ALICE.public_key, b"hello!", sig)
    assert not verify(ALICE.public_key, b"", sig)


@given(st.binary(max_size=100), st.data())
def test_verify_is_false_on_any_tampering(data: bytes, draw: st.DataObject) -> None:
    sig = ALICE.sign(data)
    assert verify(ALICE.public_key, data, sig)
    i = draw.draw(st.integers(0, 63))
    bit = draw.draw(st.integers(0, 7))
    bad_sig = bytearray(sig)
    bad_sig[i] ^= 1 << bit
    assert not verify(ALICE.public_key, data, bytes(bad_sig))
    if data:
        j = draw.draw(st.integers(0, len(data) - 1))
        bad_data = bytearray(data)
        bad_data[j] ^= 1 << bit
        assert not verify(ALICE.public_key, bytes(bad_data), sig)
    k = draw.draw(st.integers(0, 31))
    bad_key = bytearray(ALICE.public_key)
    bad_key[k] ^= 1 << bit
    assert not verify(bytes(bad_key), data, sig)


@pytest.mark.parametrize(
    ("key", "sig"),
    [
        (ALICE.public_key, b""),
        (ALICE.public_key, ALICE.sign(b"m")[:63]),
        (ALICE.public_key, ALICE.sign(b"m") + b"\0"),
        (ALICE.public_key[:31], ALICE.sign(b"m")),
        (ALICE.public_key + b"\0", ALICE.sign(b"m")),
        (bytes(32), ALICE.sign(b"m")),
        (b"\xff" * 32, ALICE.sign(b"m")),
        (ALICE.public_key, bytes(64)),
    ],
)
def test_verify_is_false_on_malformed_input(key: bytes, sig: bytes) -> None:
    assert verify(key, b"m", sig) is False


def test_write_list() -> None:
    acl = WriteList([ALICE.public_key])
    assert acl.can_write(ALICE.public_key)
    assert not acl.can_write(BOB.public_key)
    assert acl.keys == frozenset({ALICE.public_key})
    assert WriteList("*").keys == "*"
    assert WriteList.anyone().can_write(BOB.public_key)
    with pytest.raises(IdentityError):
        WriteList("alice")
    with pytest.raises(IdentityError):
        WriteList([b"short"])
    with pytest.raises(IdentityError):
        WriteList([ALICE.did])  # type: ignore[list-item]
