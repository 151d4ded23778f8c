"""Persisted logs: stored in log order, reopened without a replay, equal to an in-memory replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipfs_log import CID, BlockNotFoundError, Log, MemoryBlockStore, WriteList
from orbit import OrbitDB
from tests.conftest import ALICE, BOB

WRITE = [ALICE.public_key, BOB.public_key]


def _memory_replica(*logs: Log) -> Log:
    """A fresh in-memory log that joined every given log: the reference order."""
    replica = Log(ALICE, MemoryBlockStore(), log_id=logs[0].id, access=WriteList(WRITE))
    for log in logs:
        replica.join(log)
    return replica


def _state(log: Log) -> tuple[list[CID], list[CID], list[object]]:
    return [e.cid for e in log], log.head_cids, [e.payload for e in log]


@pytest.mark.parametrize("interleaved", [3, 100])  # few: insertion into place; many: a full re-sort
def test_out_of_order_joins_reopen_in_log_order(tmp_path: Path, interleaved: int) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        da = a.open("events", type="eventlog", write=WRITE)
        db = b.open("events", type="eventlog", write=WRITE)
        for i in range(interleaved):
            da.add(f"a{i}")
        for i in range(interleaved + 20):  # Bob's entries interleave with and run past Alice's
            db.add(f"b{i}")
        da.add("a-after")
        da.sync_from(db)
        db.sync_from(da)
        expected = _state(_memory_replica(da.log, db.log))
        assert _state(da.log) == expected
        assert _state(db.log) == expected
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        da, db = (
            a.open("events", type="eventlog", write=WRITE),
            b.open("events", type="eventlog", write=WRITE),
        )
        assert _state(da.log) == expected
        assert _state(db.log) == expected
        assert [ev.value for ev in da.iter()] == [p["value"] for p in expected[2]]  # type: ignore[index]


def test_payloads_match_entries_in_every_range(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("events", type="eventlog")
        for i in range(1500):  # several read chunks
            db.add({"i": i})
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        log = orbit.open("events", type="eventlog").log
        entries = list(log)
        assert len(entries) == 1500
        middle = entries[700].cid
        for kwargs in (
            {},
            {"reverse": True},
            {"gt": middle},
            {"lte": middle, "reverse": True, "amount": 600},
            {"gte": entries[3].cid, "lt": entries[1400].cid, "amount": 900},
        ):
            got = list(log.payloads(**kwargs))
            want = [(e.cid, e.payload) for e in log.iter(**kwargs)]
            assert got == want, kwargs
        memory = _memory_replica(log)
        assert list(log.payloads()) == list(memory.payloads())


def test_append_after_reopen_uses_stored_skip_pointers(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("events", type="eventlog")
        for i in range(32):
            db.add(i)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        log = orbit.open("events", type="eventlog").log
        entry = log.append({"op": "ADD", "value": 32})  # position 32: refs 2, 4, 8, 16 and 32 back
        order = list(log)
        assert list(entry.refs) == [order[32 - d].cid for d in (2, 4, 8, 16, 32)]
        assert _state(log) == _state(_memory_replica(log))


def test_reads_across_remaps_and_order_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orbit.storage.env as env
    import orbit.storage.logs as logs

    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("events", type="eventlog")
        with db.batch() as batch:
            for i in range(700):
                batch.add({"i": i})
        expected = _state(db.log)
    monkeypatch.setattr(logs, "_ORDER_SEGMENT", 64)  # the open walks the order keys in 11 segments
    monkeypatch.setattr(env, "REMAP_BYTES", 4096)  # and re-maps the store every few chunks read
    monkeypatch.setattr(env, "MAPPED_LIMIT", 0)
    remaps: list[int] = []
    reopen = env.Environment.remap

    def counting(self: env.Environment) -> None:
        remaps.append(1)
        reopen(self)

    monkeypatch.setattr(env.Environment, "remap", counting)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        db = orbit.open("events", type="eventlog")
        assert _state(db.log) == expected
        values = [ev.value["i"] for ev in db.iter(reverse=True)]  # type: ignore[index,call-overload]
        assert values == list(range(699, -1, -1))
    assert len(remaps) >= 12


def test_persisted_join_with_a_missing_block_resumes(tmp_path: Path) -> None:
    source_log = Log(BOB, MemoryBlockStore(), log_id="", access=WriteList(WRITE))
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        log = orbit.open("events", type="eventlog", write=WRITE).log
        source_log.id = log.id
        chain = source_log.append_many([{"op": "ADD", "value": i} for i in range(10)])
        source = MemoryBlockStore()
        source.put_many((e.cid, e.block) for e in chain if e is not chain[4])
        with pytest.raises(BlockNotFoundError):
            log.join_heads([chain[-1].cid], source=source)
        before = [e.cid for e in log]  # what the walk reached around the gap (a0 via a skip pointer)
        assert before == [e.cid for e in chain[: len(before)]]
        assert len(before) < 4
        assert log.missing == frozenset({chain[4].cid})
        source.put(chain[4].cid, chain[4].block)
        assert [e.cid for e in log.resume(source)] == [e.cid for e in chain[len(before) :]]
        assert log.missing == frozenset()
        assert chain[4].cid in log
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert [e.cid for e in orbit.open("events", type="eventlog", write=WRITE).log] == [
            e.cid for e in chain
        ]


_KILLED_WRITER = """
import os, sys
sys.path.insert(0, {root!r})
from orbit import OrbitDB
from tests.conftest import ALICE
orbit = OrbitDB({directory!r}, identity=ALICE)
kv = orbit.open("kv", type="keyvalue")
for i in range(30):
    kv.put(f"k{{i}}", i)
kv.save_checkpoint()
for i in range(25, 32):
    kv.put(f"k{{i}}", -i)  # 5 overwrites, 2 new keys
kv.delete("k0")
os._exit(0)  # like a kill: no close, so the checkpoint lags 8 entries behind
"""


def test_reopen_after_a_kill_applies_only_what_the_checkpoint_lacks(tmp_path: Path) -> None:
    import subprocess
    import sys

    from stores import KeyValue

    root = str(Path(__file__).resolve().parents[2])
    code = _KILLED_WRITER.format(root=root, directory=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        assert kv.store.applied == 8  # the checkpoint, then the 8 entries it did not cover
        expected = {f"k{i}": (-i if i >= 25 else i) for i in range(1, 32)}
        assert kv.all() == expected
        replay = KeyValue(kv.log)
        assert replay.all() == expected  # a full replay agrees
        assert replay.applied == len(kv.log)
        assert kv.store.applied == 8
    with OrbitDB(tmp_path, identity=ALICE) as orbit:  # closed cleanly: nothing to apply
        reopened = orbit.open("kv", type="keyvalue")
        assert reopened.all() == expected
        assert reopened.store.applied == 0


def test_checkpoints_are_saved_as_the_log_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orbit.databases.base

    saved: list[int] = []
    original = orbit.databases.base.Database.save_checkpoint

    def counting(self: orbit.databases.base.Database[Any]) -> None:
        saved.append(len(self.store.log))
        original(self)

    monkeypatch.setattr(orbit.databases.base.Database, "save_checkpoint", counting)
    with OrbitDB(tmp_path, identity=ALICE, checkpoint_every=10) as o:
        kv = o.open("kv", type="keyvalue")
        for i in range(45):
            kv.put(f"k{i}", i)
        # every 10 entries while half the log is fewer; then when the entries since the last save
        # reach half the log (39 - 20 >= 39 // 2): the saves' total work stays under twice the log
        assert saved == [10, 20, 39]
    assert saved == [10, 20, 39, 45]  # and on close
