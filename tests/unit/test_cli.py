"""The ``orbit`` command line: every subcommand through ``main([...])``, errors, --json, Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipfs_log import CID
from orbit import CounterDatabase, DocumentsDatabase, EventLogDatabase, KeyValueDatabase, OrbitDB
from orbit.car import car_bytes
from orbit.cli import main
from orbit.cli._output import Output
from orbit.cli._session import NEEDS_NODE
from orbit.registry import REGISTRY_FILE, Registry, RegistryEntry


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


class Cli:
    """Runs ``main`` on one directory, capturing what it prints."""

    def __init__(self, directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.dir = directory
        self.capsys = capsys

    def __call__(self, *args: str, stdin: str | bytes | None = None) -> Result:
        self.capsys.readouterr()
        if stdin is not None:
            data = stdin if isinstance(stdin, bytes) else stdin.encode()
            with pytest.MonkeyPatch.context() as m:
                m.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
                status = main([*args, "--dir", str(self.dir)])
        else:
            status = main([*args, "--dir", str(self.dir)])
        captured = self.capsys.readouterr()
        return Result(status, captured.out, captured.err)

    def ok(self, *args: str, stdin: str | bytes | None = None) -> Result:
        result = self(*args, stdin=stdin)
        assert result.status == 0, result.err
        assert result.err == "" or "--json" not in args
        return result

    def state(self) -> dict[str, Any]:
        """Everything stored, read through the library: the registry, and per database its log and values."""
        state: dict[str, Any] = {"registry": (self.dir / REGISTRY_FILE).read_bytes()}
        with OrbitDB(self.dir) as orbit:
            for entry in Registry(self.dir):
                db = orbit.open(entry.address, **entry.options)
                log = [(e.cid, e.time, e.key, e.next, e.payload) for e in db.log]
                assert isinstance(
                    db, CounterDatabase | KeyValueDatabase | EventLogDatabase | DocumentsDatabase
                )
                values = db.value if isinstance(db, CounterDatabase) else db.all()
                state[entry.name] = (entry, db.heads(), log, values)
        return state


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.delenv("ORBIT_DIR", raising=False)
    monkeypatch.delenv("ORBIT_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path / "orbit", capsys)


FILL = [
    ["create", "settings", "--type", "keyvalue"],
    ["put", "settings", "color", '"red"'],
    ["put", "settings", "size", "3"],
    ["create", "events", "--type", "eventlog"],
    ["add", "events", '{"n": 1}'],
    ["add", "events", '"two"'],
    ["create", "visits", "--type", "counter"],
    ["inc", "visits", "5"],
    ["create", "people", "--type", "documents", "--index", "city"],
    ["put", "people", '{"_id": "ada", "city": "London", "age": 36}'],
    ["put", "people", '[{"_id": "alan", "city": "London", "age": 41}, {"_id": "kurt", "city": "Vienna"}]'],
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one database of each type, made once and copied for each test."""
    directory = tmp_path_factory.mktemp("template") / "orbit"
    with contextlib.redirect_stdout(io.StringIO()):
        for args in FILL:
            assert main([*args, "--dir", str(directory)]) == 0
    return directory


@pytest.fixture
def filled(cli: Cli, template: Path) -> Cli:
    """A copy of the template directory (the same identity, so it may write)."""
    shutil.copytree(template, cli.dir)
    return cli


# ---------------------------------------------------------------------- every subcommand


def test_identity(cli: Cli, tmp_path: Path) -> None:
    did = cli.ok("id").out.strip()
    assert did.startswith("did:key:z6Mk")
    facts = cli.ok("id", "--json").json
    assert facts["did"] == did
    assert len(bytes.fromhex(facts["public_key"])) == 32
    assert cli.ok("id", "export", str(tmp_path / "me.json")).out.startswith(f"wrote the identity {did}")
    assert (tmp_path / "me.json").stat().st_mode & 0o777 == 0o600
    record = cli.ok("id", "export").out
    assert json.loads(record)["public_key"] == facts["public_key"]

    other = Cli(tmp_path / "other", cli.capsys)
    assert other.ok("id", "import", str(tmp_path / "me.json")).out.strip().endswith(did)
    assert other.ok("id").out.strip() == did

    third = Cli(tmp_path / "third", cli.capsys)
    third.ok("id")
    refused = third("id", "import", str(tmp_path / "me.json"))
    assert refused.status == 1
    assert "--force" in refused.err
    assert third.ok("id").out.strip() != did
    third.ok("id", "import", "--force", "-", stdin=record)
    assert third.ok("id").out.strip() == did


