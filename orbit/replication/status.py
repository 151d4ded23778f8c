"""What a replicator tells of itself: the entries it admitted, its view of each peer, a status snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field

from ipfs_log.cid import CID
from ipfs_log.entry import Entry

__all__ = ["COUNTERS", "PeerState", "ReplicationEvent", "ReplicationStatus"]

COUNTERS = (
    "messages",
    "invalid",
    "own",
    "announced",
    "greeted",
    "bundles",
    "packs",
    "admitted",
    "rejected",
    "fetch_errors",
    "bytes_fetched",
    "resubscribed",
    "commits",
    "commits_refused",
)
"""The names of a replicator's counters (see :attr:`ReplicationStatus.counters`)."""


@dataclass(frozen=True, slots=True)
class ReplicationEvent:
    """Entries a replicator admitted, and the peer whose announcement led to them."""

    entries: tuple[Entry, ...]
    peer: str


@dataclass(slots=True)
class PeerState:
    """What the replicator knows of one peer on the topic."""

    heads: tuple[CID, ...] = ()
    last_seen: float = 0.0
    messages: int = 0


@dataclass(slots=True)
class ReplicationStatus:
    """A snapshot of a replicator's state (see :meth:`~orbit.replication.Replicator.status`)."""

    address: str
    running: bool
    subscribed: bool
    peers: dict[str, tuple[CID, ...]]
    """Each peer seen, with the last heads it announced."""
    pending: int
    """Verified entries waiting for a missing ancestor."""
    missing: int
    """Blocks a join needed and could not find yet."""
    wanted: int
    """Announced heads not yet held."""
    verifying: int = 0
    """Entries verified so far by the fetch under way (progress of a long catch-up)."""
    counters: dict[str, int] = field(default_factory=dict)
    """messages, invalid, own, announced (on the topic), greeted (in a peer's inbox), bundles,
    admitted, rejected, fetch_errors, bytes_fetched,
    resubscribed, commits (announced commits checked and recorded), commits_refused (announced by a key
    that may not write)."""
    last_error: str | None = None
