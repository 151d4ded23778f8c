"""A counter database: a PN-counter, the sum of every writer's signed increments."""

from __future__ import annotations

from ipfs_log.cid import CID
from orbit.databases.base import Database, locked
from orbit.databases.registry import register
from stores.counter import Counter, CounterBatch

__all__ = ["CounterDatabase"]


@register
class CounterDatabase(Database[Counter]):
    """A counter database: a PN-counter, the sum of every writer's increments."""

    STORE = Counter

    @property
    def value(self) -> int:
        """The counter's value."""
        with self.lock:
            self.check_open()
            return self.store.value

    @property
    def totals(self) -> dict[bytes, int]:
        """Each writer's net contribution, by public key (a new dict)."""
        with self.lock:
            self.check_open()
            return self.store.totals

    def inc(self, n: int = 1) -> CID:
        """Add ``n``; return the entry's CID once committed."""
        return self.store.inc(n)

    def dec(self, n: int = 1) -> CID:
        """Subtract ``n``; return the entry's CID once committed."""
        return self.store.dec(n)

    @locked
    def batch(self) -> CounterBatch:
        """Return a batch of increments, appended together when it commits."""
        return self.store.batch()
