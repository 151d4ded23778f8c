"""Block stores that live in the ``orbit`` layer (they touch files or the network).

The protocol and the in-memory store are in :mod:`ipfs_log.blockstore`; this package adds the local
embedded store (the default for every database), a store on an IPFS node over the Kubo HTTP RPC, and
the cached composition of the two (local in front of the node).
"""

from orbit.blockstore.cached import CachedBlockStore
from orbit.blockstore.ipfs import IpfsBlockStore
from orbit.blockstore.local import LocalBlockStore

__all__ = ["CachedBlockStore", "IpfsBlockStore", "LocalBlockStore"]
