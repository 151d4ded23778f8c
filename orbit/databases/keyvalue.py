"""A keyvalue database: string keys to IPLD values, last writer wins per key."""

from __future__ import annotations

from collections.abc import Iterator

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from orbit.databases.base import Database, locked
from orbit.databases.registry import register
from stores.keyvalue import KeyValue, KeyValueBatch

__all__ = ["KeyValueDatabase"]


@register
class KeyValueDatabase(Database[KeyValue]):
    """A keyvalue database: a map of string keys to IPLD values, last writer wins per key."""

    STORE = KeyValue

    @locked
    def get(self, key: str, default: IPLDKind = None) -> IPLDKind:
        """Return the value under ``key``, or ``default``."""
        return self.store.get(key, default)

    @locked
    def __getitem__(self, key: str) -> IPLDKind:
        """Return the value under ``key``; raise :class:`~stores.KeyNotFoundError` if none."""
        return self.store[key]

    @locked
    def __contains__(self, key: object) -> bool:
        return key in self.store

    @locked
    def __len__(self) -> int:
        return len(self.store)

    @locked
    def __iter__(self) -> Iterator[str]:
        """Iterate over a copy of the keys."""
        return iter(list(self.store))

    @locked
    def keys(self) -> list[str]:
        """Return the keys."""
        return list(self.store.keys())

    @locked
    def items(self) -> list[tuple[str, IPLDKind]]:
        """Return the ``(key, value)`` pairs."""
        return list(self.store.items())

    @locked
    def all(self) -> dict[str, IPLDKind]:
        """Return the whole map as a new dict."""
        return self.store.all()

    def put(self, key: str, value: IPLDKind) -> CID:
        """Set ``key`` to ``value``; return the entry's CID once committed."""
        return self.store.put(key, value)

    def delete(self, key: str) -> CID:
        """Delete ``key``; return the entry's CID once committed."""
        return self.store.delete(key)

    def __setitem__(self, key: str, value: IPLDKind) -> None:
        self.store.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.store.delete(key)

    @locked
    def batch(self) -> KeyValueBatch:
        """Return a batch of puts and deletes, appended together when it commits."""
        return self.store.batch()
