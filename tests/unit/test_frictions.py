"""Issue 19: each friction a new user hit, as a test that failed before its fix.

Python API (items 3, 4): ``open(name)`` never silently creates a second database beside one the
directory knows, and every database opened through ``OrbitDB`` is in the registry the CLI reads.
Command line (items 7 to 10): messages, argument traps, exit codes, resumable imports, listings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orbit import DatabaseError, KeyValueDatabase, OrbitDB, UnknownStoreTypeError
from orbit.cli import main
from orbit.registry import Registry
from orbit.sql import TableDatabase
from tests.unit.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.delenv("ORBIT_DIR", raising=False)
    monkeypatch.delenv("ORBIT_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path / "orbit", capsys)


# ---------------------------------------------------------------- item 3: open(name) and its type


def test_open_by_name_uses_the_stored_type(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        kv.put("x", 1)
        address = kv.address
    with OrbitDB(tmp_path) as orbit:
        again = orbit.open("kv")
        assert isinstance(again, KeyValueDatabase)
        assert again.address == address
        assert again.get("x") == 1
        assert orbit.open("kv", type="keyvalue") is again


def test_open_by_name_with_another_type_names_the_existing_one(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        kv = orbit.open("kv", type="keyvalue")
        for other in ("counter", "eventlog", "documents"):
            with pytest.raises(DatabaseError, match=r"'kv' is a keyvalue database .*not " + other):
                orbit.open("kv", type=other)
        with pytest.raises(UnknownStoreTypeError):
            orbit.open("kv", type="nosuch")
        assert [db.address for db in orbit.databases] == [kv.address]  # nothing created beside it
        assert [e.name for e in Registry(tmp_path)] == ["kv"]


def test_open_by_name_with_other_writers_is_refused(tmp_path: Path) -> None:
    with OrbitDB(tmp_path / "b") as bob:
        bob_key = bob.identity.did
    with OrbitDB(tmp_path / "a") as orbit:
        kv = orbit.open("kv", type="keyvalue")
        with pytest.raises(DatabaseError, match="another keyvalue database"):
            orbit.open("kv", type="keyvalue", write=[orbit.identity.did, bob_key])
        assert orbit.open("kv", type="keyvalue", write=[orbit.identity.did]) is kv  # the same: fine


def test_the_type_is_required_to_create(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        with pytest.raises(DatabaseError, match="give its type to create it"):
            orbit.open("new")
        assert orbit.databases == []
        assert list(Registry(tmp_path)) == []


def test_a_table_opens_by_name_without_its_schema(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        t = orbit.open("t", type="table", schema="CREATE TABLE t (k TEXT PRIMARY KEY, v INT)")
        t.execute("INSERT INTO t VALUES ('a', 1)")
    with OrbitDB(tmp_path) as orbit:
        found = orbit.open("t")
        assert isinstance(found, TableDatabase)
        assert found.sql("SELECT * FROM t") == [("a", 1)]
        with pytest.raises(DatabaseError, match="another table database"):
            orbit.open("t", type="table", schema="CREATE TABLE t (k TEXT PRIMARY KEY)")


def test_drop_by_name_forgets_the_name(tmp_path: Path) -> None:
    with OrbitDB(tmp_path) as orbit:
        orbit.open("kv", type="keyvalue").put("x", 1)
        orbit.drop("kv")
        assert list(Registry(tmp_path)) == []
        assert orbit.open("kv", type="counter").value == 0  # the name is free again


# ---------------------------------------------------------------- item 4: one registry for Python and CLI


def test_the_cli_sees_what_python_opened(cli: Cli) -> None:
    with OrbitDB(cli.dir) as orbit:
        orbit.open("kv", type="keyvalue").put("x", "from python")
    assert "kv" in cli.ok("ls").out
    assert cli.ok("get", "kv", "x").out == '"from python"\n'
    cli.ok("put", "kv", "y", "2")
    with OrbitDB(cli.dir) as orbit:
        assert orbit.open("kv", type="keyvalue").get("y") == 2  # and the reverse


def test_the_cli_sees_the_demo_databases(cli: Cli, tmp_path: Path) -> None:
    assert main(["demo", "--dir", str(tmp_path / "d"), "--rounds", "1"]) == 0
    alice = Cli(tmp_path / "d" / "alice", cli.capsys)
    names = [line.split()[0] for line in alice.ok("ls").out.splitlines()[1:]]
    assert names == ["demo-settings", "demo-visits"]
    assert alice.ok("value", "demo-visits").out.strip() == "3"
