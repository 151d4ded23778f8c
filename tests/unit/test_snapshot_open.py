"""Opening a writable database from a trusted commit: same state and root as a full replay, converges
afterwards with writes from both sides and with entries concurrent with the commit; bad input is
refused and nothing is stored."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfs_log import CID, Identity
from ipfs_log.blockstore import ChainedBlockStore, MemoryBlockStore
from ipfs_log.errors import BlockNotFoundError, HashMismatchError
from ipfs_log.fetch import run_flow
from orbit import OrbitDB
from orbit.errors import CommitError, DatabaseError, IpfsBlockMismatchError, StateError, TreeNodeError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.state import Commit
from orbit.state.levels import TreeWalk, tree_flow
from orbit.storage.frontiers import FrontierRecords
from orbit.storage.logs import LogRecords
from tests.fake_kubo import FakeKubo, mock_client

KEYS = ("a", "b", "c", "d")
op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(KEYS), st.integers(-3, 9)),
    st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(KEYS), st.just(0)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2), st.just(0)),
)


def write_op(db: Any, kind: str, key: str, value: int) -> None:
    if db.store_type == "keyvalue":
        if kind == "delete":
            db.delete(key)
        else:
            db.put(key, value)
    elif db.store_type == "documents":
        if kind == "delete":
            if db.get(key) is not None:
                db.delete(key)
        else:
            db.put({"_id": key, "n": value})
    else:
        db.inc(value)


def state_of(db: Any) -> object:
    return db.value if db.store_type == "counter" else db.all()


def _sync(db: Any, other: Any, source: ChainedBlockStore) -> None:
    db.join_heads(other.heads(), source=source)


@settings(max_examples=8, deadline=None)
@given(
    st.sampled_from(["keyvalue", "documents", "counter"]),
    st.lists(op, max_size=10),
    st.lists(op, max_size=8),
)
def test_snapshot_open_equals_replay_and_converges(type_: str, before: list[Any], after: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        orbits = [OrbitDB(Path(tmp) / n, Identity.from_seed(n.encode() * 32)) for n in "abcd"]
        try:
            writers = [o.identity.public_key for o in orbits]
            dbs = [o.open("db", type=type_, write=writers) for o in orbits[:3]]
            source = ChainedBlockStore(*(o.blocks for o in orbits[:3]))
            for kind, i, key, value in before:
                if kind == "sync":
                    _sync(dbs[i], dbs[key if isinstance(key, int) else 0], source)
                else:
                    write_op(dbs[i], kind, key, value)
            commit = dbs[0].commit()
            for kind, i, key, value in after:  # concurrent with the commit, or after it
                if kind == "sync":
                    _sync(dbs[i], dbs[key if isinstance(key, int) else 0], source)
                else:
                    write_op(dbs[i], kind, key, value)
            new = orbits[3].open(dbs[0].address, snapshot=commit.block, trust="writer", source=source)
            assert (new.log.frontier is not None) == bool(commit.heads)
            assert new.log.count == commit.count
            assert new.commit().root == commit.root  # the state at the commit, as a full replay has it
            write_op(new, "write", "d", 7)  # a write after the bootstrap, above the commit's clocks
            assert new.log.heads[-1].time > max((new.log.get(h).time for h in commit.heads), default=0)
            chain = ChainedBlockStore(source, orbits[3].blocks)
            for db in dbs:
                _sync(new, db, chain)
            for db in dbs:
                _sync(dbs[0], db, chain)
            _sync(dbs[0], new, chain)
            assert state_of(new) == state_of(dbs[0])
            assert new.state_root() == dbs[0].state_root()
            assert new.log.count == len(dbs[0].log)
        finally:
            for o in orbits:
                o.close()


def _history(tmp_path: Path) -> tuple[OrbitDB, OrbitDB, Any, Commit]:
    alice = OrbitDB(tmp_path / "a", Identity.from_seed(b"a" * 32))
    bob = OrbitDB(tmp_path / "b", Identity.from_seed(b"b" * 32))
    db = alice.open("kv", type="keyvalue", write=[alice.identity.public_key, bob.identity.public_key])
    for i in range(40):
        db.put(f"k{i % 7}", i)
    db.delete("k3")
    return alice, bob, db, db.commit()


def _nothing_stored(bob: OrbitDB, db: Any) -> None:
    assert bob.databases == []
    assert bob.registry.by_address(db.address) is None
    lognum = LogRecords(bob.blocks.env).number(db.address, create=False)
    assert lognum is None or FrontierRecords(bob.blocks.env).load(lognum) is None
    assert not bob.blocks.has(db.manifest.cid)  # not even the manifest


def test_reopen_keeps_the_frontier_and_the_state(tmp_path: Path) -> None:
    alice, bob, db, commit = _history(tmp_path)
    with alice, bob:
        new: Any = bob.open(db.address, snapshot=commit, trust="writer", source=alice.blocks)
        assert new.all() == db.all()
        assert len(new.log) == 1  # the head alone, not 41 entries
        new.put("mine", 1)
        new.close()
        again: Any = bob.open(db.address)
        assert again.log.frontier is not None
        assert again.get("mine") == 1
        assert again.get("k1") == db.get("k1")
        assert "k3" not in again.all()
        assert again.log.count == commit.count + 1


def test_replay_trust_verifies_everything(tmp_path: Path) -> None:
    alice, bob, db, commit = _history(tmp_path)
    with alice, bob:
        new: Any = bob.open(db.address, snapshot=commit.block, source=alice.blocks)  # trust="replay"
        assert new.log.frontier is None
        assert len(new.log) == len(db.log)
        assert new.all() == db.all()


def test_bad_snapshots_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    alice, bob, db, commit = _history(tmp_path)
    with alice, bob:
        writers = [alice.identity.public_key]
        mallory = Identity.from_seed(b"m" * 32)
        forged = Commit.create(
            mallory, db.address, commit.heads, commit.root, commit.count, None, {}, commit.winners
        )
        with pytest.raises(CommitError, match="may not write"):
            bob.open(db.address, snapshot=forged, trust="writer", source=alice.blocks)
        _nothing_stored(bob, db)
        other = alice.open("other", type="keyvalue", write=writers)
        other.put("x", 1)
        wrong_root = Commit.create(
            alice.identity,
            db.address,
            commit.heads,
            other.state_root(),
            commit.count,
            None,
            {},
            commit.winners,
        )
        with pytest.raises(CommitError, match="root"):
            bob.open(db.address, snapshot=wrong_root, trust="writer", source=alice.blocks)
        _nothing_stored(bob, db)
        with pytest.raises(CommitError, match="vouched for by 2"):
            bob.open(db.address, snapshot=[commit], trust="quorum:2", source=alice.blocks)
        _nothing_stored(bob, db)
        with pytest.raises(StateError):
            bob.open(db.address, snapshot=commit, trust="anyone", source=alice.blocks)
        _nothing_stored(bob, db)

        class Forging:  # an untrusted node that alters one tree node
            def __init__(self, target: CID) -> None:
                self.target = target

            def get(self, cid: CID) -> bytes:
                block = alice.blocks.get(cid)
                return block[:-1] + bytes([block[-1] ^ 1]) if cid == self.target else block

            def get_many(self, cids: list[CID]) -> dict[CID, bytes]:
                return {c: self.get(c) for c in cids}

            def has(self, cid: CID) -> bool:
                return alice.blocks.has(cid)

        assert commit.winners is not None
        with pytest.raises(TreeNodeError):
            bob.open(db.address, snapshot=commit, trust="writer", source=Forging(commit.winners))
        _nothing_stored(bob, db)
        bare = MemoryBlockStore()  # the manifest, nothing of the state
        bare.put(db.manifest.cid, db.manifest.block)
        with pytest.raises(BlockNotFoundError):
            bob.open(db.address, snapshot=commit, trust="writer", source=bare)
        _nothing_stored(bob, db)
        bob.open(db.address, snapshot=commit, trust="writer", source=alice.blocks)
        with pytest.raises(DatabaseError, match="new here"):
            bob.open(db.address, snapshot=commit, trust="writer", source=alice.blocks)


def _levels(blocks: Any, root: CID) -> list[list[CID]]:
    """The CIDs of each level of the tree under ``root``, as a breadth-first read asks for them."""
    walk, levels = TreeWalk(root), []
    while not walk.done:
        levels.append(walk.wanted)
        walk.take(blocks.get_many(walk.wanted))
    return levels


class _Recording:
    """An untrusted source that serves a store's blocks a batch at a time, with some blocks forged."""

    def __init__(self, inner: Any, forged: set[CID]) -> None:
        self.inner, self.forged, self.batches = inner, forged, list[list[CID]]()

    def get(self, cid: CID) -> bytes:
        raise AssertionError(f"a bootstrap asks for blocks in batches, not {cid} alone")

    def get_many(self, cids: list[CID]) -> dict[CID, bytes]:
        self.batches.append(list(cids))
        found = self.inner.get_many(cids)
        return {c: b + b"\0" if c in self.forged else b for c, b in found.items()}

    def has(self, cid: CID) -> bool:
        return bool(self.inner.has(cid))


