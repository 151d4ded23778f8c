"""OrbitDB JS compatibility: its databases read and written in their own format, and a live sync bridge.

``compat.py`` opens OrbitDB JS 4.x databases (manifests, access controllers, entries) from blocks or a
CAR file; ``sync.py`` (:class:`~orbit.orbitdb.sync.OrbitDBSync`) replicates one with OrbitDB JS peers
through an IPFS node, speaking their heads protocol.

May import: :mod:`ipfs_log` (and its ``orbitdb`` formats), :mod:`orbit.errors`, :mod:`orbit.car`,
:mod:`orbit.ipfs`, :mod:`orbit.replication`'s shared machinery — not the facade, SQL or the CLI.
"""
