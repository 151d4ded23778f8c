"""Compaction: a replica drops the history under a trusted commit, keeps its state, root and count,
merges concurrent entries without the network, reopens as it was, and refuses untrusted commits or a
failed write without changing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipfs_log import CID, Identity
from ipfs_log.fetch import run_flow
from orbit import OrbitDB
from orbit.errors import BlockStoreError, CommitError, DatabaseError, StateError
from orbit.state import Commit
from orbit.state.levels import tree_flow
from orbit.storage.frontiers import FrontierRecords
from orbit.storage.logs import LogRecords
from tests.faults.lmdb_faults import install

ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)
WRITE = [ALICE.public_key, BOB.public_key]


def _pair(tmp_path: Path) -> tuple[OrbitDB, OrbitDB, Any, Any]:
    alice = OrbitDB(tmp_path / "a", ALICE)
    bob = OrbitDB(tmp_path / "b", BOB)
    a = alice.open("kv", type="keyvalue", write=WRITE)
    b = bob.open("kv", type="keyvalue", write=WRITE)
    return alice, bob, a, b


def _history(a: Any, b: Any) -> Commit:
    """Shared history, then a commit by alice, then writes by bob concurrent with it."""
    for i in range(30):
        a.put(f"k{i % 6}", i)
    b.sync_from(a)
    for i in range(5):
        b.put(f"k{i}", 100 + i)  # concurrent with alice's commit: their parents lie under it
    b.delete("k5")
    commit: Commit = a.commit()
    for i in range(3):
        a.put(f"after{i}", i)
    return commit


def _record(orbit: OrbitDB, address: str) -> Any:
    lognum = LogRecords(orbit.blocks.env).number(address, create=False)
    return None if lognum is None else FrontierRecords(orbit.blocks.env).load(lognum)


def test_compact_keeps_state_root_and_count_and_merges_without_the_network(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with alice, bob:
        commit = _history(a, b)
        root, state, count = a.state_root(), a.all(), a.log.count
        history = [e.cid for e in a.log]
        done = a.compact(commit, trust="writer")
        assert done.kept == len(a.log) == 1 + 3  # the commit's head and the writes after it
        assert done.dropped == commit.count - 1
        assert a.log.count == count == len(a.log) + done.dropped
        assert (a.all(), a.state_root()) == (state, root)
        assert a.compacted == done
        assert any("verify_commit" in line for line in done.gives_up)
        assert commit.winners is not None
        winners = {CID(b"\x01\x71\x12\x20" + d) for _, d in run_flow(tree_flow(commit.winners), alice.blocks)}
        dropped = [c for c in history if c not in a.log]
        assert len(dropped) == done.dropped
        assert any(c not in winners for c in dropped)
        for cid in dropped:  # the history is gone here, but for the entries that decide a key
            assert alice.blocks.has(cid) == (cid in winners)
        # bob's entries are concurrent with the commit; their ancestors are known to be under it
        a.join_heads(b.heads(), source=bob.blocks)
        b.sync_from(a)
        assert a.all() == b.all()
        assert a.state_root() == b.state_root()
        assert a.log.count == len(b.log)
        assert a.holds(commit.heads)
        assert a.holds(b.log.get(b.heads()[0]).next)


def test_a_compacted_database_reopens_as_it_was(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with bob:
        commit = _history(a, b)
        a.compact(commit)  # trust="replay": the commit's root recomputed first
        a.put("more", 1)
        state, root, count, kept = a.all(), a.state_root(), a.log.count, len(a.log)
        alice.close()
        with OrbitDB(tmp_path / "a", ALICE) as again:
            db: Any = again.open("kv", type="keyvalue", write=WRITE)
            assert (db.all(), db.state_root(), db.log.count, len(db.log)) == (state, root, count, kept)
            assert db.log.frontier is not None
            assert db.log.frontier.complete
            compacted = db.compacted
            assert compacted is not None
            assert compacted.commit.cid == commit.cid
            db.join_heads(b.heads(), source=bob.blocks)  # after a reopen too, no network needed
            b.sync_from(db)
            assert db.all() == b.all()
            assert db.state_root() == b.state_root()


def test_a_lost_checkpoint_is_rebuilt_from_the_frontier_record(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with bob:
        commit = _history(a, b)
        a.compact(commit, trust="writer")
        a.put("more", 1)
        state = a.all()
        alice.close()
        env = OrbitDB(tmp_path / "a", ALICE)
        lognum = LogRecords(env.blocks.env).number(a.address, create=False)
        assert lognum is not None
        env.blocks.env.write(
            lambda txn: txn.delete(lognum.to_bytes(4, "big"), db=env.blocks.env.db[b"checkpoints"])
        )
        with env:
            db: Any = env.open("kv", type="keyvalue", write=WRITE)
            assert db.all() == state


def test_compacting_twice_accumulates(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with alice, bob:
        first = _history(a, b)
        a.compact(first, trust="writer")
        a.join_heads(b.heads(), source=bob.blocks)
        for i in range(4):
            a.put(f"late{i}", i)
        second = a.commit()
        b.sync_from(a)  # bob holds the history a compaction drops (a peer cannot fetch it from here)
        b.put("k0", -1)
        done = a.compact(second, trust="writer")
        assert done.dropped == second.count - 1
        assert len(a.log) == 1
        a.join_heads(b.heads(), source=bob.blocks)
        a.put("k1", -2)
        b.sync_from(a)
        assert a.all() == b.all()
        assert a.state_root() == b.state_root()
        with pytest.raises(CommitError, match="where the log starts"):
            a.compact(first, trust="writer")  # before the frontier now


def _unchanged(orbit: OrbitDB, db: Any, before: tuple[Any, ...]) -> None:
    assert (len(db.log), db.log.count, db.all(), db.state_root()) == before
    assert db.log.frontier is None
    assert db.compacted is None
    assert _record(orbit, db.address) is None


def test_untrusted_or_wrong_commits_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with alice, bob:
        commit = _history(a, b)
        before = (len(a.log), a.log.count, a.all(), a.state_root())
        mallory = Identity.from_seed(b"m" * 32)
        forged = Commit.create(
            mallory, a.address, commit.heads, commit.root, commit.count, None, {}, commit.winners
        )
        with pytest.raises(CommitError, match="may not write"):
            a.compact(forged, trust="writer")
        _unchanged(alice, a, before)
        miscounted = Commit.create(
            ALICE, a.address, commit.heads, commit.root, commit.count + 1, None, {}, commit.winners
        )
        with pytest.raises(CommitError):
            a.compact(miscounted, trust="writer")
        _unchanged(alice, a, before)
        wrong_root = Commit.create(
            ALICE, a.address, commit.heads, b.state_root(), commit.count, None, {}, commit.winners
        )
        with pytest.raises(CommitError, match="root"):
            a.compact(wrong_root)  # replay: recomputed from the history
        _unchanged(alice, a, before)
        with pytest.raises(CommitError, match="vouched for by 2"):
            a.compact([commit], trust="quorum:2")
        with pytest.raises(StateError):
            a.compact(commit, trust="anyone")
        theirs = b.commit()
        with pytest.raises(CommitError, match="not held here"):
            a.compact(theirs, trust="writer")
        _unchanged(alice, a, before)
        events = alice.open("events", type="eventlog")
        events.add(1)
        with pytest.raises(StateError):
            events.compact(events.commit(), trust="writer")


def test_a_snapshot_opened_database_is_not_compacted(tmp_path: Path) -> None:
    alice, bob, a, b = _pair(tmp_path)
    with alice, bob:
        commit = _history(a, b)
        carol = OrbitDB(tmp_path / "c", Identity.from_seed(b"c" * 32))
        with carol:
            new: Any = carol.open(a.address, snapshot=commit, trust="writer", source=alice.blocks)
            new.join_heads(a.heads(), source=alice.blocks)
            with pytest.raises(DatabaseError, match="snapshot"):
                new.compact(a.commit(), trust="writer")


def test_a_failed_compaction_changes_nothing_in_memory_or_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = install(monkeypatch, tmp_path)
    for kind in ("put:under", "put:checkpoints", "put:frontiers", "delete", "commit"):
        directory = tmp_path / kind
        alice = OrbitDB(directory / "a", ALICE)
        bob = OrbitDB(directory / "b", BOB)
        with bob:
            a = alice.open("kv", type="keyvalue", write=WRITE)
            b = bob.open("kv", type="keyvalue", write=WRITE)
            commit = _history(a, b)
            before = (len(a.log), a.log.count, a.all(), a.state_root())
            faults.arm(kind, 1)
            with pytest.raises(BlockStoreError):
                a.compact(commit, trust="writer")
            faults.stop()
            assert faults.fired, kind
            _unchanged(alice, a, before)
            assert len(list(a.log)) == before[0]  # every entry still reads back
            a.put("next", 1)
            alice.close()
            with OrbitDB(directory / "a", ALICE) as again:
                db: Any = again.open("kv", type="keyvalue", write=WRITE)
                assert db.log.frontier is None
                assert len(db.log) == before[0] + 1
                assert db.get("next") == 1
                db.compact(db.commit(), trust="writer")  # and it compacts once the store works
                assert len(db.log) == 1
