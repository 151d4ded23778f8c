r"""Content identifiers as plain bytes with a thin, immutable wrapper.

Inside the core a CID is its binary form (``bytes(cid)``); equality, hashing and ordering use those bytes,
never a multibase text form, because one CID has many texts. The multiformats package is used only at
the edges, to parse and print CIDs in any multibase.

>>> cid = CID.for_block(b"\\xa0")
>>> cid.is_entry_cid
True
>>> CID.parse(str(cid)) == cid
True
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from ipfs_log import base58
from ipfs_log.errors import CodecError

__all__ = ["CID", "DAG_CBOR", "DAG_PB", "RAW", "SHA2_256", "read_uvarint"]

DAG_CBOR: Final = 0x71
DAG_PB: Final = 0x70
RAW: Final = 0x55
SHA2_256: Final = 0x12
_ENTRY_PREFIX: Final = b"\x01\x71\x12\x20"  # CIDv1, dag-cbor, sha2-256, 32-byte digest


class CID(bytes):
    """An immutable content identifier: its binary form (no multibase prefix), as ``bytes``.

    Equality, hashing and ordering are those of the bytes, so they run at C speed and never depend on
    a text encoding. A CID therefore compares equal to its own binary form. Use :meth:`from_bytes` to
    validate untrusted bytes; the constructor checks nothing.
    """

    __slots__ = ()

    @classmethod
    def for_block(cls, block: bytes) -> CID:
        """Return the CIDv1 (dag-cbor, sha2-256) of a DAG-CBOR block."""
        return cls(_ENTRY_PREFIX + hashlib.sha256(block).digest())

    @classmethod
    def for_digest(cls, digest: bytes) -> CID:
        """Return the CIDv1 (dag-cbor, sha2-256) whose digest is ``digest`` (32 bytes, unchecked)."""
        return cls(_ENTRY_PREFIX + digest)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CID:
        """Validate binary CID bytes from outside the process.

        Raises:
            CodecError: the bytes are not a well-formed CIDv0 or CIDv1.
        """
        if len(raw) == 36 and raw[:4] == _ENTRY_PREFIX:
            return cls(raw)
        _cid_parts(raw)
        return cls(raw)

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID from any multibase text form (or a CIDv0 ``Qm…`` string).

        Raises:
            CodecError: the text is not a CID.
        """
        fast = _parse_common(text)
        if fast is not None:
            return cls(fast)
        from multiformats import CID as _MFCID

        try:
            mf = _MFCID.decode(text)
        except Exception:  # multiformats raises many unrelated types
            # multiformats registers some multibases (base32…) on first use, without a lock: when two
            # threads do it at once, one fails with "already exists" although the encoding is now there.
            try:
                mf = _MFCID.decode(text)
            except Exception as e:
                raise CodecError(f"not a CID: {text!r} ({e})") from e
        return cls(bytes(mf))

    @property
    def version(self) -> int:
        """The CID version (0 or 1)."""
        return 0 if len(self) == 34 and self[:2] == b"\x12\x20" else 1

    @property
    def is_entry_cid(self) -> bool:
        """True for a CIDv1 with codec dag-cbor and a sha2-256 digest, the only form entries use."""
        return len(self) == 36 and self[:4] == _ENTRY_PREFIX

    @property
    def hash_code(self) -> int:
        """The multihash function code (0x12 for sha2-256).

        Raises:
            CodecError: the CID's bytes are malformed.
        """
        return SHA2_256 if self.is_entry_cid else _cid_parts(self)[2]

    @property
    def digest(self) -> bytes:
        """The raw multihash digest (for sha2-256: 32 bytes).

        Raises:
            CodecError: the CID's bytes are malformed.
        """
        if self.is_entry_cid:
            return self[4:]
        return self[_cid_parts(self)[3] :]

    def encode(self, base: str = "base32") -> str:
        """Return the multibase text of this CID (``base32`` or ``base58btc``; CIDv0 has no prefix)."""
        if self.version == 0:
            from multiformats import multibase

            return multibase.encode(self, "base58btc")[1:]
        if base == "base32":
            return "b" + base64.b32encode(self).decode("ascii").lower().rstrip("=")
        if base == "base58btc":
            return "z" + base58.encode(self)
        from multiformats import multibase

        return multibase.encode(self, base)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"CID({self.encode()!r})"


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    r"""Read the unsigned LEB128 varint (as multiformats use it) at ``data[pos:]``.

    Returns:
        The value and the position after it.

    Raises:
        CodecError: the varint is truncated, longer than 9 bytes, or not minimally encoded.

    >>> read_uvarint(b"\xed\x01", 0)
    (237, 2)
    """
    value = shift = 0
    for i in range(pos, min(pos + 9, len(data))):
        b = data[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if b == 0 and i > pos:
                raise CodecError(f"varint at byte {pos} is not minimally encoded")
            return value, i + 1
        shift += 7
    raise CodecError(f"varint at byte {pos} is truncated or longer than 9 bytes")


def _cid_parts(raw: bytes) -> tuple[int, int, int, int]:
    """Return ``(version, codec, hash function code, digest start)``, checking the digest length."""
    if len(raw) == 34 and raw[:2] == b"\x12\x20":
        return 0, DAG_PB, SHA2_256, 2  # CIDv0: a bare sha2-256 multihash of a dag-pb block
    version, pos = read_uvarint(raw, 0)
    if version != 1:
        raise CodecError(f"unsupported CID version {version}")
    codec, pos = read_uvarint(raw, pos)
    hash_code, pos = read_uvarint(raw, pos)
    length, pos = read_uvarint(raw, pos)
    if len(raw) - pos != length:
        raise CodecError(f"CID digest length {len(raw) - pos} does not match its header ({length})")
    return version, codec, hash_code, pos


def _parse_common(text: str) -> bytes | None:
    """The bytes of an entry or manifest CID (CIDv1 dag-cbor sha2-256) in base32 or base58btc text.

    Without the multiformats package: only when the text is exactly what :meth:`CID.encode` prints for
    those bytes (so nothing is accepted that the full parser would refuse); None for anything else.
    """
    if len(text) == 59 and text[0] == "b":
        try:
            raw = base64.b32decode(text[1:].upper() + "=" * 5)
        except ValueError:
            return None
        canonical = "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")
    elif 45 <= len(text) <= 60 and text[0] == "z":
        try:
            raw = base58.decode(text[1:])
        except ValueError:
            return None
        canonical = "z" + base58.encode(raw)
    else:
        return None
    if len(raw) != 36 or raw[:4] != _ENTRY_PREFIX or canonical != text:
        return None
    return raw
