"""The loop machinery both replicators share: threads, backoff, re-subscription, peer polling.

Their anti-entropy rounds come from :mod:`orbit.replication.machine`.

orbit's :class:`~orbit.replication.Replicator` and the OrbitDB bridge
(:class:`~orbit.orbitdb.sync.OrbitDBSync`) speak different messages but live the same way, each on a
few daemon threads talking to an IPFS node's RPC:

- :class:`Workers` starts the threads and joins them with one deadline, so that ``close()`` returns
  promptly even while a thread is stuck in a slow request (a daemon thread still running then finds
  the stop flag set and ends on its own);
- :class:`Backoff` is the wait before trying again after a failure, doubling up to a bound;
- :class:`SubscriptionKeeper` keeps a pubsub subscription open for a reading loop: when the node ends
  the stream (it restarted or went away), it closes the dead subscription and subscribes again, with
  backoff;
- :class:`PeerWatch` polls ``pubsub/peers`` (the RPC has no "peer subscribed" event) and tells which
  peers are new, so that a replicator can greet them with its heads at once.

Every wait here ends as soon as the owner's stop event is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from orbit.errors import IpfsError
from orbit.ipfs.pubsub import PubsubMessage

__all__ = ["Backoff", "PeerWatch", "PubsubSubscription", "SubscriptionKeeper", "Workers"]


class PubsubSubscription(Protocol):
    """A pubsub subscription as the loops read it (:class:`orbit.ipfs.pubsub.Subscription` is one)."""

    def next(self, timeout: float | None = None) -> PubsubMessage | None:
        """Return the next message, or None after ``timeout`` seconds or once closed.

        Raises:
            IpfsError: the node ended the stream.
        """
        ...

    def close(self, timeout: float = 2.0) -> None:
        """End the subscription within ``timeout`` seconds."""
        ...


S = TypeVar("S", bound=PubsubSubscription)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits before trying again: ``first``, then doubled after each failure, up to ``longest``."""

    first: float
    """The first wait (not capped by ``longest``)."""
    longest: float
    """The longest wait once doubling."""

    def after(self, delay: float) -> float:
        """Return the wait that follows a wait of ``delay`` seconds."""
        return min(delay * 2, self.longest)

    def delays(self) -> Iterator[float]:
        """Yield the waits of a run of failures: ``first``, then each doubled, without end."""
        delay = self.first
        while True:
            yield delay
            delay = self.after(delay)