def test_identity_export_sealed_with_a_passphrase(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pass").write_text("correct horse\n")
    did = cli.ok("id").out.strip()
    cli.ok("id", "export", "sealed.json", "--passphrase-file", "pass")
    assert "seed" not in json.loads((tmp_path / "sealed.json").read_text())
    other = Cli(tmp_path / "other", cli.capsys)
    missing = other("id", "import", "sealed.json")
    assert missing.status == 1
    assert "passphrase" in missing.err
    assert not (tmp_path / "other" / "keystore").exists()
    other.ok("id", "import", "sealed.json", "--passphrase-file", "pass")
    assert other.ok("id").out.strip() == did


def test_create_ls_info_drop(cli: Cli) -> None:
    address = cli.ok("create", "settings", "--type", "keyvalue").out.strip()
    assert address.startswith("/orbitdb/zdpu")
    cli.ok("create", "events", "--type", "eventlog", "--write", "*")
    listed = cli.ok("ls").out.splitlines()
    assert listed[0].split() == ["NAME", "TYPE", "ADDRESS"]
    assert listed[2].split() == ["settings", "keyvalue", address]
    assert cli.ok("ls", "--json").lines[1] == {"name": "settings", "type": "keyvalue", "address": address}
    info = cli.ok("info", "settings", "--json").json
    assert info["address"] == address
    assert info["entries"] == 0
    assert info["heads"] == []
    assert info["writers"] == [cli.ok("id").out.strip()]
    assert cli.ok("info", "events", "--json").json["writers"] == ["*"]
    assert cli.ok("info", address, "--json").json["name"] == "settings"  # by address too

    assert cli.ok("drop", "settings").out.startswith("dropped settings")
    assert [d["name"] for d in cli.ok("ls", "--json").lines] == ["events"]
    gone = cli("info", "settings")
    assert gone.status == 1
    assert "unknown database 'settings'" in gone.err


def test_compact_drops_the_history_under_a_new_commit(filled: Cli) -> None:
    for i in range(5):
        filled.ok("put", "settings", "color", str(i))
    before = filled.ok("list", "settings", "--json").lines
    text = filled.ok("compact", "settings").out
    assert text.startswith("compacted settings at commit ")
    assert "6 entries dropped" in text  # under the commit's one head: 7 entries in all
    assert "no longer possible here:" in text
    assert filled.ok("list", "settings", "--json").lines == before  # the state is unchanged
    facts = filled.ok("compact", "settings", "--json").json  # again: nothing left under the new head
    assert facts["dropped"] == 6
    assert facts["kept"] == 1
    assert facts["count"] == 7
    assert facts["gives_up"]
    assert all(isinstance(g, str) for g in facts["gives_up"])
    filled.ok("put", "settings", "size", "4")  # still writable, and the state carries on
    assert filled.ok("get", "settings", "size").out.strip() == "4"
    assert filled.ok("info", "settings", "--json").json["entries"] == 2  # held: the head and the write
    refused = filled("compact", "events")
    assert refused.status != 0
    assert "eventlog" in refused.err


def test_create_with_writers(cli: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "bob", cli.capsys).ok("id").out.strip()
    cli.ok("create", "shared", "--type", "counter", "--write", bob)
    writers = cli.ok("info", "shared", "--json").json["writers"]
    assert sorted(writers) == sorted([bob, cli.ok("id").out.strip()])


def test_databases_opened_from_python_are_known_to_the_cli(cli: Cli, tmp_path: Path) -> None:
    cli.ok("id")
    with OrbitDB(cli.dir) as orbit:
        db = orbit.open("made-in-python", type="keyvalue")
        db.put("k", "v")
        docs = orbit.open("people", type="documents", index_by="name", indexes=["city"])
        docs.put({"name": "ann", "city": "Oslo"})
        address = db.address
    assert cli.ok("get", address, "k").out.strip() == '"v"'
    assert cli.ok("get", "made-in-python", "k").out.strip() == '"v"'
    assert "made-in-python" in cli.ok("ls").out
    assert cli.ok("get", "people", "ann").json == {"name": "ann", "city": "Oslo"}  # its index_by kept
    assert cli.ok("open", address).out.split()[:2] == ["made-in-python", "keyvalue"]
    assert cli.ok("open", address).status == 0  # again: nothing changes
    cli.ok("create", "taken", "--type", "counter")
    with OrbitDB(tmp_path / "elsewhere") as orbit:
        car = tmp_path / "taken.car"
        orbit.open("taken", type="eventlog").export_car(car)
    with OrbitDB(cli.dir) as orbit:
        other = orbit.open_car(car).address  # its name is taken here: opened, not registered
    clash = cli("open", other)
    assert clash.status == 1
    assert "--as" in clash.err
    assert cli.ok("open", other, "--as", "events", "--json").json["type"] == "eventlog"
    assert [line.split()[0] for line in cli.ok("ls").out.splitlines()[1:]] == [
        "events",
        "made-in-python",
        "people",
        "taken",
    ]


def test_keyvalue(filled: Cli) -> None:
    cli = filled
    assert cli.ok("get", "settings", "color").out == '"red"\n'
    assert cli.ok("put", "settings", "color", "-s", "blue").out.startswith("bafy")
    assert cli.ok("get", "settings", "color").out == '"blue"\n'
    cli.ok("put", "settings", "doc", "-", stdin='{"a": [1, 2.5, null]}\n')
    assert cli.ok("get", "settings", "doc").out == '{"a": [1, 2.5, null]}\n'
    cli.ok("put", "settings", "raw", '{"/": {"bytes": "aGk"}}')
    assert cli.ok("get", "settings", "raw").out == '{"/": {"bytes": "aGk"}}\n'
    rows = cli.ok("list", "settings").out.splitlines()
    assert rows[0].split() == ["KEY", "VALUE"]
    assert rows[1].split(None, 1) == ["color", '"blue"']
    assert cli.ok("list", "settings", "--json").lines[0] == {"key": "color", "value": "blue"}
    assert cli.ok("del", "settings", "color").out.startswith("bafy")
    missing = cli("get", "settings", "color")
    assert missing.status == 1
    assert missing.out == ""
    assert (
        missing.err == "orbit: error: no key 'color' in settings (--default VALUE prints a value instead)\n"
    )
    assert cli.ok("get", "settings", "color", "--default", '"none"').out == '"none"\n'
    assert cli("del", "settings", "color").status == 1


def test_null_value_is_not_a_missing_key(cli: Cli) -> None:
    cli.ok("put", "cfg", "k", "null", "--type", "keyvalue")
    assert cli.ok("get", "cfg", "k").out == "null\n"
    assert cli("get", "cfg", "other").status == 1


def test_eventlog(filled: Cli) -> None:
    cli = filled
    cid = cli.ok("add", "events", "[1, 2]").out.strip()
    events = cli.ok("list", "events", "--json").lines
    assert [e["value"] for e in events] == [{"n": 1}, "two", [1, 2]]
    assert events[-1]["cid"] == cid
    assert [e["value"] for e in cli.ok("list", "events", "--json", "-r", "-n", "2").lines] == [[1, 2], "two"]
    assert cli.ok("get", "events", cid).out == "[1, 2]\n"
    assert cli.ok("get", "events", cid[-8:]).out == "[1, 2]\n"  # a unique suffix, as shown in tables
    human = cli.ok("list", "events").out.splitlines()
    assert human[-1].split(None, 1) == [f"{cid[:4]}…{cid[-7:]}", "[1, 2]"]
    assert cli("get", "events", "bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").status in (
        1,
        2,
    )
    assert cli("get", "events", "zzzzzzzz").status == 1


def test_counter(filled: Cli) -> None:
    cli = filled
    assert cli.ok("inc", "visits").out == "6\n"
    assert cli.ok("dec", "visits", "2").out == "4\n"
    assert cli.ok("value", "visits").out == "4\n"
    assert cli.ok("value", "visits", "--json").json == {"value": 4}
    did = cli.ok("id").out.strip()
    assert cli.ok("list", "visits", "--json").lines == [{"writer": did, "total": 4}]
    assert cli.ok("list", "visits").out.splitlines()[-1] == "value 4"
    assert cli("inc", "visits", "-3").status == 2


def test_documents(filled: Cli) -> None:
    cli = filled
    assert cli.ok("get", "people", "ada").json == {"_id": "ada", "city": "London", "age": 36}
    assert [d["_id"] for d in cli.ok("find", "people", "city=London", "--json").lines] == ["ada", "alan"]
    assert [d["_id"] for d in cli.ok("find", "people", "age=36", "--json").lines] == [
        "ada"
    ]  # unindexed: scan
    assert cli.ok("find", "people", "city=Paris", "--json").out == ""
    assert [d["_id"] for d in cli.ok("query", "people", "age>=40", "--json").lines] == ["alan"]
    assert [d["_id"] for d in cli.ok("query", "people", "city!=London", "--json").lines] == ["kurt"]
    assert [d["_id"] for d in cli.ok("query", "people", "city~ndo", "--json").lines] == ["ada", "alan"]
    table = cli.ok("find", "people", "city=London").out.splitlines()
    assert table[0].split() == ["KEY", "DOCUMENT"]
    assert table[1].startswith("ada ")
    assert len(cli.ok("list", "people", "--json").lines) == 3
    cli.ok("del", "people", "ada")
    assert cli("get", "people", "ada").status == 1
    no_key = cli("put", "people", '{"name": "x"}')
    assert no_key.status == 1
    assert "_id" in no_key.err
    assert cli("put", "people", "k", '"v"').status == 2


def test_documents_keyed_by_another_field(cli: Cli) -> None:
    cli.ok("create", "books", "--type", "documents", "--index-by", "isbn")
    cli.ok("put", "books", '{"isbn": "123", "title": "Logic"}')
    assert cli.ok("get", "books", "123").json["title"] == "Logic"
    assert cli.ok("info", "books", "--json").json["options"] == {"index_by": "isbn"}


def test_first_write_with_type_creates(cli: Cli) -> None:
    cli.ok("add", "events", '"x"', "--type", "eventlog")
    assert cli.ok("ls", "--json").lines[0]["type"] == "eventlog"
    assert cli.ok("list", "events", "--json").lines[0]["value"] == "x"
    wrong = cli("add", "events", '"y"', "--type", "keyvalue")
    assert wrong.status == 2


def test_log_draws_merges(cli: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "bob", cli.capsys)
    cli.ok("create", "notes", "--type", "keyvalue", "--write", bob.ok("id").out.strip())
    cli.ok("put", "notes", "a", "1")
    cli.ok("export", "notes", "one.car")
    bob.ok("import", "one.car")
    bob.ok("put", "notes", "b", "2")
    cli.ok("put", "notes", "c", "3")
    bob.ok("export", "notes", "two.car")
    assert "imported 1 new entry" in cli.ok("import", "two.car").out
    cli.ok("put", "notes", "d", "4")
    graph = [line[:4].rstrip() for line in cli.ok("log", "notes").out.splitlines()]
    assert graph == ["*", "|\\", "| *", "* |", "|/", "*"]
    log = cli.ok("log", "notes", "--json").lines
    assert [e["time"] for e in log] == [3, 2, 2, 1]
    assert len(log[0]["next"]) == 2
    assert log[0]["payload"] == {"op": "PUT", "key": "d", "value": 4}
    human = cli.ok("log", "notes", "--full").out
    for e in log:  # the human output names the same entries, clocks and writers
        assert e["cid"] in human
        assert e["writer"] in human
    assert len(cli.ok("log", "notes", "-n", "2", "--json").lines) == 2


def test_export_import_into_another_directory(filled: Cli, tmp_path: Path) -> None:
    cli = filled
    exported = cli.ok("export", "people", "people.car", "--json").json
    assert exported["entries"] == 2
    assert exported["blocks"] == 3
    other = Cli(tmp_path / "other", cli.capsys)
    imported = other.ok("import", "people.car", "--json").json
    assert imported["admitted"] == 2
    assert imported["name"] == "people"
    assert other.ok("info", "people", "--json").json["address"] == exported["address"]
    assert other.ok("list", "people", "--json").lines == cli.ok("list", "people", "--json").lines
    again = other.ok("import", "people.car", "--json").json
    assert again["admitted"] == 0
    assert again["entries"] == 2
    renamed = Cli(tmp_path / "third", cli.capsys)
    assert renamed.ok("import", "people.car", "--as", "folk", "--json").json["name"] == "folk"


def test_import_checks_the_whole_file_before_it_changes_anything(filled: Cli, tmp_path: Path) -> None:
    cli = filled
    cli.ok("export", "events", "events.car")
    data = (cli.dir.parent / "events.car").read_bytes()
    other = Cli(tmp_path / "other", cli.capsys)
    other.ok("id")
    (tmp_path / "cut.car").write_bytes(data[:-3])  # the manifest is whole, the last entry is not
    cut = other("import", str(tmp_path / "cut.car"))
    assert cut.status == 1
    assert "is not a well-formed CAR file" in cut.err
    assert other.ok("ls", "--json").out == ""  # nothing registered
    block = b"\xa1ax\x01"  # a DAG-CBOR block that is no manifest
    (tmp_path / "none.car").write_bytes(car_bytes([], [(CID.for_block(block), block)]))
    assert "holds no database manifest" in other("import", str(tmp_path / "none.car")).err
    piped = other.ok("import", "-", "--json", stdin=data).json  # from standard input
    assert (piped["name"], piped["admitted"]) == ("events", 2)


def test_demo(cli: Cli, tmp_path: Path) -> None:
    out = cli.ok("demo", "--rounds", "2").out
    assert "converged: yes, both replicas are equal" in out
    lines = [line for line in out.splitlines() if "keyvalue: {" in line]
    assert len(lines) == 2
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]
    facts = cli.ok("demo", "--rounds", "1", "--json").json
    assert facts["converged"] is True
    assert facts["after"]["alice"] == facts["after"]["bob"]
    assert facts["counter_value"] == {"alice": 9, "bob": 9}  # the kept replicas go on from 6
    assert (cli.dir / "alice").is_dir()  # --dir keeps the replicas


