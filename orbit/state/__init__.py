"""Verifiable state: a Merkle search tree of each database's state, proofs of reads, signed commits.

May import :mod:`ipfs_log` (codec, CIDs, keys) and :mod:`orbit.errors` only: it sits beside storage and
the keystore, under the databases that maintain their trees through it.

- :mod:`orbit.state.nodes`: the node form and the strict check of a node read back;
- :mod:`orbit.state.tree`: :class:`StateTree`, incremental, hashed lazily, loaded lazily;
- :mod:`orbit.state.diff`: what changed between two roots, visiting only the nodes that differ;
- :mod:`orbit.state.proofs`: :func:`prove` and the stand-alone :func:`verify_proof`;
- :mod:`orbit.state.values`: what the tree holds for a value;
- :mod:`orbit.state.views`: each store type's state as tree items, kept in step (:class:`StateIndex`);
- :mod:`orbit.state.partial`: :class:`PartialReplica`, one key range followed by diffs between roots;
- :mod:`orbit.state.snapshot`: :class:`Snapshot`, state read from commits under a trust mode;
- :mod:`orbit.state.commits`: signed commits and :func:`verify` (a read checked with writers' keys only).

May also import :mod:`stores` (to read a store's index).
"""

from orbit.state.commits import Commit, FindProof, RangeProof, ReadProof
from orbit.state.commits import verify_read as verify
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
