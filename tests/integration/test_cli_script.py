"""The installed ``orbit`` console script, run as a person would: a whole workflow, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "orbit"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}: pip install -e '.[test]'"
    clean = {k: v for k, v in os.environ.items() if k not in ("IPFS_API", "ORBIT_DIR", "ORBIT_PASSPHRASE")}
    return clean | {"ORBIT_DIR": str(tmp_path / "alice"), "NO_COLOR": "1"}


def orbit(env: dict[str, str], cwd: Path, *args: str, status: int = 0) -> str:
    done = subprocess.run([str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == status, (args, done.stdout, done.stderr)
    if status == 0:
        assert done.stderr == "", done.stderr
    else:
        assert done.stderr.startswith("orbit: error: ")
        assert done.stderr.count("\n") == 1
    return done.stdout if status == 0 else done.stderr


def test_a_whole_workflow(env: dict[str, str], tmp_path: Path) -> None:
    address = orbit(env, tmp_path, "create", "todo", "--type", "documents", "--index", "done").strip()
    orbit(env, tmp_path, "put", "todo", '{"_id": "milk", "done": false}')
    orbit(env, tmp_path, "put", "todo", '{"_id": "eggs", "done": true}')
    orbit(env, tmp_path, "put", "todo", '{"_id": "milk", "done": true}')
    assert json.loads(orbit(env, tmp_path, "get", "todo", "milk")) == {"_id": "milk", "done": True}
    assert orbit(env, tmp_path, "get", "todo", "bread", status=1).startswith(
        "orbit: error: no document 'bread'"
    )
    found = orbit(env, tmp_path, "find", "todo", "done=true", "--json").splitlines()
    assert [json.loads(line)["_id"] for line in found] == ["eggs", "milk"]
    log = orbit(env, tmp_path, "log", "todo").splitlines()
    assert len(log) == 3
    assert all(line.startswith("*  bafy…") for line in log)
    assert "PUT milk" in log[0]

    orbit(env, tmp_path, "export", "todo", "todo.car")
    bob = env | {"ORBIT_DIR": str(tmp_path / "bob")}
    other = tmp_path / "elsewhere"
    other.mkdir()
    imported = json.loads(orbit(bob, other, "import", str(tmp_path / "todo.car"), "--json"))
    assert imported == {"name": "todo", "address": address, "admitted": 3, "entries": 3}
    info = json.loads(orbit(bob, other, "info", "todo", "--json"))
    assert info["address"] == address
    assert info["entries"] == 3
    assert info["documents"] == 2
    assert info["type"] == "documents"
    assert json.loads(orbit(bob, other, "get", "todo", "milk")) == {"_id": "milk", "done": True}
    assert "may not write" in orbit(bob, other, "put", "todo", '{"_id": "jam"}', status=1)  # bob is no writer

    orbit(env, tmp_path, "drop", "todo")
    assert orbit(env, tmp_path, "ls") == "NAME  TYPE  ADDRESS\n(none)\n"
    assert "unknown database 'todo'" in orbit(env, tmp_path, "info", "todo", status=1)
    assert orbit(env, tmp_path, "follow", "x", status=1).startswith("orbit: error: unknown database")
    assert "needs an IPFS node" in orbit(bob, other, "follow", "todo", status=1)


def test_ctrl_c_exits_130_and_leaves_the_database_consistent(env: dict[str, str], tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    proc = subprocess.Popen(
        [str(SCRIPT), "demo", "--dir", str(keep), "--rounds", "1000000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]  # the identities and addresses, then it writes
        address = lines[2].split()[1]
        assert address.startswith("/orbitdb/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (keep / "alice" / "blocks").exists():
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130
    assert err == "orbit: interrupted\n"
    alice = env | {"ORBIT_DIR": str(keep / "alice")}
    orbit(alice, tmp_path, "open", address)
    info = json.loads(orbit(alice, tmp_path, "info", "demo-settings", "--json"))
    assert info["entries"] == len(
        orbit(alice, tmp_path, "log", "demo-settings", "-n", "100000000", "--json").splitlines()
    )
    orbit(alice, tmp_path, "put", "demo-settings", "after", "1")  # still writable
    assert orbit(alice, tmp_path, "get", "demo-settings", "after") == "1\n"


def test_python_m_orbit_demo(env: dict[str, str], tmp_path: Path) -> None:
    """The README's first command, after the install: ``python -m orbit demo``."""
    done = subprocess.run(
        [sys.executable, "-m", "orbit", "demo", "--rounds", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "converged: yes, both replicas are equal" in done.stdout
