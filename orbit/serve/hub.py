"""Live updates for server-sent events: database updates fanned out to every connected client.

A database calls its subscribers in the writing thread, under the directory's lock (see
:mod:`orbit.databases.base`), so the hub's callback only turns the update into a small JSON-ready dict
and hands it to each client's event loop (``call_soon_threadsafe``); it never waits. A client that does
not read (its queue holds :data:`MAX_QUEUED` events) is dropped: its stream ends with an ``overflow``
event and the client reconnects, instead of the daemon holding an unbounded backlog for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ipfs_log.identity import key_to_did
from orbit.databases import Database
from orbit.serve.values import to_json
from stores.base import Update

__all__ = ["MAX_QUEUED", "EventHub", "Listener", "status_of"]

MAX_QUEUED: Final = 1000
"""Events a client may have unread before it is dropped."""


def status_of(db: Database[Any]) -> dict[str, Any]:
    """A database's replication state as JSON data (``replicating: false`` without a node)."""
    state: dict[str, Any] = {
        "address": db.address,
        "name": db.name,
        "type": db.store_type,
        "entries": db.entry_count(),
        "heads": [str(h) for h in db.heads()],
        "replicating": db.replicator is not None,
    }
    if db.replicator is not None:
        r = db.replication_status()
        state.update(
            running=r.running,
            subscribed=r.subscribed,
            peers={p: [str(h) for h in heads] for p, heads in r.peers.items()},
            pending=r.pending,
            missing=r.missing,
            wanted=r.wanted,
            verifying=r.verifying,
            counters=dict(r.counters),
            last_error=r.last_error,
        )
    return state


@dataclass(eq=False)
class Listener:
    """One SSE client: its event loop and queue, and the database it asked for (None: every one)."""

    loop: asyncio.AbstractEventLoop
    address: str | None
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, event: dict[str, Any] | None) -> None:
        """Queue ``event`` (in the loop's thread); drop the client if it is too far behind."""
        if self.overflowed:
            return
        if event is not None and self.queue.qsize() >= MAX_QUEUED:
            self.overflowed = True
            self.queue.put_nowait({"event": "overflow", "data": {"dropped": True}})
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class EventHub:
    """Subscribes to the daemon's databases and fans their updates out to :class:`Listener`s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[str, tuple[Database[Any], Callable[[], None]]] = {}
        self._listeners: set[Listener] = set()
        self.closed = False

    def watch(self, databases: list[Database[Any]]) -> None:
        """Subscribe to each database not watched yet (a database reopened is a new object)."""
        for db in databases:
            if db.closed:
                continue
            with self._lock:
                if self.closed:
                    return
                held = self._watched.get(db.address)
                if held is not None and held[0] is db:
                    continue
            unsubscribe = db.subscribe(self._callback(db))
            with self._lock:
                self._watched[db.address] = (db, unsubscribe)

    def _callback(self, db: Database[Any]) -> Callable[[object], None]:
        address = db.address

        def on_update(update: object) -> None:
            if not isinstance(update, Update) or not self._listeners:
                return
            entries = [
                {
                    "cid": str(e.cid),
                    "time": e.time,
                    "writer": key_to_did(e.key),
                    "next": [str(n) for n in e.next],
                    "payload": to_json(e.payload),
                }
                for e in update.entries
            ]
            self.publish(
                address,
                {
                    "event": "update",
                    "data": {
                        "address": address,
                        "local": update.local,
                        "entries": entries,
                        "heads": [str(h) for h in db.heads()],
                    },
                },
            )

        return on_update

    def listen(self, loop: asyncio.AbstractEventLoop, address: str | None) -> Listener:
        """A new listener for the updates of ``address`` (None: of every database)."""
        listener = Listener(loop, address)
        with self._lock:
            if self.closed:
                listener.queue.put_nowait(None)
            else:
                self._listeners.add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        """Forget ``listener`` (its client went away)."""
        with self._lock:
            self._listeners.discard(listener)

    def publish(self, address: str, event: dict[str, Any]) -> None:
        """Hand ``event`` about ``address`` to every listener of it, without waiting."""
        with self._lock:
            listeners = [x for x in self._listeners if x.address in (None, address)]
        for listener in listeners:
            try:
                listener.loop.call_soon_threadsafe(listener.offer, event)
            except RuntimeError:  # its loop is closed: the server is stopping
                self.leave(listener)

    def close(self) -> None:
        """Unsubscribe from every database and end every stream."""
        with self._lock:
            self.closed = True
            watched = list(self._watched.values())
            self._watched.clear()
            listeners = list(self._listeners)
            self._listeners.clear()
        for _, unsubscribe in watched:
            unsubscribe()
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                listener.loop.call_soon_threadsafe(listener.offer, None)
