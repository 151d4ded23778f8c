"""The heads a replicator wants: announced by peers, not held yet, in a fresh lane and a retry lane.

A head a peer announces enters the **fresh** lane and is fetched at once. When its fetch fails (the
node cannot produce the blocks yet, or is away), it moves to the **retry** lane and waits before the
next try, longer after each failure (:class:`~orbit.replication.loops.Backoff`: ``retry`` doubling up
to ``max_retry``). Each lane has its own fetching thread, so blocks that never arrive cannot stall
new updates; and a peer that has heads waiting in the retry lane gets its new heads put there too.
A head whose entries failed verification is **rejected**: never wanted again.

:class:`WantedHeads` is a plain value, not thread-safe: the replicator guards it with its state lock,
and checks which heads the log holds (under the database's lock) between two calls, never while
holding its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ipfs_log.cid import CID
from orbit.replication.loops import Backoff

__all__ = ["Want", "WantedHeads"]


@dataclass(slots=True)
class Want:
    """One wanted head."""

    peer: str
    """Who announced it (first)."""
    at: float
    """When it may be tried next (``time.monotonic()``)."""
    delay: float
    """The wait after its next failure."""
    tries: int
    """Failed tries so far: 0 in the fresh lane, more in the retry lane."""


class WantedHeads:
    """The announced heads not held yet, each with its peer, its lane and its backoff.

    Args:
        backoff: the waits between tries of one head.
    """

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self._wanted: dict[CID, Want] = {}
        self._rejected: set[CID] = set()

    def __len__(self) -> int:
        return len(self._wanted)

    def __contains__(self, head: object) -> bool:
        return head in self._wanted

    def add(self, peer: str, heads: Iterable[CID], now: float) -> None:
        """Want the ``heads`` that ``peer`` announced (those not wanted already nor rejected).

        They go to the fresh lane, or to the retry lane if some earlier head of the same peer is there.
        """
        suspect = any(w.peer == peer and w.tries > 0 for w in self._wanted.values())
        for head in heads:
            if head not in self._rejected and head not in self._wanted:
                self._wanted[head] = Want(peer, now, self._backoff.first, 1 if suspect else 0)

    def ready(self, retries: bool, now: float) -> list[CID]:
        """Return the heads of one lane (the retry lane if ``retries``) whose time has come."""
        return [h for h, w in self._wanted.items() if w.at <= now and (w.tries > 0) == retries]

    def pick(self, heads: Iterable[CID]) -> tuple[list[CID], str] | None:
        """Return those of ``heads`` still wanted, and the peer of the first; None if there are none."""
        due = [h for h in heads if h in self._wanted]
        if not due:
            return None
        return due, self._wanted[due[0]].peer

    def drop(self, heads: Iterable[CID]) -> None:
        """Stop wanting ``heads`` (the log holds them now)."""
        for head in heads:
            self._wanted.pop(head, None)

    def retry_later(self, heads: Iterable[CID], now: float) -> None:
        """Move ``heads`` (whose fetch failed) to the retry lane, due after their backoff."""
        for head in heads:
            want = self._wanted.get(head)
            if want is not None:
                want.at = now + want.delay
                want.delay = self._backoff.after(want.delay)
                want.tries += 1

    def reject(self, head: CID) -> None:
        """Never want ``head`` again (its entries failed verification)."""
        self._rejected.add(head)
        self._wanted.pop(head, None)
