r"""Base58btc (the Bitcoin alphabet), the text of ``did:key`` identities and of orbit addresses.

Pure Python, exact and canonical: decoding then encoding gives the text back (leading ``1`` characters
are leading zero bytes). It spares loading the multiformats package (≈50 ms) on the paths every
command takes: printing and parsing addresses and identities.

>>> encode(b"\x00\x01hello")
'1hfJiz6J'
>>> decode("1hfJiz6J")
b'\x00\x01hello'
"""

from __future__ import annotations

from typing import Final

__all__ = ["ALPHABET", "decode", "encode"]

ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}


def encode(data: bytes) -> str:
    """Return the base58btc text of ``data`` (without a multibase prefix)."""
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 58)
        digits.append(ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def decode(text: str) -> bytes:
    """Return the bytes of base58btc ``text`` (without a multibase prefix).

    Raises:
        ValueError: a character is not in the alphabet.
    """
    n = 0
    index = _INDEX
    for c in text:
        digit = index.get(c)
        if digit is None:
            raise ValueError(f"not a base58btc character: {c!r}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")
