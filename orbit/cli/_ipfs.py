"""The command line's door to an IPFS node: opening by address from the network, ``follow``, ``status``.

Commands that need a node get a :class:`Replication` from :func:`connect`, which reads the node's RPC
URL from ``--ipfs`` (or ``IPFS_API``). Replication is not wired into the command line yet: until it is,
:func:`connect` raises a one-line error, and every command that needs a node says so.

To wire it, give :func:`connect` a body that returns an object with the three methods of
:class:`Replication`; the commands (``open`` of an address the directory lacks, ``follow``, ``status``)
already call them and print what they return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from orbit.cli._output import CliError

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
    raise CliError(f"{what} {NEEDS_NODE}: replication over {url} is not wired into the command line yet")
