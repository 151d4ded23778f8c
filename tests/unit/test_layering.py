"""The core does no I/O: importing ipfs_log and stores pulls in no network, database or thread module; and
no import cycle anywhere in the project.

import-linter checks the same contracts in CI; these tests keep them checked by a plain pytest run.
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"httpx", "sqlite3", "threading", "anyio", "lmdb", "socket", "asyncio"}

PROBE = f"""
import json, sys
before = set(sys.modules)
import ipfs_log, stores
new = set(sys.modules) - before
print(json.dumps({{
    "new": sorted(m for m in new if m.split('.')[0] in {sorted(FORBIDDEN)!r}),
    "all": sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}),
}}))
"""


def test_importing_the_core_loads_no_io_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    result = json.loads(out)
    assert result["new"] == []
    # Python's own start-up may import threading (site hooks); nothing else on the list may be there.
    assert set(result["all"]) <= {"threading"}


def imported_modules(path: Path) -> set[str]:
    """Top-level module names a source file imports, anywhere in it (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    return files


@pytest.mark.parametrize("package", ["ipfs_log", "stores"])
def test_core_sources_import_no_io_module(package: str) -> None:
    for path in sources(package):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(("package", "above"), [("ipfs_log", {"stores", "orbit"}), ("stores", {"orbit"})])
def test_layers_only_point_down(package: str, above: set[str]) -> None:
    for path in sources(package):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in above}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)} from a layer above"


def test_the_scanner_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nfrom threading import Lock\ndef f():\n    import socket\n"
        "    import importlib\n    importlib.import_module('sqlite3')\n"
    )
    assert {"threading", "socket", "sqlite3"} <= imported_modules(probe)


# ------------------------------------------------------------------ no import cycle anywhere

PROJECT = ("orbit", "stores", "ipfs_log", "tests", "bench")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest import cycle through the first module of ``component``: ``[a, b, …, a]``."""
    members, start = set(component), component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    return component  # not reached: every module of a component lies on a cycle


def import_graph() -> tuple[dict[str, set[str]], grimp.ImportGraph]:
    """Module → modules it imports, within the project: every import, TYPE_CHECKING and in-function too."""
    found = grimp.build_graph(*PROJECT, exclude_type_checking_imports=False, cache_dir=None)
    return {m: set(found.find_modules_directly_imported_by(m)) for m in found.modules}, found


def describe(found: grimp.ImportGraph, cycle: list[str]) -> str:
    lines = []
    for importer, imported in itertools.pairwise(cycle):
        details = found.get_import_details(importer=importer, imported=imported)
        where = details[0] if details else {"line_number": "?", "line_contents": ""}
        lines.append(f"  {importer} -> {imported}  (line {where['line_number']}: {where['line_contents']})")
    return "\n".join(lines)


def test_the_project_has_no_import_cycle() -> None:
    graph, found = import_graph()
    assert {m.split(".")[0] for m in graph} == set(PROJECT)
    assert "orbit.databases" in graph  # a package (its __init__) ...
    assert "orbit.databases.base" in graph  # ... and its modules are distinct nodes
    cycles = [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    report = [describe(found, a_cycle(graph, c)) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n\n".join(report)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    components = strongly_connected(graph)
    assert sorted(components) == [["a", "b", "c"], ["d"], ["e"], ["f"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert a_cycle(graph, ["e"]) == ["e", "e"]