def test_the_state_comes_a_level_at_a_time_and_a_forged_block_mid_batch_is_refused(tmp_path: Path) -> None:
    alice, bob, db, commit = _history(tmp_path)
    for i in range(40):  # a deeper winners tree: levels of several nodes
        db.put(f"more{i}", i)
    commit = db.commit()
    with alice, bob:
        assert commit.winners is not None
        levels = _levels(alice.blocks, commit.winners)
        wide = max(levels, key=len)
        assert len(wide) > 2
        honest = _Recording(alice.blocks, set())
        bob.blocks.put(db.manifest.cid, db.manifest.block)  # the manifest is here: only the state is asked
        new: Any = bob.open(db.address, snapshot=commit, trust="writer", source=honest)
        assert new.all() == db.all()
        assert len(honest.batches) == 1 + len(levels) + 1  # heads, each level (with winners), last winners
        for level, batch in zip(levels, honest.batches[1:], strict=False):
            assert batch[: len(level)] == level
        new.drop()
        alice.close()
        bob.close()

    for forged, error in (
        (wide[len(wide) // 2], TreeNodeError),  # a node in the middle of a level
        (next(iter(_winners(tmp_path, db.address, commit))), HashMismatchError),  # a winning entry
    ):
        with OrbitDB(tmp_path / "a") as alice, OrbitDB(tmp_path / "b") as bob:
            before = set(bob.blocks.cids())
            bad = _Recording(alice.blocks, {forged})
            with pytest.raises(error) as raised:
                bob.open(db.address, snapshot=commit, trust="writer", source=bad)
            value = raised.value
            assert isinstance(value, TreeNodeError | HashMismatchError)
            assert value.cid == forged
            assert any(forged in batch and len(batch) > 1 for batch in bad.batches)  # mid-batch
            assert set(bob.blocks.cids()) == before  # nothing stored
            assert bob.databases == []
            lognum = LogRecords(bob.blocks.env).number(db.address, create=False)
            assert lognum is None or FrontierRecords(bob.blocks.env).load(lognum) is None


def _winners(tmp_path: Path, address: str, commit: Commit) -> list[CID]:
    with OrbitDB(tmp_path / "a") as alice:
        assert commit.winners is not None
        items = run_flow(tree_flow(commit.winners), alice.blocks)
    return [CID(b"\x01\x71\x12\x20" + digest) for _, digest in items]


def test_an_ipfs_node_serving_a_forged_block_mid_batch_is_refused(tmp_path: Path) -> None:
    alice, bob, db, commit = _history(tmp_path)
    with alice, bob:
        assert commit.winners is not None
        levels = _levels(alice.blocks, commit.winners)
        wide = max(levels, key=len)
        fake = FakeKubo()
        fake.blocks.update((cid, alice.blocks.get(cid)) for cid in alice.blocks.cids())
        forged = wide[len(wide) // 2]
        fake.blocks[forged] = fake.blocks[forged] + b"\0"  # the node serves other bytes under the CID
        with IpfsBlockStore(mock_client(fake, block_timeout=0.2), concurrency=4) as node:
            with pytest.raises(IpfsBlockMismatchError) as raised:
                bob.open(db.address, snapshot=commit, trust="writer", source=node)
            assert raised.value.cid == forged
            _nothing_stored(bob, db)
            del fake.blocks[forged]  # withheld instead: missing, after the node's timeout
            with pytest.raises(BlockNotFoundError):
                bob.open(db.address, snapshot=commit, trust="writer", source=node)
            _nothing_stored(bob, db)
            fake.blocks[forged] = alice.blocks.get(forged)
            new: Any = bob.open(db.address, snapshot=commit, trust="writer", source=node)
            assert new.all() == db.all()
