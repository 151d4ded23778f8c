"""Verifiable state: a Merkle search tree of each database's state, proofs of reads, signed commits.

It sits in the layer of storage and the keystore (import-linter checks it), under the databases that
keep their trees through it, and imports only :mod:`ipfs_log` (codec, CIDs, keys, the collector pause),
:mod:`stores` (to read a store's index), :mod:`orbit.errors` and :mod:`orbit.car` (snapshots from CAR
files).

- :mod:`orbit.state.nodes`: the node form and the strict check of a node read back;
- :mod:`orbit.state.tree`: :class:`StateTree`, incremental, hashed lazily, loaded lazily;
- :mod:`orbit.state.diff`: what changed between two roots, visiting only the nodes that differ;
- :mod:`orbit.state.proofs`: :func:`prove` and the stand-alone :func:`verify_proof`;
- :mod:`orbit.state.values`: what the tree holds for a value;
- :mod:`orbit.state.views`: each store type's state as tree items, kept in step (:class:`StateIndex`);
- :mod:`orbit.state.partial`: :class:`PartialReplica`, one key range followed by diffs between roots;
- :mod:`orbit.state.snapshot`: :class:`Snapshot`, state read from commits under a trust mode;
- :mod:`orbit.state.commits`: signed commits and :func:`verify` (a read checked with writers' keys only);
- :mod:`orbit.state.latest`: :class:`LatestCommits`, the newest checked commit of each writer.
"""

from orbit.state.commits import Commit, FindProof, RangeProof, ReadProof
from orbit.state.commits import verify_read as verify
from orbit.state.latest import LatestCommits
from orbit.state.nodes import EMPTY_ROOT, layer_of
from orbit.state.partial import PartialReplica
from orbit.state.proofs import prove
from orbit.state.proofs import verify as verify_proof
from orbit.state.snapshot import Snapshot
from orbit.state.tree import BufferedNodes, MemoryNodes, NodeStore, StateTree
from orbit.state.values import value_bytes, value_matches
from orbit.state.views import StateIndex

__all__ = [
    "EMPTY_ROOT",
    "BufferedNodes",
    "Commit",
    "FindProof",
    "LatestCommits",
    "MemoryNodes",
    "NodeStore",
    "PartialReplica",
    "RangeProof",
    "ReadProof",
    "Snapshot",
    "StateIndex",
    "StateTree",
    "layer_of",
    "prove",
    "value_bytes",
    "value_matches",
    "verify",
    "verify_proof",
]