class Workers:
    """Daemon threads started one by one and joined together, within one deadline."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def start(self, name: str, target: Callable[[], None]) -> None:
        """Start ``target`` in a daemon thread called ``name``."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds in all for the threads (but the calling one) to end.

        Returns:
            True if every thread has ended (False while one, maybe the calling one, still runs).
        """
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


def _nothing(*_: object) -> None:
    """The default hook: do nothing."""


class SubscriptionKeeper(Generic[S]):
    """Keeps a pubsub subscription open for a reading loop, subscribing again when the stream ends.

    :meth:`run` reads (``step(subscription)``, again and again) until ``stop`` is set. When the node
    ends the stream (``step`` raises :class:`~orbit.errors.IpfsError`: it restarted, crashed or went
    away), the dead subscription is closed, and after a wait of ``backoff.first`` a new one is opened;
    each failed try waits longer (:class:`Backoff`), and a success starts the waits over.

    Thread-safety: :meth:`run` runs in one thread; :attr:`current` and :meth:`close` may be called
    from any. The keeper's lock is held only to swap the current subscription, never while calling
    out, so an owner may call them while holding locks of its own.

    Args:
        open: opens a subscription (e.g. ``lambda: client.pubsub_sub(topic)``); raises ``IpfsError``.
        stop: the owner's stop event: once set, :meth:`run` returns and every wait ends.
        backoff: waits before each new try to subscribe.
        close_timeout: what ``close`` is given when a subscription is closed.
        on_open: called (in the reading thread) after each subscription :meth:`run` opened, with
            whether it replaces one that ended.
        on_open_failed: called with the error of each failed try to subscribe.
        on_end: called with the error that ended a stream.
    """

    def __init__(
        self,
        open: Callable[[], S],
        stop: threading.Event,
        backoff: Backoff,
        *,
        close_timeout: float,
        on_open: Callable[[bool], None] = _nothing,
        on_open_failed: Callable[[IpfsError], None] = _nothing,
        on_end: Callable[[IpfsError], None] = _nothing,
    ) -> None:
        self._open = open
        self._stop = stop
        self._backoff = backoff
        self._close_timeout = close_timeout
        self._on_open = on_open
        self._on_open_failed = on_open_failed
        self._on_end = on_end
        self._lock = threading.Lock()
        self._current: S | None = None

    @property
    def current(self) -> S | None:
        """The open subscription (None between two, or once stopped)."""
        with self._lock:
            return self._current

    def subscribe(self) -> S:
        """Open the subscription now, in the calling thread (:meth:`run` then starts reading it).

        Raises:
            IpfsError: the node refused the subscription or failed.
        """
        subscription = self._open()
        with self._lock:
            self._current = subscription
        return subscription

    def run(self, step: Callable[[S], None]) -> None:
        """Read the subscription with ``step`` until ``stop`` is set, subscribing (again) as needed.

        ``step`` reads once (e.g. one message with a timeout, so that the stop flag is looked at);
        it raises ``IpfsError`` when the stream ended. Any other error ends the loop and propagates.
        """
        delays = self._backoff.delays()
        reopened = False
        while not self._stop.is_set():
            subscription = self.current
            if subscription is None:
                try:
                    subscription = self._open()
                except IpfsError as e:
                    self._on_open_failed(e)
                    self._stop.wait(next(delays))
                    continue
                if not self._adopt(subscription):
                    return
                self._on_open(reopened)
                delays = self._backoff.delays()
            try:
                while not self._stop.is_set():
                    step(subscription)
            except IpfsError as e:
                self._on_end(e)
                reopened = True
            finally:
                self._drop(subscription)
            self._stop.wait(next(delays))

    def close(self, timeout: float) -> None:
        """Close the current subscription, waking the reader; call it after setting ``stop``."""
        subscription = self.current
        if subscription is not None:
            subscription.close(timeout)

    def _adopt(self, subscription: S) -> bool:
        """Make ``subscription`` the current one, unless stopping (then close it); return whether it is.

        Checked and set under the lock: an owner that sets ``stop`` and then calls :meth:`close` either
        finds the new subscription to close or is seen here as stopping.
        """
        with self._lock:
            stopping = self._stop.is_set()
            if not stopping:
                self._current = subscription
        if stopping:
            subscription.close(self._close_timeout)
        return not stopping

    def _drop(self, subscription: S) -> None:
        subscription.close(self._close_timeout)
        with self._lock:
            if self._current is subscription:
                self._current = None


class PeerWatch:
    """Tells which peers appeared on a pubsub topic since the last look (polls ``pubsub/peers``).

    Used from one thread.

    Args:
        list_peers: returns the topic's peers (e.g. ``lambda: client.pubsub_peers(topic)``).
        on_error: called with the error of a failed look.
    """

    def __init__(
        self, list_peers: Callable[[], Iterable[str]], on_error: Callable[[IpfsError], None]
    ) -> None:
        self._list_peers = list_peers
        self._on_error = on_error
        self._known: set[str] = set()

    @property
    def known(self) -> frozenset[str]:
        """The peers seen at the last successful look."""
        return frozenset(self._known)

    def poll(self) -> set[str] | None:
        """Look at the topic's peers now.

        Returns:
            The peers that were not there at the last look, or None if the node did not answer (the
            peers known stay as they were).
        """
        try:
            peers = set(self._list_peers())
        except IpfsError as e:
            self._on_error(e)
            return None
        new = peers - self._known
        self._known = peers
        return new
