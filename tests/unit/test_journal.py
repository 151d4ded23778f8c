"""The write-behind journal: its file format, replay after a kill, and failures on both sides of it."""

from __future__ import annotations

import errno
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import orbit.storage.env as env_module
from ipfs_log import CID, Log
from orbit import BlockStoreError, OrbitDB, StorageCorruptError, StorageFullError
from orbit.storage.journal import MAGIC, Commit, Journal
from tests.conftest import ALICE, BOB
from tests.faults.lmdb_faults import install

WRITE = [ALICE.public_key, BOB.public_key]


def _records(path: Path) -> list[tuple[int, bytes]]:
    journal = Journal(path, sync=False)
    try:
        return list(journal.records())
    finally:
        journal.close()


def test_records_round_trip_and_a_torn_tail_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    journal = Journal(path, sync=False)
    for generation in range(1, 6):
        journal.append(generation, bytes([generation]) * generation * 10)
    journal.close()
    expected = [(g, bytes([g]) * g * 10) for g in range(1, 6)]
    assert _records(path) == expected
    whole = path.stat().st_size
    with open(path, "ab") as f:  # a kill in the middle of the sixth record
        f.write(struct.pack(">IIQ", 100, 0, 6) + b"x" * 30)
    assert _records(path) == expected
    assert path.stat().st_size == whole  # the torn end is cut off
    journal = Journal(path, sync=False)
    journal.append(6, b"six")  # appending goes on after the last whole record
    journal.close()
    assert _records(path) == [*expected, (6, b"six")]


