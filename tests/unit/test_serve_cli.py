"""Command lines run inside the daemon: each request gets its own output and input, even when requests run
at once in several threads, and the daemon's directory stays open."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import pytest

from orbit.cli import main
from orbit.cli._serve import install_streams, run_hosted
from orbit.facade import OrbitDB
from orbit.serve.protocol import CommandRequest


def _main(argv: list[str], stdout: object, stderr: object) -> int:
    return main(argv, stdout=stdout, stderr=stderr)  # type: ignore[arg-type]


@pytest.fixture
def orbit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("stdin", "stdout", "stderr"):  # restored after the test: install_streams replaces them
        monkeypatch.setattr(sys, name, getattr(sys, name))
    assert (
        main(["--dir", str(tmp_path / "d"), "create", "kv", "--type", "keyvalue"], stdout=io.StringIO()) == 0
    )
    install_streams()
    with OrbitDB(tmp_path / "d") as o:
        yield o


def run(orbit: OrbitDB, *argv: str, stdin: bytes | None = None, cwd: str | None = None):
    return run_hosted(_main, orbit, None, CommandRequest(tuple(argv), stdin, cwd))


def test_commands_run_against_the_open_directory_and_leave_it_open(orbit: OrbitDB) -> None:
    assert run(orbit, "put", "kv", "a", "1").status == 0
    got = run(orbit, "get", "kv", "a")
    assert (got.status, got.stdout) == (0, "1\n")
    missing = run(orbit, "get", "kv", "zz")
    assert missing.status == 1
    assert "no key 'zz'" in missing.stderr
    assert not orbit.closed
    assert orbit.open("kv", type="keyvalue").get("a") == 1


def test_standard_input_and_help_are_the_request_s(
    orbit: OrbitDB, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(orbit, "put", "kv", "s", "-", "--string", stdin=b"from stdin\n").status == 0
    assert run(orbit, "get", "kv", "s").stdout == '"from stdin"\n'
    install_streams()  # again: pytest's capture replaced sys.stdout after the fixture ran
    helped = run(orbit, "get", "--help")
    assert helped.status == 0
    assert "usage: orbit get" in helped.stdout  # argparse prints to sys.stdout: this request's


def test_what_cannot_run_inside_is_refused(orbit: OrbitDB, tmp_path: Path) -> None:
    for argv in (("serve",), ("demo",), ("follow", "kv")):
        result = run(orbit, *argv)
        assert result.status == 2, argv
        assert "does not run inside the daemon" in result.stderr
    assert run(orbit, "id", "import", str(tmp_path / "x")).status == 1
    exported = run(orbit, "export", "kv", "kv.car", cwd=str(tmp_path))
    assert exported.status == 0, exported.stderr
    assert (tmp_path / "kv.car").exists()  # relative to the client's directory, not the daemon's


def test_concurrent_commands_do_not_see_each_other_s_output(orbit: OrbitDB) -> None:
    for key in "abcd":
        assert run(orbit, "put", "kv", key, f'"{key * 3}"').status == 0
    failures: list[str] = []

    def worker(key: str) -> None:
        for _ in range(25):
            result = run(orbit, "get", "kv", key)
            if result.stdout != f'"{key * 3}"\n' or result.status != 0:
                failures.append(f"{key}: {result}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
