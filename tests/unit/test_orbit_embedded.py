"""The embedded default: local block store, keystore, manifests, OrbitDB facade, CAR files, CLI."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import lmdb
import pytest

from ipfs_log import CID, Entry, encode
from ipfs_log.errors import BlockNotFoundError, EntryRejectedError, OrbitError, PermissionDeniedError
from orbit import (
    CarError,
    DatabaseError,
    DatabaseLockedError,
    KeystoreError,
    LocalBlockStore,
    Manifest,
    OrbitDB,
    StorageCorruptError,
    UnknownAddressError,
    UnknownStoreTypeError,
    WrongPassphraseError,
    car_bytes,
    export_identity,
    import_identity,
    read_car,
)
from orbit.cli import _parser, main
from tests.conftest import ALICE, BOB, MALLORY

ROOT = Path(__file__).resolve().parents[2]


def _corrupt_block(directory: Path, cid: CID, data: bytes | None) -> None:
    """Overwrite (or, with None, delete) a stored block: an entry's lives in ``entries`` via ``where``."""
    env = lmdb.open(str(directory / "blocks"), max_dbs=8)
    where, blocks, entries = env.open_db(b"where"), env.open_db(b"blocks"), env.open_db(b"entries")
    with env.begin(write=True) as txn:
        key = txn.get(cid, db=where)
        db, key = (blocks, cid) if key is None else (entries, key)
        if data is None:
            assert txn.delete(key, db=db)
        else:
            txn.put(key, data, db=db)
    env.close()


# ---------------------------------------------------------------- local block store


def test_local_store_protocol(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "b")
    block = encode({"a": 1})
    cid = CID.for_block(block)
    assert not store.has(cid)
    with pytest.raises(BlockNotFoundError):
        store.get(cid)
    store.put(cid, block)
    assert store.get(cid) == block
    assert store.has(cid)
    assert store.get_many([cid]) == {cid: block}
    assert list(store) == [cid]
    assert len(store) == 1
    store.close()
    reopened = LocalBlockStore(tmp_path / "b")
    assert reopened.get(cid) == block
    reopened.close()


def test_local_store_detects_corrupt_block(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "blocks")
    block = encode({"a": 1})
    cid = CID.for_block(block)
    store.put(cid, block)
    store.close()
    _corrupt_block(tmp_path, cid, block[:-1])
    store = LocalBlockStore(tmp_path / "blocks")
    with pytest.raises(StorageCorruptError, match="do not hash"):
        store.get(cid)
    with pytest.raises(StorageCorruptError):
        store.get_many([cid])
    store.close()


# ---------------------------------------------------------------- keystore