def test_version_and_help(cli: Cli) -> None:
    assert cli.ok("--version").out.startswith("orbit ")
    assert "usage: orbit put" in cli.ok("put", "--help").out


# ---------------------------------------------------------------------- errors leave data untouched

ERRORS = [
    # (arguments, status, what the message says)
    (["put"], 2, "required: NAME"),
    (["bogus"], 2, "invalid choice: 'bogus'"),
    (["inc", "visits", "x"], 2, "invalid int value"),
    (["create", "new"], 2, "--type"),
    (["create", "new", "--type", "table"], 2, "needs --schema"),
    (["create", "new", "--type", "tables"], 2, "invalid choice"),
    (
        ["create", "new", "--type", "keyvalue", "--schema", "CREATE TABLE t (k TEXT PRIMARY KEY)"],
        2,
        "--schema",
    ),
    (["create", "new", "--type", "table", "--schema", "CREATE TABLE t (k TEXT)"], 1, "no PRIMARY KEY"),
    (["list", "settings", "--limit"], 2, "expected one argument"),
    (["get", "nosuch", "k"], 1, "unknown database 'nosuch'"),
    (["info", "/orbitdb/zdpuAmQcz5Y797jMcHpLX4bwid58sRwgH5GnxUdWxXXS9Kz5V"], 1, NEEDS_NODE),
    (["info", "/orbitdb/not-a-cid"], 2, "not an /orbitdb/<cid> address"),
    (["put", "settings", "color", "{bad"], 2, "VALUE is not valid JSON"),
    (["put", "settings", "color", "NaN"], 2, "VALUE is not valid JSON"),
    (["put", "settings", "color", "red"], 2, "--string"),
    (["put", "settings", "color", '{"/": "nonsense"}'], 1, "DAG-JSON"),
    (["inc", "settings"], 1, "'settings' is a keyvalue database; `orbit inc` works on counter"),
    (["add", "settings", "1"], 1, "works on eventlog"),
    (["find", "settings", "a=1"], 1, "works on documents"),
    (["put", "people", "[1]"], 1, "document is a dict"),
    (["query", "people", "nocondition"], 2, "a condition is FIELD=VALUE"),
    (["inc", "visits", "18446744073709551616"], 1, "outside"),
    (["get", "settings", "missing"], 1, "no key 'missing'"),
    (["del", "people", "nobody"], 1, "no document 'nobody'"),
    (["create", "settings", "--type", "counter"], 1, "already exists"),
    (["create", "x", "--type", "counter", "--write", "did:key:zBogus"], 2, "did:key"),
    (["create", "x", "--type", "counter", "--index", "a"], 2, "documents"),
    (["import", "nothere.car"], 1, "cannot read CAR file nothere.car"),
    (["import", "garbage.car"], 1, "CAR"),
    (["export", "settings", "/nonexistent-dir/x.car"], 1, "cannot write /nonexistent-dir/x.car"),
    (["drop", "nosuch"], 1, "unknown database"),
    (["follow", "settings"], 1, NEEDS_NODE),
    (["status", "settings"], 1, NEEDS_NODE),
    (["status", "settings", "--ipfs", "http://127.0.0.1:1"], 1, NEEDS_NODE),
    (["open", "/orbitdb/zdpuAmQcz5Y797jMcHpLX4bwid58sRwgH5GnxUdWxXXS9Kz5V"], 1, NEEDS_NODE),
    (["open", "settings"], 2, "not an /orbitdb/<cid> address"),
    (["id", "import", "nothere.json"], 1, "cannot read identity file"),
    (["id", "import", "garbage.car"], 1, "malformed keystore record"),
]


