"""Hypothesis strategies: IPLD values, payloads, and multi-writer logs built by appends and gossip."""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field

from hypothesis import strategies as st

from ipfs_log import CID, Identity, IPLDKind, Log, MemoryBlockStore
from ipfs_log.codec import encode
from tests.conftest import ALICE, BOB, CAROL, WRITERS

__all__ = [
    "LOG_ID",
    "REPLICAS",
    "Append",
    "Gossip",
    "Scenario",
    "canonical",
    "cids",
    "float_values",
    "int_values",
    "ipld_values",
    "payloads",
    "scenarios",
    "state",
]

LOG_ID = "prop-log"
REPLICAS: tuple[Identity, ...] = (ALICE, BOB, CAROL)

# ------------------------------------------------------------------ IPLD values

INT_EDGES = [0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63]
INT_EDGES += [-(2**63), -(2**63) - 1, 2**64 - 1, -(2**64)]
FLOAT_EDGES = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1.5, -1e-310]

int_values = st.one_of(st.sampled_from(INT_EDGES), st.integers(min_value=-(2**64), max_value=2**64 - 1))
"""Every integer DAG-CBOR can carry: major types 0 and 1, 64-bit argument."""

float_values = st.one_of(
    st.sampled_from(FLOAT_EDGES),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
)
"""Finite floats, including -0.0 and subnormals (DAG-CBOR always writes them as 64-bit)."""


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


cids = st.one_of(
    st.binary(max_size=40).map(CID.for_block),  # CIDv1 dag-cbor sha2-256: what entries link to
    st.binary(max_size=40).map(lambda b: CID(b"\x01\x55\x12\x20" + _digest(b))),  # CIDv1 raw
    st.binary(max_size=40).map(lambda b: CID(b"\x12\x20" + _digest(b))),  # CIDv0
)
"""CIDs of the kinds a DAG-CBOR link holds: v1 dag-cbor and raw, and v0."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    int_values,
    float_values,
    st.text(max_size=20),
    st.binary(max_size=20),
    cids,
)


def ipld_values(max_leaves: int = 20) -> st.SearchStrategy[IPLDKind]:
    """IPLD data model values: scalars, links, and nested lists and str-keyed maps of bounded size."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.text(max_size=8), children, max_size=5),
        ),
        max_leaves=max_leaves,
    )


payloads: st.SearchStrategy[IPLDKind] = st.one_of(
    st.builds(
        lambda key, value: {"op": "PUT", "key": key, "value": value},
        st.text(max_size=6),
        ipld_values(max_leaves=4),
    ),
    st.builds(lambda key: {"op": "DEL", "key": key}, st.text(max_size=6)),
    ipld_values(max_leaves=6),
)
"""Store-style operations and arbitrary small IPLD values."""


def canonical(value: object) -> object:
    """A form of an IPLD value whose ``==`` is exact: types and float signs count, link types do not.

    Python says ``True == 1``, ``0.0 == -0.0`` and ``CID == bytes``; none of those is the same IPLD
    value. Links from ``dag_cbor`` (multiformats CIDs) and ours compare by their binary form.
    """
    if value is None or isinstance(value, bool):
        return ("x", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return ("f", struct.pack(">d", value))
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, CID):
        return ("l", bytes(value))
    if isinstance(value, bytes):
        return ("b", value)
    if isinstance(value, list):
        return ("a", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("m", tuple((k, canonical(v)) for k, v in sorted(value.items())))
    # a multiformats CID from the reference codec
    return ("l", bytes(value))  # type: ignore[call-overload]


# ------------------------------------------------------------------ multi-writer logs


@dataclass(frozen=True)
class Append:
    """Replica ``writer`` appends ``payload``."""

    writer: int
    payload: IPLDKind


@dataclass(frozen=True)
class Gossip:
    """Replica ``dst`` joins replica ``src``: ``dst.join(src)``."""

    src: int
    dst: int


Op = Append | Gossip


@dataclass
class Scenario:
    """Replicas built by replaying ``ops``; each replica appends as its own writer."""

    ops: list[Op]
    shared_store: bool
    logs: list[Log] = field(default_factory=list)

    def __repr__(self) -> str:
        store = "shared" if self.shared_store else "separate"
        return f"Scenario({store} store, ops={self.ops!r})"


def new_replica(identity: Identity, store: MemoryBlockStore | None = None) -> Log:
    """A replica of the property-test log, writing as ``identity``."""
    return Log(identity, store if store is not None else MemoryBlockStore(), log_id=LOG_ID, access=WRITERS)


def build(ops: list[Op], shared_store: bool, n: int = len(REPLICAS)) -> Scenario:
    """Replay ``ops`` on ``n`` fresh replicas."""
    shared = MemoryBlockStore()
    logs = [new_replica(REPLICAS[i % len(REPLICAS)], shared if shared_store else None) for i in range(n)]
    for op in ops:
        if isinstance(op, Append):
            logs[op.writer].append(op.payload)
        elif op.src != op.dst:
            logs[op.dst].join(logs[op.src])
    return Scenario(ops, shared_store, logs)


def _ops(n: int, max_ops: int) -> st.SearchStrategy[list[Op]]:
    replica = st.integers(min_value=0, max_value=n - 1)
    small_payloads = st.one_of(st.integers(min_value=0, max_value=1000), st.text(max_size=4), payloads)
    op: st.SearchStrategy[Op] = st.one_of(
        st.builds(Append, replica, small_payloads),
        st.builds(Gossip, replica, replica),
    )
    # a uniform length, so that long histories are as common as short ones
    return st.integers(min_value=0, max_value=max_ops).flatmap(lambda k: st.lists(op, min_size=k, max_size=k))


def scenarios(n: int = len(REPLICAS), max_ops: int = 40) -> st.SearchStrategy[Scenario]:
    """``n`` replicas (writers ALICE, BOB, CAROL) after a random run of appends and gossip.

    The replicas share one MemoryBlockStore or each have their own (then a join fetches from the
    other replica's store), at hypothesis's choice.
    """
    return st.builds(build, _ops(n, max_ops), st.booleans(), st.just(n))


def state(log: Log) -> tuple[list[CID], list[CID], list[bytes]]:
    """A log's observable state: CIDs in log order, head CIDs, and payloads (as exact DAG-CBOR)."""
    entries = list(log)
    return [e.cid for e in entries], log.head_cids, [encode(e.payload) for e in entries]


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    """Apply ``(kind, position, byte)`` edits: flip, insert, delete, truncate, or set a byte."""
    buf = bytearray(data)
    for kind, pos, byte in mutations:
        if not buf:
            buf.append(byte)
            continue
        i = pos % len(buf)
        if kind == "flip":
            buf[i] ^= byte
        elif kind == "insert":
            buf.insert(i, byte)
        elif kind == "delete":
            del buf[i]
        elif kind == "truncate":
            del buf[i:]
        else:
            buf[i] = byte
    return bytes(buf)
