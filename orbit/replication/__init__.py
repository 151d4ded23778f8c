"""Replication between peers through an IPFS node: announcements on pubsub, fetches of what is missing.

``replicator.py`` keeps one database in sync (:class:`Replicator`); it reaches the database through the
:class:`~orbit.replication.replicator.ReplicatedDatabase` protocol, declared where it is used.

May import: :mod:`ipfs_log`, :mod:`stores`, :mod:`orbit.errors` and :mod:`orbit.ipfs` — never the
databases or the facade.
"""

from orbit.replication.replicator import (
    Announcement,
    ReplicatedDatabase,
    ReplicationEvent,
    ReplicationStatus,
    Replicator,
)

__all__ = ["Announcement", "ReplicatedDatabase", "ReplicationEvent", "ReplicationStatus", "Replicator"]
