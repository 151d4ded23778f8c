"""Compaction keeps merging as a full replica does: random multi-writer histories, one writer compacts at
a random commit of its own, then more writes and joins on every side; the compacted replica ends with
the full replica's state, root and count, never asks for an entry it dropped, and reopens the same."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ipfs_log import CID, Identity
from ipfs_log.blockstore import ChainedBlockStore, MemoryBlockStore
from orbit import OrbitDB
from tests.unit.test_snapshot_open import state_of, write_op

KEYS = ("a", "b", "c", "d")
op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(KEYS), st.integers(-3, 9)),
    st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(KEYS), st.just(0)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("commit"), st.integers(0, 2), st.just("a"), st.just(0)),
)


class _Guard:
    """A block source that fails the test if asked for an entry the compacted replica dropped."""

    def __init__(self, source: Any, dropped: set[CID]) -> None:
        self.source, self.dropped = source, dropped

    def get(self, cid: CID) -> bytes:
        assert cid not in self.dropped, "a dropped entry was fetched"
        return bytes(self.source.get(cid))

    def get_many(self, cids: list[CID]) -> dict[CID, bytes]:
        assert not self.dropped.intersection(cids), "a dropped entry was fetched"
        return dict(self.source.get_many(cids))

    def has(self, cid: CID) -> bool:
        return bool(self.source.has(cid))


def _run(dbs: list[Any], steps: list[Any], source: Any, commits: list[Any] | None = None) -> None:
    for kind, i, key, value in steps:
        if kind == "sync":
            dbs[i].join_heads(dbs[key].heads(), source=source(i))
        elif kind == "commit":
            if commits is not None and len(dbs[i].log):
                commits.append((i, dbs[i].commit()))
        else:
            write_op(dbs[i], kind, key, value)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(["keyvalue", "documents", "counter"]),
    st.lists(op, min_size=1, max_size=14),
    st.integers(0, 100),
    st.lists(op, max_size=12),
)
def test_compaction_keeps_merging_as_a_full_replica(
    type_: str, before: list[Any], pick: int, after: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ids = [Identity.from_seed(n.encode() * 32) for n in "abc"]
        orbits = [OrbitDB(Path(tmp) / str(n), ids[n]) for n in range(3)]
        try:
            writers = [i.public_key for i in ids]
            dbs = [o.open("db", type=type_, write=writers) for o in orbits]
            archive = MemoryBlockStore()  # an IPFS node that kept every block
            everything = ChainedBlockStore(archive, *(o.blocks for o in orbits))
            commits: list[Any] = []
            _run(dbs, before, lambda i: everything, commits)
            if not commits:
                write_op(dbs[0], "write", "a", 1)
                commits.append((0, dbs[0].commit()))
            who, commit = commits[pick % len(commits)]
            for db in dbs:
                archive.put_many((e.cid, e.block) for e in db.log)
            compacted = dbs[who]
            count = compacted.log.count
            done = compacted.compact(commit, trust="writer")
            assert compacted.log.count == count
            dropped = set(compacted.log.frontier.under) if compacted.log.frontier is not None else set()
            assert len(dropped) == done.dropped
            guarded = _Guard(everything, dropped)
            _run(dbs, after, lambda i: guarded if i == who else everything)
            full = dbs[(who + 1) % 3]
            for db in dbs:
                full.join_heads(db.heads(), source=everything)
            compacted.join_heads(full.heads(), source=guarded)
            assert state_of(compacted) == state_of(full)
            assert compacted.state_root() == full.state_root()
            assert compacted.log.count == len(full.log)
            state, root = state_of(compacted), compacted.state_root()
            compacted.close()
            again = orbits[who].open("db", type=type_, write=writers)
            assert (state_of(again), again.state_root(), again.log.count) == (state, root, len(full.log))
        finally:
            for o in orbits:
                o.close()
