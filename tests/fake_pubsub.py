"""An in-memory pubsub that stands in for IPFS nodes' in replication tests (no node, no network).

A :class:`Hub` delivers a message to every other :class:`Client`'s subscription on the topic; a
:class:`Sub` is a subscription (``next`` with a timeout, ``close``) that a test can also feed
(``push``) or end as the node would (``fail``); a :class:`Client` is the pubsub half of a node's RPC
client (``pubsub_sub``, ``pubsub_pub``, ``pubsub_peers``), with ``pub_error`` to make publishing fail;
:func:`kubo_client` puts one in a Kubo client of a :class:`~tests.fake_kubo.FakeKubo`.
"""

from __future__ import annotations

import threading
from collections import deque

import httpx

from orbit.ipfs.client import KuboClient
from orbit.ipfs.pubsub import PubsubMessage
from tests.fake_kubo import FakeKubo

__all__ = ["Client", "Hub", "Sub", "kubo_client"]


class Hub:
    """Pubsub between fake clients: a message reaches every other client subscribed to the topic."""

    def __init__(self) -> None:
        self.subs: list[Sub] = []
        self.lock = threading.Lock()

    def deliver(self, sender: str, topic: str, data: bytes) -> None:
        with self.lock:
            subs = [s for s in self.subs if s.topic == topic and s.owner != sender and not s.closed]
        for sub in subs:
            sub.push(PubsubMessage(sender, data, b"\x01", (topic,)))


class Sub:
    """One subscription of ``owner`` to ``topic``: messages pushed to it, read with :meth:`next`."""

    def __init__(self, owner: str, topic: str) -> None:
        self.owner, self.topic = owner, topic
        self.queue: deque[PubsubMessage] = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.error: Exception | None = None

    def push(self, message: PubsubMessage) -> None:
        with self.cond:
            self.queue.append(message)
            self.cond.notify_all()

    def fail(self, error: Exception) -> None:
        with self.cond:
            self.error = error
            self.cond.notify_all()

    def next(self, timeout: float | None = None) -> PubsubMessage | None:
        with self.cond:
            self.cond.wait_for(lambda: self.queue or self.closed or self.error, timeout)
            if self.queue:
                return self.queue.popleft()
            if self.error is not None and not self.closed:
                raise self.error
            return None

    def close(self, timeout: float = 2.0) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class Client:
    """The pubsub half of a node's RPC client for the peer ``peer``, on a :class:`Hub`."""

    def __init__(self, hub: Hub, peer: str) -> None:
        self.hub, self.peer = hub, peer
        self.pub_error: Exception | None = None
        self.published: list[bytes] = []
        self.subs: list[Sub] = []
        self.peer_looks = 0  # answers to pubsub_peers that named a peer

    def pubsub_sub(self, topic: str | bytes, *, max_queued: int = 10_000) -> Sub:
        sub = Sub(self.peer, str(topic))
        with self.hub.lock:
            self.hub.subs.append(sub)
        self.subs.append(sub)
        return sub

    def pubsub_pub(self, topic: str | bytes, data: bytes) -> None:
        if self.pub_error is not None:
            raise self.pub_error
        self.published.append(data)
        self.hub.deliver(self.peer, str(topic), data)

    def pubsub_peers(self, topic: str | bytes | None = None) -> list[str]:
        with self.hub.lock:
            peers = sorted({s.owner for s in self.hub.subs if s.topic == topic and s.owner != self.peer})
        if peers:
            self.peer_looks += 1
        return peers


def kubo_client(fake: FakeKubo, hub: Hub, peer: str) -> KuboClient:
    """A Kubo client of ``fake`` (one node whose blocks all peers share, as a swarm's nodes share
    theirs), with the pubsub of ``hub`` as the peer named ``peer``."""
    kubo = KuboClient("http://kubo.test", transport=httpx.MockTransport(fake), block_timeout=0.2)
    pubsub = Client(hub, peer)
    kubo.pubsub_sub = pubsub.pubsub_sub  # type: ignore[assignment,method-assign]
    kubo.pubsub_pub = pubsub.pubsub_pub  # type: ignore[method-assign]
    kubo.pubsub_peers = pubsub.pubsub_peers  # type: ignore[method-assign]
    kubo.id = lambda: {"ID": peer}  # type: ignore[method-assign]
    return kubo
