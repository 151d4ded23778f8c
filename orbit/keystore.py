"""The keystore: an identity's secret seed in a file only its owner can read, optionally encrypted.

The file is JSON (so a person can see what it is) written atomically with mode 0600::

    {"v": 1, "public_key": "<hex>", "seed": "<hex>"}                                  plain
    {"v": 1, "public_key": "<hex>", "kdf": "argon2id", "opslimit": …, "memlimit": …,
     "salt": "<hex>", "box": "<hex>"}                                                 with a passphrase

With a passphrase the seed is sealed with libsodium's secretbox (XSalsa20-Poly1305) under a key derived
by argon2id, so a wrong passphrase fails authentication instead of giving a wrong key.
:func:`export_identity` and :func:`import_identity` move an identity between directories in the same
format.

>>> from ipfs_log import Identity
>>> alice = Identity.from_seed(bytes(32))
>>> import_identity(export_identity(alice)) == alice
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ipfs_log.errors import IdentityError
from ipfs_log.identity import Identity
from orbit.errors import KeystoreError, WrongPassphraseError
from orbit.files import write_atomically

__all__ = ["Keystore", "export_identity", "import_identity"]

_VERSION: Final = 1
_OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
_MAX_FILE: Final = 64 * 1024


def export_identity(identity: Identity, passphrase: str | bytes | None = None) -> bytes:
    """Return the identity's keystore record, sealed with ``passphrase`` if one is given."""
    record: dict[str, object] = {"v": _VERSION, "public_key": identity.public_key.hex()}
    if passphrase is None:
        record["seed"] = identity.seed.hex()
    else:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = _derive(passphrase, salt, _OPSLIMIT, _MEMLIMIT)
        record |= {
            "kdf": "argon2id",
            "opslimit": _OPSLIMIT,
            "memlimit": _MEMLIMIT,
            "salt": salt.hex(),
            "box": bytes(nacl.secret.SecretBox(key).encrypt(identity.seed)).hex(),
        }
    return json.dumps(record, sort_keys=True).encode() + b"\n"


def import_identity(data: bytes, passphrase: str | bytes | None = None, *, where: object = None) -> Identity:
    """Read an identity from a keystore record made by :func:`export_identity`.

    Raises:
        WrongPassphraseError: the record is encrypted and ``passphrase`` is missing or wrong.
        KeystoreError: the record is malformed, or its seed does not give its public key.
    """
    try:
        record = json.loads(data)
        if not isinstance(record, dict) or record.get("v") != _VERSION:
            raise KeystoreError(f"not a version-{_VERSION} keystore record", where)
        public_key = bytes.fromhex(record["public_key"])
        if "box" in record:
            if record.get("kdf") != "argon2id":
                raise KeystoreError(f"unknown key derivation {record.get('kdf')!r}", where)
            if passphrase is None:
                raise WrongPassphraseError("the keystore is encrypted: a passphrase is needed", where)
            opslimit, memlimit = int(record["opslimit"]), int(record["memlimit"])
            if not (0 < opslimit <= 64 and 0 < memlimit <= 1 << 32):
                raise KeystoreError("key derivation limits out of range", where)
            key = _derive(passphrase, bytes.fromhex(record["salt"]), opslimit, memlimit)
            try:
                seed = nacl.secret.SecretBox(key).decrypt(bytes.fromhex(record["box"]))
            except nacl.exceptions.CryptoError:
                raise WrongPassphraseError("wrong passphrase for the keystore", where) from None
        else:
            seed = bytes.fromhex(record["seed"])
        identity = Identity.from_seed(seed)
    except KeystoreError:
        raise
    except (ValueError, KeyError, TypeError, IdentityError, nacl.exceptions.CryptoError) as e:
        raise KeystoreError(f"malformed keystore record: {e}", where) from e
    if identity.public_key != public_key:
        raise KeystoreError("the seed does not match the recorded public key", where)
    return identity


def _derive(passphrase: str | bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise KeystoreError("salt has the wrong length")
    key: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit
    )
    return key


class Keystore:
    """The identity file of an OrbitDB directory.

    Args:
        path: the file (``<directory>/keystore/identity.json``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        """Return whether the file exists."""
        return self.path.exists()

    def load(self, passphrase: str | bytes | None = None) -> Identity:
        """Read the identity.

        Raises:
            WrongPassphraseError: the file is encrypted and ``passphrase`` is missing or wrong.
            KeystoreError: the file cannot be read (permissions, I/O) or is malformed.
        """
        try:
            with self.path.open("rb") as f:
                data = f.read(_MAX_FILE + 1)
        except OSError as e:
            raise KeystoreError(f"cannot read the keystore: {e.strerror or e}", self.path) from e
        if len(data) > _MAX_FILE:
            raise KeystoreError("keystore file is too large", self.path)
        return import_identity(data, passphrase, where=self.path)

    def save(self, identity: Identity, passphrase: str | bytes | None = None) -> None:
        """Write the identity atomically with mode 0600 (and fsync it).

        Raises:
            KeystoreError: the file cannot be written.
        """
        data = export_identity(identity, passphrase)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(self.path, data, mode=0o600)
        except OSError as e:
            raise KeystoreError(f"cannot write the keystore: {e.strerror or e}", self.path) from e
