"""Replication between peers through an IPFS node: announcements on pubsub, fetches of what is missing.

One concept per module:

- ``wire.py``: the announcement message (:class:`Announcement`, :func:`decode_announcement`) and its
  limits: what travels on the topic, checked strictly on arrival;
- ``status.py``: what a replicator tells of itself (:class:`ReplicationEvent`, :class:`ReplicationStatus`);
- ``sources.py``: where fetches read blocks (inline blocks from messages, then the node, counted);
- ``machine.py``: the replicator's decisions without I/O (:class:`~orbit.replication.machine.Machine`):
  what to announce and to whom, which announced heads to fetch next, in which lane; a simulator drives
  it too;
- ``loops.py``: the thread, backoff, jitter, re-subscription and peer-polling machinery, shared with the
  OrbitDB bridge (:mod:`orbit.orbitdb.sync`);
- ``replicator.py``: :class:`Replicator`, which composes them to keep one database in sync; it reaches
  the database through the :class:`~orbit.replication.replicator.ReplicatedDatabase` protocol, declared
  where it is used.

May import: :mod:`ipfs_log`, :mod:`stores`, :mod:`orbit.errors` and :mod:`orbit.ipfs` — never the
databases or the facade.
"""

from orbit.replication.replicator import ReplicatedDatabase, Replicator
from orbit.replication.status import ReplicationEvent, ReplicationStatus
from orbit.replication.wire import MAX_MESSAGE_BYTES, Announcement, decode_announcement

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Announcement",
    "ReplicatedDatabase",
    "ReplicationEvent",
    "ReplicationStatus",
    "Replicator",
    "decode_announcement",
]
