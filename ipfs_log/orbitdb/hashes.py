"""OrbitDB's "hashes": CIDv1 (dag-cbor, sha2-256) written as base58btc strings (``zdpu…``).

OrbitDB v2 entries name their parents, refs and identity by these strings rather than by IPLD links, and
they are part of the signed bytes, so their exact text matters. Parsing accepts only the form OrbitDB
writes: ``z`` + base58btc of a 36-byte CIDv1 dag-cbor sha2-256, and the text must be the one encoding of
those bytes (no other multibase, no leading-zero games).

>>> cid = CID.for_block(bytes.fromhex("a0"))
>>> text = cid_to_hash(cid)
>>> text[:4], hash_to_cid(text) == cid
('zdpu', True)
"""

from __future__ import annotations

from typing import Final

from ipfs_log.cid import CID
from ipfs_log.errors import CodecError

__all__ = ["cid_to_hash", "hash_to_cid"]

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(_ALPHABET)}
_ENTRY_PREFIX: Final = b"\x01\x71\x12\x20"
_HASH_LENGTH: Final = 49  # "z" + base58 of 36 bytes whose first byte is 0x01
_CACHE_SIZE: Final = 1 << 16
# Every entry names up to 16 refs and its heads by text, so the same hashes are parsed and printed many
# times over; a bounded memo (cleared when full) saves the big-integer base58 arithmetic.
_parsed: dict[str, CID] = {}
_printed: dict[bytes, str] = {}


def cid_to_hash(cid: CID) -> str:
    """Return the base58btc text (``z…``) of a CID, as OrbitDB writes hashes."""
    raw = bytes(cid)
    text = _printed.get(raw)
    if text is not None:
        return text
    n = int.from_bytes(raw, "big")
    chars = []
    while n:
        n, r = divmod(n, 58)
        chars.append(_ALPHABET[r])
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    text = "z" + "1" * zeros + "".join(reversed(chars))
    if len(_printed) >= _CACHE_SIZE:
        _printed.clear()
    _printed[raw] = text
    return text


def hash_to_cid(text: object) -> CID:
    """Parse an OrbitDB hash: a base58btc CIDv1 dag-cbor sha2-256 in its one canonical text.

    Raises:
        CodecError: the text is not such a hash.
    """
    cached = _parsed.get(text) if type(text) is str else None
    if cached is not None:
        return cached
    if type(text) is not str or len(text) != _HASH_LENGTH or text[0] != "z":
        raise CodecError(f"not an OrbitDB hash (base58btc dag-cbor CIDv1): {str(text)[:80]!r}")
    n = 0
    index = _INDEX
    try:
        for c in text[1:]:
            n = n * 58 + index[c]
    except KeyError:
        raise CodecError(f"not base58btc: {text!r}") from None
    if n.bit_length() > 36 * 8:
        raise CodecError(f"not an OrbitDB hash (too long): {text!r}")
    raw = n.to_bytes(36, "big")
    if raw[:4] != _ENTRY_PREFIX:
        raise CodecError(f"not a CIDv1 dag-cbor sha2-256: {text!r}")
    cid = CID(raw)
    if len(_parsed) >= _CACHE_SIZE:
        _parsed.clear()
    _parsed[text] = cid
    return cid
