"""An eventlog database: an append-only sequence of events, read in ranges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Unpack

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.ranges import RangeArgs
from orbit.databases.base import Database, locked
from orbit.databases.registry import register
from stores.eventlog import Event, EventLog, EventLogBatch

__all__ = ["EventLogDatabase"]


@register
class EventLogDatabase(Database[EventLog]):
    """An eventlog database: an append-only sequence of events in the log's order."""

    STORE = EventLog

    @locked
    def get(self, cid: CID, default: IPLDKind = None) -> IPLDKind:
        """Return the value of the event ``cid``, or ``default``."""
        return self.store.get(cid, default)

    @locked
    def __getitem__(self, cid: CID) -> IPLDKind:
        """Return the value of the event ``cid``; raise :class:`~stores.KeyNotFoundError` if none."""
        return self.store[cid]

    @locked
    def __contains__(self, cid: object) -> bool:
        return cid in self.store

    @locked
    def __len__(self) -> int:
        return len(self.store)

    def __iter__(self) -> Iterator[Event]:
        """Iterate over the events held when the iteration began, oldest first."""
        return self.iter()

    @locked
    def iter(self, **bounds: Unpack[RangeArgs]) -> Iterator[Event]:
        """Iterate over a range of events (see :meth:`stores.EventLog.iter`), read in chunks."""
        return self.store.iter(**bounds)

    def all(self) -> list[Event]:
        """Return every event, oldest first."""
        return list(self.iter())

    def add(self, value: IPLDKind) -> CID:
        """Append an event; return its CID once committed."""
        return self.store.add(value)

    @locked
    def batch(self) -> EventLogBatch:
        """Return a batch of events, appended together when it commits."""
        return self.store.batch()
