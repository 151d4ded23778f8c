"""Issue 19: each friction a new user hit, as a test that failed before its fix.

Python API (items 3, 4): ``open(name)`` never silently creates a second database beside one the
directory knows, and every database opened through ``OrbitDB`` is in the registry the CLI reads.
Command line (items 7 to 10): messages, argument traps, exit codes, resumable imports, listings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipfs_log import CID
from orbit import DatabaseError, EventLogDatabase, KeyValueDatabase, OrbitDB, UnknownStoreTypeError
from orbit.car import car_bytes, read_car
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


# ---------------------------------------------------------------- item 7: SQL on the command line

TABLE = "CREATE TABLE people (name TEXT PRIMARY KEY, born INT); CREATE INDEX people_born ON people (born)"


@pytest.fixture
def people(cli: Cli) -> Cli:
    cli.ok("create", "people", "--type", "table", "--schema", TABLE)
    cli.ok("sql", "people", "--write", "INSERT INTO people VALUES ('ada', 1815)")
    return cli


def test_a_write_without_write_names_the_option(people: Cli) -> None:
    result = people("sql", "people", "DELETE FROM people")
    assert result.status == 1
    assert "orbit sql people --write 'DELETE FROM people'" in result.err


def test_drop_table_says_the_schema_is_fixed(people: Cli) -> None:
    for extra in ([], ["--write"]):
        result = people("sql", "people", "DROP TABLE people", *extra)
        assert result.status == 1
        assert "the schema is fixed" in result.err
    assert people.ok("sql", "people", "SELECT count(*) AS n FROM people").out.splitlines()[-1] == "1"


def test_interactive_sql_has_dot_commands(people: Cli) -> None:
    result = people(
        "sql", "people", stdin=".tables\n.schema people\nSELECT name FROM people;\n.quit\nSELECT 2;\n"
    )
    assert result.status == 0, result.err
    assert result.out.splitlines() == [
        "people",
        "CREATE TABLE people (name TEXT PRIMARY KEY, born INT) STRICT;",
        "CREATE INDEX people_born ON people (born);",
        "name",
        "----",
        "ada",
    ]
    wrong = people("sql", "people", stdin=".nope\n")
    assert wrong.status == 1
    assert "unknown command '.nope'" in wrong.err
    assert people.ok("sql", "people", ".tables").out == "people\n"


def test_info_shows_a_tables_schema(people: Cli) -> None:
    out = people.ok("info", "people").out
    assert "schema     CREATE TABLE people (name TEXT PRIMARY KEY, born INT) STRICT;" in out
    assert (
        people.ok("info", "people", "--json").json["schema"][1] == "CREATE INDEX people_born ON people (born)"
    )


# ---------------------------------------------------------------- item 8: argument traps and exit codes


def test_write_does_not_swallow_the_name(cli: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "bob", cli.capsys).ok("id").out.strip()
    trap = cli("create", "--write", bob, "notes2", "--type", "eventlog")
    assert trap.status == 0, trap.err
    assert cli.ok("info", "notes2", "--json").json["name"] == "notes2"
    carol = Cli(tmp_path / "carol", cli.capsys).ok("id").out.strip()
    cli.ok("create", "notes3", "--type", "eventlog", "--write", f"{bob},{carol}")
    cli.ok("create", "notes4", "--type", "eventlog", "--write", bob, "--write", carol)
    for name in ("notes3", "notes4"):
        assert len(cli.ok("info", name, "--json").json["writers"]) == 3
    extra = cli("create", "notes5", "--type", "eventlog", "--write", bob, carol)
    assert extra.status == 2  # one key per --write: the second is not taken as a name


def test_sql_params_plural_or_repeated(people: Cli) -> None:
    insert = "INSERT INTO people VALUES (?, ?)"
    people.ok("sql", "people", "--write", insert, "-p", "alan", "1912")
    people.ok("sql", "people", "--write", insert, "-p", "kurt", "-p", "1906")
    rows = people.ok(
        "sql", "people", "SELECT name FROM people WHERE born > ? ORDER BY name", "-p", "1900"
    ).out
    assert rows.splitlines()[2:] == ["alan", "kurt"]


@pytest.mark.parametrize("condition", ["born>abc", "born>>1", "born=", "born<=x"])
def test_a_query_condition_that_can_match_nothing_is_a_usage_error(cli: Cli, condition: str) -> None:
    cli.ok("create", "docs", "--type", "documents")
    cli.ok("put", "docs", '{"_id": "ada", "born": 1815, "name": "Ada"}')
    result = cli("query", "docs", condition)
    assert result.status == 2
    assert repr(condition) in result.err
    assert cli.ok("query", "docs", "born>1800").out.splitlines()[1].startswith("ada")
    assert cli.ok("query", "docs", 'name>"A"').out.splitlines()[1].startswith("ada")


@pytest.mark.parametrize(
    "args",
    [
        ["open", "notanaddress"],
        ["open", "/orbitdb/notacid"],
        ["get", "/orbitdb/notacid", "k"],
        ["info", "/orbitdb/x"],
    ],
)
def test_a_malformed_address_is_a_usage_error(cli: Cli, args: list[str]) -> None:
    cli.ok("id")
    result = cli(*args)
    assert result.status == 2
    assert "not an /orbitdb/<cid> address" in result.err


def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 success; 1 a failure" in text
    assert "2 a usage error" in text
    assert "130 interrupted" in text


# ---------------------------------------------------------------- item 9: imports that fail or stop


@pytest.fixture
def export(cli: Cli, tmp_path: Path) -> tuple[Cli, bytes]:
    """An eventlog of two entries (the second's parent is the first), exported; and another directory."""
    cli.ok("create", "events", "--type", "eventlog")
    cli.ok("add", "events", '"one"')
    cli.ok("add", "events", '"two"')
    cli.ok("export", "events", str(tmp_path / "events.car"))
    other = Cli(tmp_path / "other", cli.capsys)
    other.ok("id")
    return other, (tmp_path / "events.car").read_bytes()


def _entries(data: bytes) -> tuple[CID, list[tuple[CID, bytes]], list[CID]]:
    roots, blocks = read_car(data)
    manifest = next(iter(blocks))  # an export writes the manifest first
    entries = [(c, b) for c, b in blocks.items() if c != manifest]
    return manifest, entries, roots


def test_an_import_that_admits_nothing_leaves_nothing_registered(
    export: tuple[Cli, bytes], tmp_path: Path
) -> None:
    other, data = export
    manifest, _, roots = _entries(data)
    blocks = read_car(data)[1]
    head = next(c for c in roots if c != manifest)
    partial = car_bytes(
        roots, [(manifest, blocks[manifest]), (head, blocks[head])]
    )  # the head's parent lacks
    (tmp_path / "partial.car").write_bytes(partial)
    failed = other("import", str(tmp_path / "partial.car"))
    assert failed.status == 1
    assert "lacks blocks" in failed.err
    assert "nothing was imported" in failed.err
    assert "resume()" not in failed.err
    assert other.ok("ls").out == "NAME  TYPE  ADDRESS\n(none)\n"
    assert other.ok("import", str(tmp_path / "events.car"), "--json").json["entries"] == 2


def test_a_partial_import_is_kept_and_continued_by_running_it_again(
    export: tuple[Cli, bytes], tmp_path: Path
) -> None:
    other, data = export
    manifest, entries, roots = _entries(data)
    blocks = read_car(data)[1]
    head = next(c for c in roots if c != manifest)
    first = next(c for c, _ in entries if c != head)
    # the first entry whole, the head named but absent: the first is admitted, the head is missing
    (tmp_path / "partial.car").write_bytes(
        car_bytes([manifest, first, head], [(manifest, blocks[manifest]), (first, blocks[first])])
    )
    failed = other("import", str(tmp_path / "partial.car"))
    assert failed.status == 1
    assert "events holds 1 entry" in failed.err
    assert "this one again once it is complete" in failed.err
    assert other.ok("info", "events", "--json").json["entries"] == 1
    again = other.ok("import", str(tmp_path / "events.car"), "--json").json
    assert (again["admitted"], again["entries"]) == (1, 2)


def test_an_interrupted_import_leaves_no_empty_database(
    export: tuple[Cli, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = export

    def interrupted(*args: object, **kwargs: object) -> list[object]:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(EventLogDatabase, "import_car", interrupted)
        result = other("import", str(tmp_path / "events.car"))
    assert result.status == 130
    assert other.ok("ls").out == "NAME  TYPE  ADDRESS\n(none)\n"
    assert other.ok("import", str(tmp_path / "events.car"), "--json").json["entries"] == 2


# ---------------------------------------------------------------- item 10: smaller things


def test_empty_listings_print_a_header(cli: Cli) -> None:
    assert cli.ok("ls").out == "NAME  TYPE  ADDRESS\n(none)\n"
    cli.ok("create", "kv", "--type", "keyvalue")
    cli.ok("create", "ev", "--type", "eventlog")
    cli.ok("create", "docs", "--type", "documents")
    assert cli.ok("list", "kv").out == "KEY  VALUE\n(none)\n"
    assert cli.ok("list", "ev").out == "CID  VALUE\n(none)\n"
    assert cli.ok("query", "docs", "x=1").out == "KEY  DOCUMENT\n(none)\n"
    assert cli.ok("log", "kv").out == "(no entries)\n"
    assert cli.ok("list", "kv", "--json").out == ""


def test_no_python_reprs_in_output(cli: Cli, tmp_path: Path) -> None:
    cli.ok("create", "people", "--type", "documents", "--index", "city", "--index", "born")
    info = cli.ok("info", "people").out
    assert "indexes=city,born" in info
    assert "['" not in info
    demo = cli.ok("demo", "--dir", str(tmp_path / "d"), "--rounds", "1").out
    assert "color='" not in demo
    assert 'alice color="red-0"' in demo


def test_list_on_a_table_suggests_sql(people: Cli) -> None:
    result = people("list", "people")
    assert result.status == 1
    assert "orbit sql people 'SELECT * FROM" in result.err


def test_the_readme_examples_run_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    offline = [b for b in blocks if "ipfs=" not in b]  # the IPFS walkthroughs need running nodes
    assert len(offline) >= 6
    monkeypatch.chdir(tmp_path)
    for run in (1, 2):
        for block in offline:
            exec(compile(block, f"README.md (run {run})", "exec"), {})
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory
