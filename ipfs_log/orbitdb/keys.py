"""secp256k1 keys and signatures exactly as OrbitDB JS (``@libp2p/crypto`` 5) makes and checks them.

A signature is ECDSA over secp256k1 of ``sha256(data)``, with the nonce from RFC 6979 (deterministic),
``s`` normalised to the lower half of the group order (low-S), DER-encoded, and written as a lowercase hex
string. A public key is the 33-byte compressed point, also as lowercase hex. Deterministic signing makes
orbit's signatures byte-equal to OrbitDB's for the same key and bytes (``cryptography`` >= 43 offers RFC
6979 through ``ECDSA(..., deterministic_signing=True)``).

Parsing is strict: a signature must be minimal DER with both integers in range and ``s`` low, and a key
must be a lowercase-hex compressed point on the curve. Anything else does not verify.

>>> key = SigningKey.from_hex("11" * 32)
>>> sig = key.sign(b"hello")
>>> verify_signature(key.public_hex, b"hello", sig), verify_signature(key.public_hex, b"hullo", sig)
(True, False)
>>> sig == key.sign(b"hello")  # deterministic
True
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ipfs_log.errors import IdentityError

__all__ = [
    "CURVE_ORDER",
    "PUBLIC_KEY_HEX_LENGTH",
    "SigningKey",
    "check_public_key",
    "check_signature",
    "parse_signature",
    "verify_signature",
]

CURVE_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order ``n`` of secp256k1's group."""
_HALF_ORDER: Final = CURVE_ORDER // 2
PUBLIC_KEY_HEX_LENGTH: Final = 66
"""A compressed secp256k1 public key is 33 bytes, 66 hex characters."""
_MAX_SIGNATURE_HEX: Final = 2 * 72  # DER of two 33-byte integers: 2 + 2 * (2 + 33)
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_CURVE: Final = ec.SECP256K1()
_VERIFY: Final = ec.ECDSA(hashes.SHA256())
_SIGN: Final = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_KEY_CACHE_SIZE: Final = 4096
_public_keys: dict[str, ec.EllipticCurvePublicKey] = {}


class SigningKey:
    """A secp256k1 private key that signs as OrbitDB JS does.

    Args:
        secret: the 32-byte private scalar, big-endian (``1 <= secret < n``).

    Raises:
        IdentityError: the secret is not 32 bytes or not a valid scalar.
    """

    __slots__ = ("_key", "public_hex", "secret")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise IdentityError("a secp256k1 private key is exactly 32 bytes")
        scalar = int.from_bytes(secret, "big")
        if not 1 <= scalar < CURVE_ORDER:
            raise IdentityError("a secp256k1 private key must be in [1, n)")
        self.secret: bytes = secret
        self._key = ec.derive_private_key(scalar, _CURVE)
        point = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        self.public_hex: str = point.hex()
        """The compressed public key as lowercase hex, as OrbitDB writes it."""

    @classmethod
    def from_hex(cls, text: str) -> SigningKey:
        """Load a private key from 64 hex characters.

        Raises:
            IdentityError: the text is not 32 bytes of hex, or not a valid scalar.
        """
        try:
            secret = bytes.fromhex(text)
        except (TypeError, ValueError) as e:
            raise IdentityError("a secp256k1 private key is 64 hex characters") from e
        return cls(secret)

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a new key from the operating system's random generator."""
        while True:
            secret = os.urandom(32)
            if 1 <= int.from_bytes(secret, "big") < CURVE_ORDER:
                return cls(secret)

    def sign(self, data: bytes) -> str:
        """Return the deterministic, low-S, DER signature of ``sha256(data)`` as lowercase hex.

        Raises:
            IdentityError: the installed OpenSSL cannot sign deterministically (RFC 6979 needs
                OpenSSL 3.2, which recent ``cryptography`` wheels bundle).
        """
        try:
            der = self._key.sign(data, _SIGN)
        except UnsupportedAlgorithm as e:
            raise IdentityError(f"deterministic ECDSA (RFC 6979) is not available here: {e}") from e
        r, s = decode_dss_signature(der)
        return encode_dss_signature(r, min(s, CURVE_ORDER - s)).hex()

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_hex})"


