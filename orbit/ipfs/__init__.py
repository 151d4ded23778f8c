"""An IPFS node reached over Kubo's HTTP RPC API (``/api/v0``): the client, blocks, uploads and pins.

``client.py`` is the RPC client (:class:`KuboClient`: transport, error mapping, endpoints, pubsub);
``blockstore.py`` serves blocks from the node as a ``BlockStore``; ``uploads.py`` is the local store
in front of it with a durable upload journal; ``node_link.py`` is what ``OrbitDB(ipfs=…)`` does with a
node (uploads, pins, heads records, open by address).

May import: :mod:`ipfs_log`, :mod:`orbit.errors`, :mod:`orbit.address`, :mod:`orbit.car`,
:mod:`orbit.storage` — never the databases, replication or the facade (a database reaches it through
the narrow :class:`~orbit.ipfs.node_link.LinkedDatabase` protocol).
"""

from typing import TYPE_CHECKING, Final

from ipfs_log.lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
    from orbit.ipfs.blockstore import IpfsBlockStore
    from orbit.ipfs.client import KuboClient, PubsubMessage, Subscription
    from orbit.ipfs.node_link import NodeLink
    from orbit.ipfs.uploads import CachedBlockStore

_WHERE: Final = {
    "CachedBlockStore": "orbit.ipfs.uploads",
    "IpfsBlockStore": "orbit.ipfs.blockstore",
    "KuboClient": "orbit.ipfs.client",
    "NodeLink": "orbit.ipfs.node_link",
    "PubsubMessage": "orbit.ipfs.client",
    "Subscription": "orbit.ipfs.client",
}


__getattr__ = _lazy_attributes("orbit.ipfs", _WHERE, globals())
"""The names above, imported on first use (a submodule imported alone does not load the others)."""


__all__ = ["CachedBlockStore", "IpfsBlockStore", "KuboClient", "NodeLink", "PubsubMessage", "Subscription"]
