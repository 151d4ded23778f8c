"""The core does no I/O: importing ipfs_log and stores pulls in no network, database or thread module.

import-linter checks the same contracts in CI; these tests keep them checked by a plain pytest run.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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
