"""Ed25519 identities: a writer's signing key, its public key, and its ``did:key`` text form.

>>> alice = Identity.from_seed(bytes(32))
>>> alice.did
'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
>>> sig = alice.sign(b"hello")
>>> verify(alice.public_key, b"hello", sig)
True
>>> verify(alice.public_key, b"hullo", sig)
False
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

from ipfs_log import base58
from ipfs_log.errors import IdentityError

__all__ = ["Identity", "key_from_did", "key_to_did", "verify"]

PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
_ED25519_PUB: Final = b"\xed\x01"  # multicodec ed25519-pub as an unsigned varint
SEED_BYTES: Final = 32
_sodium: ModuleType | None = None
_BAD_SIGNATURE: tuple[type[Exception], ...] = (ValueError, TypeError)


def _bindings() -> ModuleType:
    """Return the libsodium bindings, imported on first use (loading them takes milliseconds)."""
    global _sodium, _BAD_SIGNATURE
    if _sodium is None:
        import nacl.bindings
        import nacl.exceptions

        _BAD_SIGNATURE = (nacl.exceptions.CryptoError, ValueError, TypeError)
        _sodium = nacl.bindings
    return _sodium


class Identity:
    """A writer: an Ed25519 key pair. Create with :meth:`generate` or :meth:`from_seed`.

    The public key is what the log records (``entry.key`` and ``clock.id``) and what access control
    checks; the 32-byte seed is the secret to keep. The key pair is derived from the seed when first
    needed (a command that only reads never loads the signing code).
    """

    __slots__ = ("_pair", "seed")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise IdentityError("an Ed25519 seed is exactly 32 bytes")
        self.seed: bytes = seed
        self._pair: tuple[bytes, bytes] | None = None

    def _keys(self) -> tuple[bytes, bytes]:
        pair = self._pair
        if pair is None:  # racing threads derive the same pair: either assignment is right
            public, secret = _bindings().crypto_sign_seed_keypair(self.seed)
            pair = self._pair = (bytes(public), bytes(secret))
        return pair

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._keys()[0]

    @classmethod
    def generate(cls) -> Identity:
        """Create a new identity from 32 random bytes of the operating system's generator."""
        import os

        return cls(os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Recreate an identity from its 32-byte secret seed.

        Raises:
            IdentityError: the seed is not 32 bytes.
        """
        return cls(seed)

    @property
    def did(self) -> str:
        """The public key as ``did:key:z6Mk…`` (multicodec ed25519-pub, base58btc)."""
        return key_to_did(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``data``."""
        signed: bytes = _bindings().crypto_sign(data, self._keys()[1])
        return signed[:SIGNATURE_BYTES]

    def __repr__(self) -> str:
        return f"Identity({self.did!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)


def verify(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    sodium = _bindings()
    try:
        sodium.crypto_sign_open(signature + data, public_key)
    except _BAD_SIGNATURE:
        return False
    return True


def key_to_did(public_key: bytes) -> str:
    """Return the ``did:key`` text of a 32-byte Ed25519 public key.

    Raises:
        IdentityError: the key is not 32 bytes.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise IdentityError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return "did:key:z" + base58.encode(_ED25519_PUB + public_key)


def key_from_did(did: str) -> bytes:
    """Return the 32-byte public key named by a ``did:key:z6Mk…`` string.

    Raises:
        IdentityError: the text is not a did:key for an Ed25519 key.
    """
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise IdentityError(f"not a base58btc did:key: {did!r}")
    try:
        raw = base58.decode(did[len("did:key:z") :])
    except ValueError as e:
        raise IdentityError(f"not a base58btc did:key: {did!r}") from e
    if raw[:2] != _ED25519_PUB or len(raw) != 2 + PUBLIC_KEY_BYTES:
        raise IdentityError(f"did:key is not an Ed25519 public key: {did!r}")
    return bytes(raw[2:])