@pytest.mark.parametrize("damage", ["crc", "generation", "length"])
def test_a_damaged_record_ends_the_journal(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal"
    journal = Journal(path, sync=False)
    journal.append(1, b"one")
    journal.append(2, b"two")
    journal.append(3, b"three")
    journal.close()
    data = bytearray(path.read_bytes())
    second = len(MAGIC) + 16 + 3  # the second record's header
    if damage == "crc":
        data[second + 16] ^= 1  # a payload byte
    elif damage == "generation":
        data[second + 8 : second + 16] = (1).to_bytes(8, "big")  # not after the first
    else:
        data[second : second + 4] = (1 << 30).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    assert _records(path) == [(1, b"one")]


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    path.write_bytes(b"something else entirely\n")
    with pytest.raises(StorageCorruptError, match="not an orbit journal"):
        Journal(path, sync=False)
    assert path.read_bytes() == b"something else entirely\n"


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal"
    journal = Journal(path, sync=False)
    journal.append(1, b"one")
    before = path.read_bytes()
    real = os.pwrite

    def half_then_full(fd: int, data: Any, offset: int) -> int:
        if len(data) > 8:
            return real(fd, bytes(data[: len(data) // 2]), offset)
        raise OSError(errno.ENOSPC, "no space left")

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(OSError, match="no space"):
        journal.append(2, b"x" * 100)
    monkeypatch.undo()
    assert path.read_bytes() == before
    journal.append(2, b"two")
    journal.close()
    assert _records(path) == [(1, b"one"), (2, b"two")]


_KEYS = st.binary(min_size=76, max_size=76)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**63),
    st.lists(st.binary(min_size=36, max_size=36), max_size=4),
    st.lists(st.tuples(_KEYS, st.binary(max_size=300)), max_size=5),
)
def test_commit_payloads_round_trip(lognum: int, first: int, heads: list[bytes], items: Any) -> None:
    prefix = lognum.to_bytes(4, "big")
    commit = Commit(lognum, first, b"".join(heads), [(prefix + k, v) for k, v in items])
    again = Commit.decode(commit.encode())
    assert (again.lognum, again.first, again.heads, again.items) == (
        commit.lognum,
        commit.first,
        commit.heads,
        commit.items,
    )


def test_malformed_commit_payloads_are_storage_corruption() -> None:
    prefix = (7).to_bytes(4, "big")
    payload = Commit(7, 3, b"h" * 36, [(prefix + b"k" * 76, b"value")]).encode()
    for cut in range(len(payload)):
        with pytest.raises(StorageCorruptError, match="malformed journal record"):
            Commit.decode(payload[:cut])
    with pytest.raises(StorageCorruptError, match="bytes after"):
        Commit.decode(payload + b"!")
    with pytest.raises(StorageCorruptError, match="kind"):
        Commit.decode(b"\x09" + payload[1:])


# ---------------------------------------------------------------------- through a directory


def _crash_copy(directory: Path, to: Path) -> Path:
    """The directory's files as a kill of the process would leave them (every write is in them)."""
    shutil.copytree(directory, to, ignore=shutil.ignore_patterns("LOCK"))
    return to


def _journal_records(directory: Path) -> list[tuple[int, bytes]]:
    return _records(directory / "blocks" / env_module.JOURNAL_FILE)


def _verified(orbit: OrbitDB, kv: Any) -> list[CID]:
    log = Log.load(ALICE, orbit.blocks, kv.heads(), log_id=kv.address, access=kv.manifest.access)
    return [e.cid for e in log]


def _check_reopened(directory: Path, expected: dict[str, Any], heads: list[CID], count: int) -> None:
    """Reopened, the directory shows the acknowledged writes, with the same heads, all verifiable."""
    with OrbitDB(directory, identity=ALICE) as again:
        kv = again.open("kv", type="keyvalue", write=WRITE)
        assert kv.heads() == heads
        assert kv.all() == expected
        assert len(_verified(again, kv)) == count
        kv.put("after", 1)  # generations go on after the ones already used
    with OrbitDB(directory, identity=ALICE) as again:
        assert again.open("kv", type="keyvalue", write=WRITE).get("after") == 1


def test_journaled_writes_survive_a_kill(tmp_path: Path) -> None:
    orbit = OrbitDB(tmp_path / "a", identity=ALICE)
    kv = orbit.open("kv", type="keyvalue", write=WRITE)
    for i in range(40):
        kv.put(f"k{i}", i)
    expected, heads = kv.all(), kv.heads()
    assert len(_journal_records(tmp_path / "a")) == 40  # not in LMDB yet: reopening must replay them
    crashed = _crash_copy(tmp_path / "a", tmp_path / "crashed")
    orbit.close()
    _check_reopened(crashed, expected, heads, 40)
    assert _journal_records(crashed) == []  # applied, and emptied


def test_replay_skips_what_lmdb_already_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Records applied to LMDB but left in the file (it could not be emptied) are not applied again,
    so heads written since by a direct commit are not taken back."""
    with OrbitDB(tmp_path / "peer", identity=BOB) as peer_orbit:
        peer = peer_orbit.open("kv", type="keyvalue", write=WRITE)
        for i in range(100):  # a join of 100 entries is committed to LMDB directly
            peer.put(f"p{i}", i)
        orbit = OrbitDB(tmp_path / "a", identity=ALICE)
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        monkeypatch.setattr(Journal, "reset", _failing_reset)
        for i in range(5):
            kv.put(f"k{i}", i)
        assert len(list(kv.log)) == 5  # the read applies the journal; emptying it fails
        kv.put("k0", "again")  # journaled after the stale records
        kv.sync_from(peer)  # direct: applies the pending record, then the joined entries and heads
        assert "not emptied" in caplog.text
        assert [g for g, _ in _journal_records(tmp_path / "a")] == [1, 2, 3, 4, 5, 6]
        expected, heads = kv.all(), kv.heads()
        crashed = _crash_copy(tmp_path / "a", tmp_path / "crashed")
        monkeypatch.undo()
        orbit.close()
    _check_reopened(crashed, expected, heads, 106)


def _failing_reset(self: Journal) -> None:
    raise OSError(errno.EIO, "injected: cannot truncate")


def test_a_journal_write_that_fails_is_not_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        kv.put("a", 1)

        def full(fd: int, data: Any, offset: int) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "pwrite", full)
        with pytest.raises(StorageFullError, match="No space"):
            kv.put("b", 2)
        monkeypatch.undo()
        assert kv.all() == {"a": 1}
        assert len(kv.log) == 1
        kv.put("c", 3)
    with OrbitDB(tmp_path / "a", identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        assert kv.all() == {"a": 1, "c": 3}
        assert len(_verified(orbit, kv)) == 2


def test_while_lmdb_fails_commits_wait_in_the_journal_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env_module, "JOURNAL_FLUSH", 2)
    monkeypatch.setattr(env_module, "JOURNAL_LIMIT_BYTES", 3_000)
    faults = install(monkeypatch, tmp_path)

    with OrbitDB(tmp_path / "a", identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        faults.fail_every("commit", "injected: disk error")  # LMDB takes nothing from the journal
        acknowledged: dict[str, int] = {}
        refused: BlockStoreError | None = None
        for i in range(100):  # each over the flush threshold tries LMDB, fails, and is kept
            try:
                kv.put(f"k{i}", i)
            except BlockStoreError as e:
                refused = e
                break
            acknowledged[f"k{i}"] = i
        assert refused is not None
        assert "disk error" in str(refused)
        assert 5 < len(acknowledged) < 100  # refused once too much waits, nothing of it kept
        assert kv.all() == acknowledged
        with pytest.raises(BlockStoreError):
            list(kv.log)  # a read needs LMDB to take the journal first
        faults.stop()
        monkeypatch.undo()
        assert len(list(kv.log)) == len(acknowledged)
    with OrbitDB(tmp_path / "a", identity=ALICE) as orbit:
        assert orbit.open("kv", type="keyvalue", write=WRITE).all() == acknowledged


def test_with_sync_every_journaled_commit_is_flushed_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        flushed.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    with OrbitDB(tmp_path / "a", identity=ALICE, sync=True) as orbit:
        kv = orbit.open("kv", type="keyvalue", write=WRITE)
        before = len(flushed)
        for i in range(3):
            kv.put(f"k{i}", i)
        assert len(flushed) - before >= 3


def test_with_sync_a_failed_flush_to_disk_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal"
    journal = Journal(path, sync=True)
    journal.append(1, b"one")
    before = path.read_bytes()

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(OSError, match="I/O error"):
        journal.append(2, b"two")  # not acknowledged: it must not be replayed either
    monkeypatch.undo()
    assert path.read_bytes() == before
    journal.append(2, b"again")
    journal.close()
    assert _records(path) == [(1, b"one"), (2, b"again")]
