"""EventLog: an append-only sequence of events, in the log's total order.

The operation is ``{"op": "ADD", "key": None, "value": v}`` (OrbitDB's shape). The log itself is the
index: it already keeps its entries in order and by CID, so ``get`` is a dict lookup and ranges are a
binary search. Entries whose payload is not an ``ADD`` are skipped by every read.

>>> from ipfs_log import Identity, Log, MemoryBlockStore
>>> events = EventLog(Log(Identity.from_seed(b"e" * 32), MemoryBlockStore(), log_id="events"))
>>> first = events.add("hello")
>>> _ = events.add({"n": 2}), events.add(3)
>>> events.get(first), len(events)
('hello', 3)
>>> [e.value for e in events.iter(gt=first)]
[{'n': 2}, 3]
>>> [e.value for e in events.iter(reverse=True, amount=2)]
[3, {'n': 2}]
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import ClassVar, NamedTuple, Unpack

from ipfs_log import CID, Entry, RangeArgs
from ipfs_log.codec import IPLDKind
from stores.base import Batch, Store
from stores.errors import InvalidCheckpointError, KeyNotFoundError

__all__ = ["Event", "EventLog", "EventLogBatch"]


class Event(NamedTuple):
    """One event: the CID of its entry and its value."""

    cid: CID
    value: IPLDKind


def _event(cid: CID, payload: IPLDKind) -> Event | None:
    if type(payload) is dict and payload.get("op") == "ADD" and "value" in payload:
        return Event(cid, payload["value"])
    return None


class EventLog(Store):
    """An append-only event log.

    Args:
        log: the log the store follows.
        checkpoint: restore the index from :meth:`checkpoint` instead of replaying the log.

    Raises:
        InvalidCheckpointError: the checkpoint cannot be restored over this log.
    """

    TYPE: ClassVar[str] = "eventlog"

    def _new_index(self) -> None:
        self._count = 0

    # ------------------------------------------------------------------ reading

    def get(self, cid: CID, default: IPLDKind = None) -> IPLDKind:
        """Return the value of the event ``cid``, or ``default`` if there is no such event."""
        event = _event(cid, self._log.get(cid).payload) if cid in self._log else None
        return default if event is None else event.value

    def __getitem__(self, cid: CID) -> IPLDKind:
        """Return the value of the event ``cid``.

        Raises:
            KeyNotFoundError: there is no event ``cid``.
        """
        event = _event(cid, self._log.get(cid).payload) if cid in self._log else None
        if event is None:
            raise KeyNotFoundError(cid, f"no event {cid} in the log")
        return event.value

    def __contains__(self, cid: object) -> bool:
        return (
            isinstance(cid, CID) and cid in self._log and _event(cid, self._log.get(cid).payload) is not None
        )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Event]:
        """Iterate over every event, oldest first."""
        return self.iter()

    def iter(self, **bounds: Unpack[RangeArgs]) -> Iterator[Event]:
        """Iterate over a range of events in the log's order, oldest first unless reversed.

        Args:
            **bounds: the range, as the fields of a :class:`~ipfs_log.Range` (``gt``, ``gte``, ``lt``,
                ``lte``, ``amount``, ``reverse``); ``amount`` counts events (entries that are not events
                are skipped).

        Raises:
            EntryNotFoundError: a bound names an entry the log does not hold.
        """
        amount = bounds.pop("amount", None)
        pairs = self._log.payloads(**bounds)
        events = (event for cid, payload in pairs if (event := _event(cid, payload)) is not None)
        if amount is None:
            return events
        return islice(events, max(amount, 0))

    def all(self) -> list[Event]:
        """Return every event, oldest first."""
        return list(self.iter())

    # ------------------------------------------------------------------ writing

    def add(self, value: IPLDKind) -> CID:
        """Append an event.

        Returns:
            The CID of the event's entry.

        Raises:
            InvalidOperationError: ``value`` is not an IPLD value.
            StoreClosedError: the store was closed.
        """
        return self._write((self._add_op(value),))[0].cid

    def batch(self) -> EventLogBatch:
        """Return an :class:`EventLogBatch` writing to this store."""
        return EventLogBatch(self)

    def _add_op(self, value: IPLDKind) -> IPLDKind:
        return self._ipld({"op": "ADD", "key": None, "value": value}, "event value")

    # ------------------------------------------------------------------ index

    def _apply(self, entry: Entry) -> bool:
        if _event(entry.cid, entry.payload) is None:
            return False
        self._count += 1
        return True

    def _dump(self) -> IPLDKind:
        return {"count": self._count}

    def _load(self, state: IPLDKind) -> None:
        if type(state) is not dict or type(count := state.get("count")) is not int:
            raise InvalidCheckpointError("eventlog state is {count: int}")
        self._count = count


class EventLogBatch(Batch):
    """Events collected for one fast append (see :class:`stores.base.Batch`).

    The CIDs of the events are those of ``batch.entries`` once the batch is written.
    """

    _store: EventLog

    def __init__(self, store: EventLog) -> None:
        super().__init__(store)

    def add(self, value: IPLDKind) -> None:
        """Add an event.

        Raises:
            InvalidOperationError: ``value`` is not an IPLD value.
        """
        self._payloads.append(self._store._add_op(value))
