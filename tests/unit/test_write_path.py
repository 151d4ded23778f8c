"""The write path: access checked before signing, the directory format stamp, and thread safety."""

from __future__ import annotations

import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from ipfs_log import Identity, Log, MemoryBlockStore, PermissionDeniedError, WriteList
from orbit import DatabaseClosedError, OrbitDB, UnsupportedFormatError
from tests.conftest import ALICE, BOB, MALLORY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TIMEOUT = 60.0


# ---------------------------------------------------------------- access on local writes


def test_log_refuses_to_sign_for_a_non_writer() -> None:
    store = MemoryBlockStore()
    log = Log(MALLORY, store, log_id="x", access=WriteList([ALICE.public_key]))
    with pytest.raises(PermissionDeniedError, match=MALLORY.did) as info:
        log.append("hello")
    assert info.value.key == MALLORY.public_key
    with pytest.raises(PermissionDeniedError):
        log.append_many(["a", "b"])
    assert len(log) == 0
    assert log.heads == []
    assert len(store) == 0


@pytest.mark.parametrize(
    ("kind", "write"),
    [
        ("keyvalue", lambda db: db.put("k", 1)),
        ("keyvalue", lambda db: db.delete("k")),
        ("eventlog", lambda db: db.add(1)),
        ("counter", lambda db: db.inc(2)),
        ("documents", lambda db: db.put({"_id": "d"})),
        ("keyvalue", lambda db: _batch(db)),
    ],
)
def test_a_non_writer_cannot_write_locally(tmp_path: Path, kind: str, write: Callable[[Any], object]) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as alice:
        address = alice.open("shared", type=kind, write=[ALICE.did]).address
        car = tmp_path / "shared.car"
        alice.open(address).export_car(car)
    with OrbitDB(tmp_path / "m", identity=MALLORY) as mallory:
        db = mallory.open("shared", type=kind, write=[ALICE.did])
        assert db.address == address
        blocks_before = len(mallory.blocks)
        with pytest.raises(PermissionDeniedError):
            write(db)
        assert db.entry_count() == 0
        assert db.heads() == []
        assert len(mallory.blocks) == blocks_before  # nothing signed, nothing stored
    with OrbitDB(tmp_path / "m", identity=MALLORY) as mallory:
        assert mallory.open(address).entry_count() == 0


def _batch(db: Any) -> None:
    with db.batch() as b:
        b.put("a", 1)
        b.put("b", 2)


# ---------------------------------------------------------------- on-disk format


def _fixture(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "format1"


def test_a_directory_of_todays_format_opens(tmp_path: Path) -> None:
    directory = _fixture(tmp_path)
    assert not (directory / "FORMAT").exists()  # written before the stamp existed
    identity = Identity.from_seed(b"f" * 32)
    with OrbitDB(directory) as orbit:
        assert orbit.identity.public_key == identity.public_key
        kv = orbit.open("settings", type="keyvalue")
        assert kv.all() == {"theme": "dark", "n": 3}
        events = orbit.open("events", type="eventlog")
        assert [e.value for e in events.iter()] == [{"i": i} for i in range(5)]
        assert orbit.open("hits", type="counter").value == 3
        verified = Log.load(identity, orbit.blocks, kv.heads(), log_id=kv.address, access=kv.manifest.access)
        assert [e.cid for e in verified] == [e.cid for e in kv.log]
        kv.put("theme", "light")
    assert (directory / "FORMAT").read_text() == "orbit-directory 2\n"
    with OrbitDB(directory) as orbit:
        assert orbit.open("settings", type="keyvalue").get("theme") == "light"


def test_a_directory_of_format_1_opens_and_is_stamped_2(tmp_path: Path) -> None:
    """Format 2 adds the journal: a format-1 directory reads as before and is stamped 2 (so that an
    older orbit, which would not apply a journal, refuses it)."""
    directory = _fixture(tmp_path)
    (directory / "FORMAT").write_text("orbit-directory 1\n")
    with OrbitDB(directory) as orbit:
        assert orbit.open("settings", type="keyvalue").all() == {"theme": "dark", "n": 3}
    assert (directory / "FORMAT").read_text() == "orbit-directory 2\n"


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        ("orbit-directory 3\n", "directory format 3 is not supported"),
        ("orbit-directory 0\n", "directory format 0 is not supported"),
        ("something else\n", "not an orbit format stamp"),
        ("orbit-directory " + "9" * 100, "not an orbit format stamp"),
    ],
)
def test_an_unknown_or_newer_format_is_refused_untouched(tmp_path: Path, stamp: str, message: str) -> None:
    directory = _fixture(tmp_path)
    (directory / "FORMAT").write_text(stamp)
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    with pytest.raises(UnsupportedFormatError, match=message):
        OrbitDB(directory)
    after = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    assert after == before
    shutil.rmtree(directory)


