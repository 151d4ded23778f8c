"""The command line's door to an IPFS node: opening by address from the network, ``follow``, ``status``.

Commands that need a node get a :class:`Replication` from :func:`connect`, which reads the node's RPC
URL from ``--ipfs`` (or ``IPFS_API``); without one, every command that needs a node says so in one line.
The directory's databases are linked to the node (:class:`~orbit.ipfs.node_link.NodeLink`: uploads, pins,
heads record) and replicated (:class:`~orbit.replication.Replicator`) for as long as the command runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ipfs_log.identity import key_to_did
from orbit.address import parse_address
from orbit.cli._output import CliError
from orbit.errors import IpfsError, ReplicationTimeoutError
from orbit.ipfs.client import KuboClient
from orbit.ipfs.node_link import NodeLink
from orbit.replication.replicator import Replicator
from stores.base import Update

__all__ = ["NEEDS_NODE", "Replication", "connect"]

NEEDS_NODE = "needs an IPFS node (--ipfs URL or IPFS_API)"


class Replication(Protocol):
    """What the command line asks of replication over an IPFS node."""

    def open_remote(self, orbit: Any, address: str, timeout: float) -> Any:
        """Fetch the manifest of ``address`` from the network and open the database in ``orbit``."""

    def follow(self, db: Any, on_entries: Callable[[list[Any], bool], None], timeout: float | None) -> None:
        """Replicate ``db`` and call ``on_entries(entries, local)`` for each update, until interrupted."""

    def status(self, db: Any, timeout: float) -> dict[str, Any]:
        """Return the replication state of ``db``: peers, local and remote heads, whether in sync."""

    def close(self) -> None:
        """Stop replicating and release the node's resources (bounded in time)."""


def connect(url: str | None, what: str) -> Replication:
    """Return replication through the node at ``url``.

    Args:
        url: the node's HTTP RPC URL (``--ipfs`` or ``IPFS_API``), or None.
        what: the command, for the error message.

    Raises:
        CliError: no node was named, or this build cannot replicate yet.
    """
    if not url:
        raise CliError(f"{what} {NEEDS_NODE}")
    replication = _NodeReplication(url)
    try:
        replication.client.id()
    except IpfsError as e:
        replication.client.close()
        raise CliError(f"{what} {NEEDS_NODE}: the node at {url} does not answer ({e})") from e
    return replication


class _NodeReplication:
    """Replication through one node, for the databases of one command's OrbitDB."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = KuboClient(url)
        self._links: dict[int, NodeLink] = {}
        self._replicators: list[Replicator] = []

    def _link(self, orbit: Any) -> NodeLink:
        if orbit.ipfs is not None:
            return orbit.ipfs  # type: ignore[no-any-return]
        link = self._links.get(id(orbit))
        if link is None:
            link = self._links[id(orbit)] = NodeLink(orbit.directory, orbit.blocks, self.client)
        return link

    def _replicate(self, db: Any, *, attach: bool = True) -> Replicator:
        if db.replicator is not None:
            return db.replicator  # type: ignore[no-any-return]
        link = self._link(db.orbit)
        if attach:
            link.attach(db, by_address=False)
        replicator = Replicator(db, self.client, link.store, upload=False, interval=10.0).start()
        db.replicator = replicator
        self._replicators.append(replicator)
        return replicator

    def open_remote(self, orbit: Any, address: str, timeout: float) -> Any:
        link = self._link(orbit)
        cid = parse_address(address)
        block = link.manifest_block(cid)
        if block is None:
            raise CliError(f"the IPFS node at {self.url} did not find the manifest of {address}")
        orbit.blocks.put(cid, block)
        db = orbit.open(address)
        link.attach(db, by_address=True)
        replicator = self._replicate(db, attach=False)
        with contextlib.suppress(ReplicationTimeoutError):  # catch up from whoever is on the topic
            replicator.wait_synced(timeout=min(timeout, 10.0))
        return db

    def follow(self, db: Any, on_entries: Callable[[list[Any], bool], None], timeout: float | None) -> None:
        self._replicate(db)
        db.subscribe(
            lambda update: (
                on_entries(list(update.entries), update.local) if isinstance(update, Update) else None
            )
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        stop = threading.Event()
        while deadline is None or time.monotonic() < deadline:  # until Ctrl-C (KeyboardInterrupt)
            stop.wait(0.5)

    def status(self, db: Any, timeout: float) -> dict[str, Any]:
        replicator = self._replicate(db)
        try:
            replicator.wait_synced(timeout=min(timeout, 5.0))
            synced = True
        except ReplicationTimeoutError:
            synced = False
        state = replicator.status()
        return {
            "address": db.address,
            "node": self.url,
            "heads": [str(h) for h in db.heads()],
            "entries": db.entry_count(),
            "peers": {p: [str(h) for h in heads] for p, heads in state.peers.items()},
            "synced": synced,
            "pending": state.pending,
            "missing": state.missing,
            "writer": key_to_did(db.orbit.identity.public_key),
            **{f"count_{k}": v for k, v in state.counters.items()},
        }

    def close(self) -> None:
        for replicator in self._replicators:
            replicator.close()
        for link in self._links.values():
            link.close()
        self.client.close()
