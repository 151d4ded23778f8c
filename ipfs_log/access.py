"""Who may write to a log: a fixed list of public keys, or anyone (``*``).

>>> acl = WriteList([b"k" * 32])
>>> acl.can_write(b"k" * 32), acl.can_write(b"x" * 32)
(True, False)
>>> WriteList.anyone().can_write(b"x" * 32)
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ipfs_log.errors import IdentityError

__all__ = ["AccessController", "WriteList"]


class AccessController(Protocol):
    """What a log asks before admitting an entry: may this (verified) signing key write?"""

    def can_write(self, key: bytes) -> bool:
        """Return whether the holder of ``key`` may append to the log."""
        ...


class WriteList:
    """Write permission for a fixed set of Ed25519 public keys, or for everyone.

    Args:
        keys: the 32-byte public keys allowed to write, or the string ``"*"`` for anyone.

    Raises:
        IdentityError: a key is not 32 bytes.
    """

    __slots__ = ("_anyone", "_keys")

    def __init__(self, keys: Iterable[bytes] | str) -> None:
        if isinstance(keys, str):
            if keys != "*":
                raise IdentityError(f"a write list is keys or '*', not {keys!r}")
            self._anyone = True
            self._keys: frozenset[bytes] = frozenset()
            return
        self._anyone = False
        self._keys = frozenset(keys)
        for key in self._keys:
            if not isinstance(key, bytes) or len(key) != 32:
                raise IdentityError(f"a writer key is 32 bytes, got {key!r}")

    @classmethod
    def anyone(cls) -> WriteList:
        """Return a write list that admits every signer."""
        return cls("*")

    @property
    def keys(self) -> frozenset[bytes] | str:
        """The allowed keys, or ``"*"``."""
        return "*" if self._anyone else self._keys

    def can_write(self, key: bytes) -> bool:
        """Return whether ``key`` is on the list (always True for ``*``)."""
        return self._anyone or key in self._keys

    def __repr__(self) -> str:
        return "WriteList('*')" if self._anyone else f"WriteList({len(self._keys)} keys)"
