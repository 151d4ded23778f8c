"""A keyvalue database: string keys to IPLD values, last writer wins per key."""

from __future__ import annotations

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from orbit.databases.base import locked
from orbit.databases.keyed import KeyedDatabase
from orbit.databases.registry import register
from stores.keyvalue import KeyValue, KeyValueBatch

__all__ = ["KeyValueDatabase"]


@register
class KeyValueDatabase(KeyedDatabase[KeyValue, IPLDKind]):
    """A keyvalue database: a map of string keys to IPLD values, last writer wins per key."""

    STORE = KeyValue

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
