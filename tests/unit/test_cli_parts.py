"""Parts of the command line: the DAG drawing, the registry file, values on the command line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID
from orbit.cli._graph import graph_rows
from orbit.cli._main import build_parser, chosen_command
from orbit.cli._output import CliError, from_json, parse_value, to_json
from orbit.registry import REGISTRY_FILE, Registry, RegistryEntry, RegistryError

# ---------------------------------------------------------------------- graph


def draw(nodes: list[tuple[str, list[str]]]) -> list[str]:
    return [text.rstrip() for text, _ in graph_rows(nodes)]


def test_linear_log_is_one_column() -> None:
    assert draw([("c", ["b"]), ("b", ["a"]), ("a", [])]) == ["*", "*", "*"]


def test_two_heads_then_a_fork() -> None:
    # two writers' unmerged heads: two columns that meet at their common ancestor
    assert draw([("x", ["r"]), ("y", ["r"]), ("r", [])]) == ["*", "| *", "|/", "*"]


def test_three_way_merge() -> None:
    rows = draw([("m", ["a", "b", "c"]), ("c", ["r"]), ("b", ["r"]), ("a", ["r"]), ("r", [])])
    assert rows == ["*", "|\\", "| |\\", "| | *", "| * |", "* | |", "|/ /", "|/", "*"]


@st.composite
def dags(draw_: st.DrawFn) -> list[tuple[int, list[int]]]:
    """A DAG newest first: node i may name any older nodes (higher numbers) as parents."""
    n = draw_(st.integers(1, 25))
    nodes = []
    for i in range(n):
        older = list(range(i + 1, n))
        parents = draw_(st.lists(st.sampled_from(older), max_size=3, unique=True)) if older else []
        nodes.append((i, parents))
    return nodes


@given(dags())
def test_every_node_gets_one_row_in_order(nodes: list[tuple[int, list[int]]]) -> None:
    rows = graph_rows(nodes)
    assert [i for _, i in rows if i is not None] == list(range(len(nodes)))
    assert len({len(text) for text, _ in rows}) == 1  # padded to one width
    for text, i in rows:
        assert set(text) <= set("*|/\\ ")
        assert (text.count("*") == 1) == (i is not None)


# ---------------------------------------------------------------------- registry


def test_registry_round_trip_and_conflicts(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert list(registry) == []
    a = RegistryEntry("a", "/orbitdb/zA", "keyvalue")
    registry.add(a)
    registry.add(a)  # the same again: nothing changes
    registry.add(RegistryEntry("b", "/orbitdb/zB", "documents", {"index_by": "isbn"}))
    assert [e.name for e in Registry(tmp_path)] == ["a", "b"]
    assert Registry(tmp_path).get("b") == RegistryEntry("b", "/orbitdb/zB", "documents", {"index_by": "isbn"})
    assert registry.by_address("/orbitdb/zA/a") == a  # a trailing /name is ignored
    with pytest.raises(RegistryError, match="taken by /orbitdb/zA"):
        registry.add(RegistryEntry("a", "/orbitdb/zC", "counter"))
    with pytest.raises(RegistryError, match="already registered as 'a'"):
        registry.add(RegistryEntry("c", "/orbitdb/zA", "keyvalue"))
    assert registry.remove("a")
    assert not registry.remove("a")
    assert [e.name for e in registry] == ["b"]


def test_a_failed_write_leaves_the_old_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(tmp_path)
    registry.add(RegistryEntry("a", "/orbitdb/zA", "keyvalue"))
    before = (tmp_path / REGISTRY_FILE).read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(RegistryError, match="No space left on device"):
        registry.add(RegistryEntry("b", "/orbitdb/zB", "keyvalue"))
    monkeypatch.undo()
    assert (tmp_path / REGISTRY_FILE).read_bytes() == before
    assert [e.name for e in Registry(tmp_path)] == ["a"]


def test_a_failed_fsync_leaves_the_old_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(tmp_path)
    registry.add(RegistryEntry("a", "/orbitdb/zA", "keyvalue"))
    before = (tmp_path / REGISTRY_FILE).read_bytes()

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(RegistryError, match="Input/output error"):
        registry.remove("a")
    monkeypatch.undo()
    assert (tmp_path / REGISTRY_FILE).read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"v": 2, "databases": {}}',
        b'{"v": 1}',
        b'{"v": 1, "databases": []}',
        b'{"v": 1, "databases": {"a": 3}}',
        b'{"v": 1, "databases": {"a": {"address": 1, "type": "keyvalue"}}}',
        b'{"v": 1, "databases": {"a": {"type": "keyvalue"}}}',
        b"\xff\xfe",
    ],
)
def test_a_malformed_registry_is_a_registry_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / REGISTRY_FILE).write_bytes(content)
    with pytest.raises(RegistryError, match="malformed registry"):
        list(Registry(tmp_path))


# ---------------------------------------------------------------------- values


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
        | st.binary(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            # DAG-JSON reserves a map whose only key is "/" for links and bytes: such a map has no form
            | st.dictionaries(st.text(max_size=5), inner, max_size=4).filter(lambda m: list(m) != ["/"])
        ),
        max_leaves=12,
    )
)
def test_values_round_trip_through_json(value: object) -> None:
    text = json.dumps(to_json(value))
    assert parse_value(text) == value


def test_links_round_trip_and_bad_forms_are_errors() -> None:
    cid = CID.for_block(b"\xa0")
    assert from_json(to_json({"link": cid})) == {"link": cid}
    with pytest.raises(CliError):
        parse_value('{"/": {"bytes": "!!"}}')
    with pytest.raises(CliError):
        parse_value('{"/": 3}')
    for reserved in ('{"/": ""}', '{"/": null}'):  # the shape DAG-JSON keeps for links: no plain map
        with pytest.raises(CliError, match="link or bytes"):
            parse_value(reserved)
    with pytest.raises(CliError, match="--string"):
        parse_value("plain words")
    assert parse_value("plain words", lenient=True) == "plain words"


# ---------------------------------------------------------------------- the parser of one subcommand


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["get", "kv", "x"], "get"),
        (["--dir", "get", "get", "kv", "x"], "get"),  # --dir's value is not the command
        (["--dir=d", "--json", "put", "kv", "k", "1"], "put"),
        (["--di", "d", "--ipfs", "http://127.0.0.1:5001", "ls"], "ls"),  # an abbreviation argparse takes
        (["--json"], None),
        (["--", "ls"], "ls"),
        ([], None),
    ],
)
def test_the_command_is_found_before_parsing(argv: list[str], command: str | None) -> None:
    assert chosen_command(argv) == command


def test_a_parser_built_for_one_command_parses_and_helps_as_the_whole_one() -> None:
    whole = build_parser()
    sub = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        one = build_parser(name)
        one_sub = next(a for a in one._actions if isinstance(a, argparse._SubParsersAction))
        assert one_sub.choices[name].format_help() == parser.format_help(), name
        assert list(one_sub.choices) == list(sub.choices)  # every command is still listed
    assert build_parser("get").format_help() == whole.format_help()
    argv = ["--dir", "d", "get", "kv", "x", "--default", "0"]
    assert vars(build_parser("get").parse_args(argv)) == vars(whole.parse_args(argv))
