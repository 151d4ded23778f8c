"""Lamport clocks and the log's total order.

Entries sort by ``(time, writer key, CID bytes)``: a later Lamport time wins, equal times break on the
writer's public key, and two entries of one writer at one time (one key on two devices) break on their
CIDs' bytes, so no two distinct entries ever tie.

>>> Clock(1, b"a") < Clock(1, b"b") < Clock(2, b"a")
True
>>> Clock(1, b"a").tick()
Clock(time=2, id=b'a')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Clock"]


@dataclass(frozen=True, order=True, slots=True)
class Clock:
    """A Lamport timestamp: ``time`` ticks once per entry; ``id`` is the writer's public key."""

    time: int
    id: bytes

    def tick(self) -> Clock:
        """Return the clock one step later, for the same writer."""
        return Clock(self.time + 1, self.id)

    def merge(self, other: Clock) -> Clock:
        """Return this writer's clock advanced to at least ``other``'s time."""
        return Clock(max(self.time, other.time), self.id)
