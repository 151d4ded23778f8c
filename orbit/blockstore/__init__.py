"""Block stores that live in the ``orbit`` layer (they touch files or the network).

The protocol and the in-memory store are in :mod:`ipfs_log.blockstore`; this package adds the local
embedded store, the default for every database.
"""

from orbit.blockstore.local import LocalBlockStore

__all__ = ["LocalBlockStore"]
