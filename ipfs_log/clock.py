"""Lamport clocks and the log's total order.

Entries sort by ``(time, writer key, CID bytes)``: a later Lamport time wins, equal times break on the
writer's public key, and two entries of one writer at one time (one key on two devices) break on their
CIDs' bytes, so no two distinct entries ever tie.

>>> Clock(1, b"a") < Clock(1, b"b") < Clock(2, b"a")
True
>>> Clock(1, b"a").tick()
Clock(time=2, id=b'a')

Both entry formats (:class:`ipfs_log.Entry`, :class:`ipfs_log.orbitdb.OrbitEntry`) carry that order as
their ``sort_key`` and obey the same clock rule, so both logs sort with :data:`by_sort_key` and check
with :func:`check_clock_rule`.

>>> check_clock_rule(3, [2, 1], None)
>>> check_clock_rule(5, [2, 1], None)
Traceback (most recent call last):
...
ipfs_log.errors.ClockError: entry: clock.time is 5, not 1 + max(time of next) = 3
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Final

from ipfs_log.cid import CID
from ipfs_log.errors import ClockError
from ipfs_log.frozen import Frozen, frozen_init

__all__ = ["Clock", "by_sort_key", "check_clock_rule"]

by_sort_key: Final = attrgetter("sort_key")
"""Sort key function putting entries of either format in log order: ``(time, writer key, CID bytes)``."""


class Clock(Frozen):
    """A Lamport timestamp: ``time`` ticks once per entry; ``id`` is the writer's public key.

    Clocks compare by ``(time, id)``.
    """

    __match_args__ = ("time", "id")
    __slots__ = __match_args__
    time: int
    id: bytes

    def __init__(self, time: int, id: bytes) -> None:
        frozen_init(self, time, id)

    def __lt__(self, other: Clock) -> bool:
        if type(other) is not Clock:
            return NotImplemented
        return (self.time, self.id) < (other.time, other.id)

    def __le__(self, other: Clock) -> bool:
        if type(other) is not Clock:
            return NotImplemented
        return (self.time, self.id) <= (other.time, other.id)

    def __gt__(self, other: Clock) -> bool:
        if type(other) is not Clock:
            return NotImplemented
        return (self.time, self.id) > (other.time, other.id)

    def __ge__(self, other: Clock) -> bool:
        if type(other) is not Clock:
            return NotImplemented
        return (self.time, self.id) >= (other.time, other.id)

    def tick(self) -> Clock:
        """Return the clock one step later, for the same writer."""
        return Clock(self.time + 1, self.id)

    def merge(self, other: Clock) -> Clock:
        """Return this writer's clock advanced to at least ``other``'s time."""
        return Clock(max(self.time, other.time), self.id)


def check_clock_rule(time: int, next_times: Iterable[int], cid: CID | None) -> None:
    """Check the clock rule: an entry's time is ``1 + max(time of next)`` (1 with no ``next``).

    Otherwise a permitted writer could pick a huge time and win every last-writer-wins comparison.

    Args:
        time: the entry's clock time.
        next_times: the times of every entry its ``next`` names.
        cid: the entry, for the error.

    Raises:
        ClockError: the time is not the one the rule gives.
    """
    expected = 1 + max(next_times, default=0)
    if time != expected:
        raise ClockError(f"clock.time is {time}, not 1 + max(time of next) = {expected}", cid)