# ---------------------------------------------------------------- threads


def _run_threads(*targets: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as e:
                errors.append(e)

        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_one_writer_and_readers(tmp_path: Path) -> None:
    n = 400
    with OrbitDB(tmp_path, identity=ALICE, checkpoint_every=50) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        events = orbit.open("ev", type="eventlog")
        done = threading.Event()

        def write() -> None:
            try:
                for i in range(n):
                    kv.put(f"k{i}", i)
                    events.add(i)
            finally:
                done.set()

        def read_kv() -> None:
            while not done.is_set():
                items = kv.items()
                assert all(kv.get(k) == v for k, v in items[-5:])
                assert len(dict(items)) == len(items)
                assert all(isinstance(key, str) for key in kv)

        def read_log() -> None:
            while not done.is_set():
                values = [e.value for e in events.iter()]
                assert values == list(range(len(values)))  # a prefix of what was written, in order
                newest = cast(list[int], [e.value for e in events.iter(reverse=True, amount=3)])
                if newest:  # (empty before the first write)
                    assert newest == list(range(newest[0], newest[0] - len(newest), -1))
                for entry in events.log:
                    assert entry.cid in events.log

        _run_threads(write, read_kv, read_kv, read_log)
        assert kv.all() == {f"k{i}": i for i in range(n)}
        assert [e.value for e in events.iter()] == list(range(n))
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert len(orbit.open("kv", type="keyvalue")) == n


def test_two_writers(tmp_path: Path) -> None:
    n = 300
    with OrbitDB(tmp_path, identity=ALICE, checkpoint_every=64) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        counter = orbit.open("c", type="counter")

        def writer(tag: str) -> Callable[[], None]:
            def run() -> None:
                for i in range(n):
                    if i % 10 == 0:
                        with kv.batch() as b:
                            b.put(f"{tag}{i}", i)
                    else:
                        kv.put(f"{tag}{i}", i)
                    counter.inc()

            return run

        _run_threads(writer("a"), writer("b"))
        expected = {f"{t}{i}": i for t in "ab" for i in range(n)}
        assert kv.all() == expected
        assert counter.value == 2 * n
        assert kv.entry_count() == 2 * n
        assert len(kv.heads()) == 1  # one chain: writes were serialised
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        assert kv.all() == expected
        verified = Log.load(ALICE, orbit.blocks, kv.heads(), log_id=kv.address, access=kv.manifest.access)
        assert len(verified) == 2 * n


def test_sync_while_both_sides_write(tmp_path: Path) -> None:
    n = 150
    writers = [ALICE.did, BOB.did]
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        ka = a.open("kv", type="keyvalue", write=writers)
        kb = b.open("kv", type="keyvalue", write=writers)
        done = threading.Barrier(3, timeout=TIMEOUT)

        def write(db: Any, tag: str) -> Callable[[], None]:
            def run() -> None:
                for i in range(n):
                    db.put(f"{tag}{i}", i)
                done.wait()

            return run

        def sync() -> None:
            while True:
                ka.sync_from(kb)
                kb.sync_from(ka)
                if done.n_waiting == 2:
                    break
            done.wait()

        _run_threads(write(ka, "a"), write(kb, "b"), sync)
        ka.sync_from(kb)
        kb.sync_from(ka)
        expected = {f"{t}{i}": i for t in "ab" for i in range(n)}
        assert ka.all() == kb.all() == expected
        assert ka.heads() == kb.heads()


def test_closing_while_another_thread_reads_and_writes(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        started = threading.Event()
        outcomes: list[str] = []

        def use() -> None:
            i = 0
            while True:
                try:
                    kv.put(f"k{i}", i)
                    kv.get(f"k{i}")
                    kv.items()
                except DatabaseClosedError:
                    outcomes.append("closed")
                    return
                i += 1
                if i == 20:
                    started.set()

        def close() -> None:
            assert started.wait(TIMEOUT)
            kv.close()

        _run_threads(use, close)
        assert outcomes == ["closed"]
        acknowledged = orbit.open("kv", type="keyvalue").all()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert orbit.open("kv", type="keyvalue").all() == acknowledged