def check_public_key(text: object) -> str:
    """Return ``text`` if it is a compressed secp256k1 public key in lowercase hex.

    Only the form is checked here (66 hex digits, prefix ``02`` or ``03``); whether the point is on the
    curve is checked when a signature is verified against it.

    Raises:
        IdentityError: the text is not of that form.
    """
    if (
        type(text) is not str
        or len(text) != PUBLIC_KEY_HEX_LENGTH
        or text[:2] not in ("02", "03")
        or not _HEX_DIGITS.issuperset(text)
    ):
        raise IdentityError(f"not a compressed secp256k1 public key in lowercase hex: {text!r}")
    return text


def parse_signature(text: object) -> tuple[int, int]:
    """Return ``(r, s)`` of a signature in OrbitDB's form: lowercase hex of strict DER, low ``s``.

    Raises:
        IdentityError: not lowercase hex, not minimal DER, an integer out of range, or a high ``s``.
    """
    if type(text) is not str or not 16 <= len(text) <= _MAX_SIGNATURE_HEX or len(text) % 2:
        raise IdentityError(f"a signature is 8 to 72 bytes of lowercase hex, got {str(text)[:160]!r}")
    if not _HEX_DIGITS.issuperset(text):
        raise IdentityError("a signature is lowercase hex")
    der = bytes.fromhex(text)
    if der[0] != 0x30 or der[1] != len(der) - 2:
        raise IdentityError("signature is not a DER SEQUENCE of its own length")
    r, pos = _der_integer(der, 2)
    s, pos = _der_integer(der, pos)
    if pos != len(der):
        raise IdentityError("signature has bytes after its two integers")
    if not (1 <= r < CURVE_ORDER and 1 <= s < CURVE_ORDER):
        raise IdentityError("signature integers are out of range")
    if s > _HALF_ORDER:
        raise IdentityError("signature is not low-S (OrbitDB and noble-curves write low-S only)")
    return r, s


def check_signature(text: object) -> str:
    """Return ``text`` if it is a signature in OrbitDB's form (see :func:`parse_signature`).

    Raises:
        IdentityError: it is not.
    """
    parse_signature(text)
    assert isinstance(text, str)  # parse_signature accepts strings only
    return text


def _der_integer(der: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(der) or der[pos] != 0x02:
        raise IdentityError("signature: expected a DER INTEGER")
    length = der[pos + 1]
    start, end = pos + 2, pos + 2 + length
    if length == 0 or length > 33 or end > len(der):
        raise IdentityError("signature: DER INTEGER has a bad length")
    body = der[start:end]
    if body[0] & 0x80:
        raise IdentityError("signature: DER INTEGER is negative")
    if length > 1 and body[0] == 0 and not body[1] & 0x80:
        raise IdentityError("signature: DER INTEGER is not minimally encoded")
    return int.from_bytes(body, "big"), end


def _public_key(public_hex: str) -> ec.EllipticCurvePublicKey:
    key = _public_keys.get(public_hex)
    if key is None:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, bytes.fromhex(public_hex))
        if len(_public_keys) >= _KEY_CACHE_SIZE:
            _public_keys.clear()
        _public_keys[public_hex] = key
    return key


def verify_signature(public_hex: str, data: bytes, signature_hex: str) -> bool:
    """Return whether ``signature_hex`` is OrbitDB's signature of ``data`` by ``public_hex``.

    False for a malformed key or signature (see :func:`check_public_key`, :func:`parse_signature`), a
    point not on the curve, or a signature that does not verify.
    """
    try:
        check_public_key(public_hex)
        r, s = parse_signature(signature_hex)
        key = _public_key(public_hex)
    except (IdentityError, ValueError):
        return False
    try:
        key.verify(encode_dss_signature(r, s), data, _VERIFY)
    except InvalidSignature:
        return False
    return True