@pytest.mark.parametrize(("args", "status", "message"), ERRORS, ids=[" ".join(a) for a, _, _ in ERRORS])
def test_errors_are_one_line_and_change_nothing(
    filled: Cli, tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    (tmp_path / "garbage.car").write_bytes(b"\x05not a car file at all")
    before = filled.state()
    result = filled(*args)
    assert result.status == status
    assert result.err.startswith("orbit: error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert message in result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    assert filled.state() == before


def test_reading_never_creates(cli: Cli) -> None:
    result = cli("get", "settings", "k")
    assert result.status == 1
    assert "no orbit directory" in result.err
    assert not cli.dir.exists()
    assert cli.ok("ls").out == "NAME  TYPE  ADDRESS\n(none)\n"
    assert not cli.dir.exists()


def test_a_locked_directory_is_one_line(filled: Cli) -> None:
    with OrbitDB(filled.dir):
        result = filled("get", "settings", "color")
    assert result.status == 1
    assert result.err.count("\n") == 1
    assert "open in another OrbitDB" in result.err


def test_a_damaged_registry_is_one_line(filled: Cli) -> None:
    (filled.dir / REGISTRY_FILE).write_text("{not json")
    result = filled("ls")
    assert result.status == 1
    assert "malformed registry" in result.err
    assert result.err.count("\n") == 1


# ---------------------------------------------------------------------- --json carries the same facts


def test_json_and_human_output_agree(filled: Cli) -> None:
    cli = filled
    info = cli.ok("info", "settings", "--json").json
    human = dict(line.split(None, 1) for line in cli.ok("info", "settings").out.splitlines())
    assert human["address"] == info["address"]
    assert human["type"] == info["type"]
    assert human["entries"] == str(info["entries"])
    assert human["keys"] == str(info["keys"])
    assert human["heads"] == ", ".join(info["heads"])
    assert str(info["size_bytes"]) in human["size"]
    assert info["writers"][0] in human["writers"]

    table = [line.split(None, 1) for line in cli.ok("list", "settings").out.splitlines()[1:]]
    assert [[r["key"], json.dumps(r["value"])] for r in cli.ok("list", "settings", "--json").lines] == table

    ls = [line.split() for line in cli.ok("ls").out.splitlines()[1:]]
    assert [[d["name"], d["type"], d["address"]] for d in cli.ok("ls", "--json").lines] == ls

    assert cli.ok("value", "visits").out.strip() == str(cli.ok("value", "visits", "--json").json["value"])
    assert json.loads(cli.ok("get", "people", "ada").out) == cli.ok("get", "people", "ada", "--json").json
    cid = cli.ok("add", "events", "7").out.strip()
    assert cli.ok("add", "events", "7", "--json").json["cid"].startswith("bafy")
    assert cid.startswith("bafy")


# ---------------------------------------------------------------------- Ctrl-C


def test_interrupt_exits_130_and_leaves_the_database_consistent(
    filled: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = filled
    for i in range(40):
        cli.ok("add", "events", str(i))
    cli.ok("export", "events", "events.car")
    other = Cli(tmp_path / "other", cli.capsys)

    @contextmanager
    def interrupting(self: Output, description: str, total: int | None = None) -> Iterator[Any]:
        def update(done: int) -> None:
            if done >= 10:
                raise KeyboardInterrupt

        yield update

    with monkeypatch.context() as m:
        m.setattr(Output, "progress", interrupting)
        result = other("import", "events.car")
    assert result.status == 130
    assert result.err == "orbit: interrupted\n"
    # the directory opens, and a second import completes the database
    assert other.ok("import", "events.car", "--json").json["entries"] == 42
    assert other.ok("list", "events", "--json").lines == cli.ok("list", "events", "--json").lines


def test_interrupt_during_close_is_held_off(filled: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    real_close = OrbitDB.close

    def close_with_a_signal(self: OrbitDB) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the directory closes: held off until it is closed
        real_close(self)

    with monkeypatch.context() as m:
        m.setattr(OrbitDB, "close", close_with_a_signal)
        result = filled("put", "settings", "k", "1")
    assert result.status == 130
    assert "interrupted" in result.err
    assert filled.ok("get", "settings", "k").out == "1\n"  # the write was acknowledged before the interrupt


# ---------------------------------------------------------------------- output details


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    plain, tty = io.StringIO(), Tty()
    for stream in (plain, tty):
        Output(False, stream, io.StringIO()).table(["A", "B"], [["x", "y"]])
    assert "\x1b[" not in plain.getvalue()
    assert "\x1b[1m" in tty.getvalue()
    assert re.sub(r"\x1b\[\d+m", "", tty.getvalue()) == plain.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = Tty()
    Output(False, quiet, io.StringIO()).table(["A"], [["x"]])
    assert "\x1b[" not in quiet.getvalue()
    json_tty = Tty()
    monkeypatch.delenv("NO_COLOR")
    Output(True, json_tty, io.StringIO()).document({"a": 1})
    assert json_tty.getvalue() == '{"a": 1}\n'


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    quiet = io.StringIO()
    with Output(False, io.StringIO(), quiet).progress("work", 10) as update:
        update(5)
    assert quiet.getvalue() == ""
    drawn = Tty()
    with Output(False, io.StringIO(), drawn).progress("work", 10) as update:
        update(5)
    assert drawn.getvalue() != ""


def test_table_alignment() -> None:
    out = io.StringIO()
    Output(False, out, io.StringIO()).table(["NAME", "T"], [["a", "x"], ["longer", "y"]])
    assert out.getvalue().splitlines() == ["NAME    T", "a       x", "longer  y"]


# ---------------------------------------------------------------------- orbit sql

TODO_SCHEMA = (
    "CREATE TABLE todos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, "
    "data BLOB)"
)


def _table_state(directory: Path) -> tuple[int, list[Any]]:
    with OrbitDB(directory) as orbit:
        db: Any = orbit.open("todo", type="table", schema=TODO_SCHEMA)
        return len(db.log), db.sql("SELECT * FROM todos ORDER BY id")


@pytest.fixture
def tables(cli: Cli) -> Cli:
    """A directory holding a table database made with the library and named in the directory's registry
    (and a keyvalue one from the CLI)."""
    cli.ok("create", "settings", "--type", "keyvalue")
    with OrbitDB(cli.dir) as orbit:
        db: Any = orbit.open("todo", type="table", schema=TODO_SCHEMA)
        db.execute("INSERT INTO todos (id, owner, data) VALUES ('t1', 'ann', NULL), ('t2', 'bob', x'00ff')")
        Registry(cli.dir).add(RegistryEntry("todo", db.address, "table"))
    return cli


def test_sql_reads_as_a_table_and_as_json(tables: Cli) -> None:
    out = tables.ok("sql", "todo", "SELECT id, owner, done, data FROM todos ORDER BY id").out
    assert out.splitlines() == [
        "id  owner  done  data",
        "--  -----  ----  -------",
        "t1  ann    0     NULL",
        "t2  bob    0     x'00ff'",
    ]
    rows = tables.ok("sql", "todo", "SELECT id, data FROM todos ORDER BY id", "--json").json
    assert rows == [{"id": "t1", "data": None}, {"id": "t2", "data": "00ff"}]
    # parameters: JSON values, or else text; by address as well as by name
    with OrbitDB(tables.dir) as orbit:
        address = orbit.open("todo", type="table", schema=TODO_SCHEMA).address
    found = tables.ok(
        "sql", address, "SELECT id FROM todos WHERE owner = ? AND done = ?", "-p", "bob", "-p", "0"
    )
    assert found.out.splitlines()[2:] == ["t2"]
    quoted = tables.ok(
        "sql", "todo", "SELECT count(*) AS n FROM todos WHERE owner = ?", "--param", '"ann"', "--json"
    )
    assert quoted.json == [{"n": 1}]
    joined = tables.ok("sql", "todo", "SELECT count(*) AS n FROM orbit_provenance", "--json").json
    assert joined == [{"n": 8}]  # every cell of both rows


def test_a_table_database_made_read_and_written_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    made = cli.ok("create", "todo", "--type", "table", "--schema", TODO_SCHEMA, "--json").json
    assert made["type"] == "table"
    # statements from standard input, each ended by ';' (one may span lines); a failing one is reported
    # on its line of stderr, the others run, and the status says one failed
    script = (
        "INSERT INTO todos (id, owner) VALUES ('t1', 'ann');\n"
        "INSERT INTO todos (id, owner)\n  VALUES ('t2', 'bob');\n"
        "INSERT INTO todos (id) VALUES ('t3');\n"  # owner is NOT NULL
        "UPDATE todos SET done = 1 WHERE id = 't1';\n"
    )
    result = cli("sql", "todo", "--write", stdin=script)
    assert result.status == 1
    assert result.err.count("\n") == 1
    assert "NOT NULL" in result.err
    assert result.out.count("row changed (entry ") == 3
    rows = cli.ok(
        "sql", "todo", "--json", stdin="SELECT id, done FROM todos ORDER BY id;\n.quit\nSELECT 1;\n"
    )
    assert rows.json == [{"id": "t1", "done": 1}, {"id": "t2", "done": 0}]  # nothing after .quit ran
    assert cli("sql", "todo", stdin="DELETE FROM todos;").status == 1  # reads only, without --write
    assert cli("sql", "todo", "-p", "1", stdin="SELECT ?;").status == 2  # --param needs a statement
    info = cli.ok("info", "todo", "--json").json
    assert (info["type"], info["entries"], info["rows"]) == ("table", 3, {"todos": 2})
    assert len(cli.ok("log", "todo", "--json").out.splitlines()) == 3
    car = tmp_path / "todo.car"
    cli.ok("export", "todo", str(car))
    other = Cli(tmp_path / "other", cli.capsys)
    other.ok("import", str(car))  # the schema travels in the manifest
    assert other.ok("sql", "todo", "SELECT count(*) AS n FROM todos", "--json").json == [{"n": 2}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "todo", "SELECT nope FROM todos"], "no such column"),
        (["sql", "todo", "SELEC 1"], "syntax error"),
        (["sql", "todo", "SELECT ?", "-p", "1", "-p", "2"], "bindings"),
        (["sql", "todo", "DELETE FROM todos"], "orbit sql todo --write 'DELETE FROM todos'"),  # needs --write
        (["sql", "todo", "INSERT INTO todos (id, owner) VALUES ('t3', 'x')"], "run the write with --write"),
        (["sql", "todo", "INSERT INTO todos (id) VALUES ('t3')", "--write"], "NOT NULL"),
        (["sql", "todo", "DROP TABLE todos", "--write"], "the schema is fixed"),
        (["sql", "todo", "DROP TABLE todos"], "the schema is fixed"),
        (["sql", "todo", "SELECT ?", "-p", "[1]"], "--param"),
        (["sql", "settings", "SELECT 1"], "keyvalue database"),
        (["sql", "nothing", "SELECT 1"], "no table database named 'nothing'"),
    ],
)
def test_sql_errors_are_one_line_and_change_nothing(tables: Cli, args: list[str], message: str) -> None:
    before = _table_state(tables.dir)
    result = tables(*args)
    assert result.status in (1, 2)
    assert result.err.startswith("orbit: error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert message in result.err
    assert result.out == ""
    assert _table_state(tables.dir) == before


def test_sql_write_appends_one_signed_entry(tables: Cli) -> None:
    entries, _ = _table_state(tables.dir)
    out = tables.ok("sql", "todo", "UPDATE todos SET done = 1 WHERE owner = ?", "-p", "ann", "--write").out
    assert re.fullmatch(r"1 row changed \(entry b[a-z2-7]+\)\n", out), out
    result = tables.ok(
        "sql", "todo", "INSERT INTO todos (id, owner) VALUES ('t3', 'cat')", "--write", "--json"
    )
    assert result.json["rowcount"] == 1
    assert result.json["entry"].startswith("b")
    returning = tables.ok(
        "sql", "todo", "DELETE FROM todos WHERE id = 't2' RETURNING id", "--write", "--json"
    )
    assert returning.json == [{"id": "t2"}]
    nothing = tables.ok("sql", "todo", "UPDATE todos SET done = 1 WHERE id = 'none'", "--write")
    assert nothing.out == "0 rows changed\n"
    count, rows = _table_state(tables.dir)
    assert count == entries + 3
    assert [(r[0], r[1], r[2]) for r in rows] == [("t1", "ann", 1), ("t3", "cat", 0)]