def test_keystore_file_mode_and_reuse(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        did = orbit.identity.did
    path = tmp_path / "keystore" / "identity.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with OrbitDB(tmp_path) as orbit:
        assert orbit.identity.did == did


def test_keystore_passphrase(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, passphrase="correct horse") as orbit:
        did = orbit.identity.did
    assert b"seed" not in (tmp_path / "keystore" / "identity.json").read_bytes()
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        OrbitDB(tmp_path, passphrase="battery staple")
    with pytest.raises(WrongPassphraseError, match="passphrase is needed"):
        OrbitDB(tmp_path)
    with OrbitDB(tmp_path, passphrase="correct horse") as orbit:
        assert orbit.identity.did == did


def test_keystore_garbage_and_unreadable(tmp_path: Path) -> None:
    OrbitDB(tmp_path).close()
    path = tmp_path / "keystore" / "identity.json"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(KeystoreError, match="malformed"):
        OrbitDB(tmp_path)
    path.write_text('{"v": 1, "public_key": "00", "seed": "' + "11" * 32 + '"}')
    with pytest.raises(KeystoreError, match="does not match"):
        OrbitDB(tmp_path)
    path.unlink()
    path.mkdir()  # unreadable as a file, even for root
    with pytest.raises(KeystoreError, match="cannot read"):
        OrbitDB(tmp_path)
    path.rmdir()
    OrbitDB(tmp_path, identity=ALICE).close()
    if os.geteuid() != 0:  # root reads mode-000 files
        path.chmod(0)
        with pytest.raises(KeystoreError, match="cannot read"):
            OrbitDB(tmp_path)


def test_export_import_identity() -> None:
    assert import_identity(export_identity(ALICE)) == ALICE
    sealed = export_identity(ALICE, "pw")
    assert import_identity(sealed, "pw") == ALICE
    with pytest.raises(WrongPassphraseError):
        import_identity(sealed, "nope")
    with pytest.raises(KeystoreError):
        import_identity(b"[]")


# ---------------------------------------------------------------- manifests and addresses


def test_address_is_deterministic(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        both: list[bytes | str] = [ALICE.did, BOB.public_key]
        assert a.manifest("x", "keyvalue", both).address == b.manifest("x", "keyvalue", both[::-1]).address
        assert a.manifest("x", "keyvalue").address != b.manifest("x", "keyvalue").address
        assert a.manifest("x", "keyvalue").address != a.manifest("x", "counter").address
        assert a.manifest("x", "keyvalue", "*").address != a.manifest("y", "keyvalue", "*").address
        assert a.manifest("x", write="*").address == b.manifest("x", write="*").address
    m = Manifest("x", "eventlog", "*")
    assert Manifest.from_block(m.cid, m.block) == m


def test_open_by_address_and_errors(tmp_path: Path) -> None:
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        kv = orbit.open("prefs", type="keyvalue")
        kv.put("k", "v")
        address = kv.address
        kv.close()
        again = orbit.open(address, type="keyvalue")
        assert again.store_type == "keyvalue"
        assert again.get("k") == "v"
        unknown = Manifest("nowhere", "eventlog", "*").address
        with pytest.raises(UnknownAddressError, match="unknown database address"):
            orbit.open(unknown)
        with pytest.raises(UnknownStoreTypeError, match="unknown store type 'graph'"):
            orbit.open("g", type="graph")
        with pytest.raises(OrbitError):
            orbit.open("/orbitdb/not-a-cid")


# ---------------------------------------------------------------- reopen, checkpoints, damage


def _fill(directory: Path) -> tuple[str, list[object], dict[str, Any]]:
    with OrbitDB(directory, identity=ALICE) as orbit:
        ev = orbit.open("events", type="eventlog")
        for i in range(50):
            ev.add({"i": i})
        kv = orbit.open("kv", type="keyvalue")
        for i in range(30):
            kv.put(f"k{i % 7}", i)
        kv.delete("k0")
        return ev.address, [e.value for e in ev.iter()], kv.all()


def test_reopen_gives_same_state(tmp_path: Path) -> None:
    _, events, state = _fill(tmp_path)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        ev = orbit.open("events", type="eventlog")
        assert [e.value for e in ev.iter()] == events
        assert [e.value for e in ev.iter(reverse=True, amount=3)] == events[::-1][:3]
        assert orbit.open("kv", type="keyvalue").all() == state
        ev.add({"i": 50})  # appending on a reopened log links to the stored heads
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        ev = orbit.open("events", type="eventlog")
        assert [e.value for e in ev.iter()] == [*events, {"i": 50}]
        assert len(ev.log.heads) == 1
        assert ev.log.heads[0].time == 51


def test_tampered_checkpoint_is_rebuilt(tmp_path: Path) -> None:
    _, _, state = _fill(tmp_path)
    env = lmdb.open(str(tmp_path / "blocks"), max_dbs=8)
    db = env.open_db(b"checkpoints")
    with env.begin(write=True, db=db) as txn:
        for key, value in list(txn.cursor()):
            txn.put(key, value.replace(b"k1", b"kX"))
    env.close()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert orbit.open("kv", type="keyvalue").all() == state


def test_checkpoint_at_other_heads_is_rebuilt(tmp_path: Path) -> None:
    _, _, state = _fill(tmp_path)
    env = lmdb.open(str(tmp_path / "blocks"), max_dbs=8)
    saved = dict(env.begin(db=env.open_db(b"checkpoints")).cursor())
    env.close()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        orbit.open("kv", type="keyvalue").put("new", 1)
    env = lmdb.open(str(tmp_path / "blocks"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"checkpoints")) as txn:
        for key, value in saved.items():
            txn.put(key, value)  # a valid, authentic checkpoint, but of older heads
    env.close()
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        assert orbit.open("kv", type="keyvalue").all() == {**state, "new": 1}


def test_corrupt_and_missing_entry_blocks(tmp_path: Path) -> None:
    _fill(tmp_path)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        victim = list(orbit.open("events", type="eventlog").log)[10]
    _corrupt_block(tmp_path, victim.cid, victim.block[:-5])
    with OrbitDB(tmp_path, identity=ALICE) as orbit, pytest.raises(StorageCorruptError):
        list(orbit.open("events", type="eventlog").iter())
    _corrupt_block(tmp_path, victim.cid, None)
    with OrbitDB(tmp_path, identity=ALICE) as orbit, pytest.raises(StorageCorruptError, match="missing"):
        list(orbit.open("events", type="eventlog").iter())


def test_drop(tmp_path: Path) -> None:
    _fill(tmp_path)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        orbit.drop("events")
        assert list(orbit.open("events", type="eventlog").iter()) == []


# ---------------------------------------------------------------- locking


def test_second_opener_gets_clear_error(tmp_path: Path) -> None:
    with OrbitDB(tmp_path):
        with pytest.raises(DatabaseLockedError, match="open in another OrbitDB"):
            OrbitDB(tmp_path)
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from orbit import OrbitDB, DatabaseLockedError\n"
            f"try:\n    OrbitDB({str(tmp_path)!r})\nexcept DatabaseLockedError:\n    print('locked')\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "locked"
    OrbitDB(tmp_path).close()  # released on close


# ---------------------------------------------------------------- many writers, CAR files


def test_sync_from_converges(tmp_path: Path) -> None:
    writers = [ALICE.did, BOB.did]
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        ka, kb = a.open("shared", "keyvalue", writers), b.open("shared", "keyvalue", writers)
        ka.put("x", 1)
        kb.put("x", 2)
        kb.put("y", 3)
        assert len(ka.sync_from(kb)) == 2
        assert len(kb.sync_from(ka)) == 1
        assert ka.all() == kb.all()
        assert ka.log.head_cids == kb.log.head_cids
        state = ka.all()
    with OrbitDB(tmp_path / "a", identity=ALICE) as a:
        assert a.open("shared", "keyvalue", writers).all() == state


def test_sync_from_rejects_another_database(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        ka = a.open("mine", "keyvalue", [ALICE.did])
        kb = b.open("mine", "keyvalue", [ALICE.did, BOB.did])  # another database: other access
        assert ka.address != kb.address
        with pytest.raises(DatabaseError, match="another database"):
            ka.sync_from(kb)


def test_sync_from_rejects_unauthorised_writer_of_the_same_database(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "m", identity=MALLORY) as m:
        ka = a.open("mine", "keyvalue", [ALICE.did])
        ka.put("k", "alice")
        km = m.open("mine", "keyvalue", [ALICE.did])
        assert km.address == ka.address
        km.sync_from(ka)
        with pytest.raises(PermissionDeniedError):
            km.put("k", "mallory")  # refused locally: nothing signed
        # Mallory forges her store: a validly signed entry of hers, committed behind the log's back.
        log = km.log
        forged = Entry.create(MALLORY, ka.address, {"op": "PUT", "key": "k", "value": "mallory"},
                              time=2, next=log.head_cids, refs=[])  # fmt: skip
        log.storage.commit([forged], [forged.cid], len(log))
    with OrbitDB(tmp_path / "m", identity=MALLORY) as m:
        km = m.open("mine", "keyvalue", [ALICE.did])
        assert forged.cid in km.heads()
        with OrbitDB(tmp_path / "a", identity=ALICE) as a:
            ka = a.open("mine", "keyvalue", [ALICE.did])
            before = (ka.heads(), ka.all())
            with pytest.raises(PermissionDeniedError, match=MALLORY.did):
                ka.sync_from(km)
            assert (ka.heads(), ka.all()) == before


def test_car_roundtrip(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "a", identity=ALICE) as a, OrbitDB(tmp_path / "b", identity=BOB) as b:
        ea = a.open("log", type="eventlog", write="*")
        for i in range(20):
            ea.add(i)
        assert ea.export_car(tmp_path / "x.car") == 21
        eb = b.open("log", type="eventlog", write="*")
        assert len(eb.import_car(tmp_path / "x.car")) == 20
        assert [e.value for e in eb.iter()] == list(range(20))
        assert eb.import_car(tmp_path / "x.car") == []


def test_car_adversarial(tmp_path: Path) -> None:
    block = encode({"hello": 1})
    cid = CID.for_block(block)
    good = car_bytes([cid], [(cid, block)])
    assert read_car(good) == ([cid], {cid: block})
    header_len = good[0] + 1
    cases = {
        "header length: varint at byte 0 is truncated or longer than 9 bytes": b"\xff" * 12,
        "header length: varint at byte 0 is not minimally encoded": b"\x80\x00",
        "section at byte 59 is truncated (41 of 44 bytes)": good[:-3],
        "header length 0 is out of range": b"\x00",
        "header must be {roots: [CID…], version: 1}": car_bytes([], [])[:1]
        + encode({"roots": [], "version": 2})[: good[0]],
        f"section at byte 59: block does not hash to its CID {cid}": good[:-1] + bytes([good[-1] ^ 1]),
        "section at byte 59 is truncated (2 of 5 bytes)": good[:header_len] + b"\x05\x01\x71",
    }
    for match, data in cases.items():
        with pytest.raises(CarError, match=re.escape(match)):
            read_car(data)
    with OrbitDB(tmp_path, identity=ALICE) as orbit:
        ev = orbit.open("log", type="eventlog", write="*")
        foreign = car_bytes([cid], [(cid, block)])  # a root that is no entry
        with pytest.raises(EntryRejectedError, match=str(cid)):
            ev.import_car(foreign)
        missing = CID.for_block(b"\xa0")
        with pytest.raises(BlockNotFoundError, match=str(missing)):
            ev.import_car(car_bytes([missing], []))
        assert len(ev) == 0
        assert ev.heads() == []


# ---------------------------------------------------------------- CLI


def test_cli_demo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--dir", str(tmp_path), "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "converged: yes, both replicas are equal" in out
    lines = [line for line in out.splitlines() if "keyvalue: {" in line]
    assert len(lines) == 2
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]


def test_cli_put_get_add_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = str(tmp_path)
    assert main(["put", "--dir", d, "cfg", "color", '"blue"']) == 0
    assert main(["get", "--dir", d, "cfg", "color"]) == 0
    assert capsys.readouterr().out.strip() == '"blue"'
    assert main(["add", "--dir", d, "log", "hello"]) == 0
    assert main(["list", "--dir", d, "--type", "eventlog", "log"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == '"hello"'
    assert main(["address", "--dir", d, "log"]) == 0
    assert capsys.readouterr().out.startswith("/orbitdb/z")


def test_cli_error_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with OrbitDB(tmp_path):
        assert main(["get", "--dir", str(tmp_path), "cfg", "k"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("orbit: error:")
    assert err.count("\n") == 1


def test_cli_every_subcommand_has_help() -> None:
    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for choice in sub._choices_actions:  # type: ignore[attr-defined]
        assert choice.help, choice.dest
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        for action in p._actions:
            assert action.help, (name, action.dest)


def test_python_m_orbit_demo() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbit", "demo", "--rounds", "1"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "converged: yes" in out.stdout
