"""The README's two-peer walkthrough, replayed exactly as written: two real Kubo daemons (the project's
build) started by its shell block, the Python block replicating between them, and its stop block.

The blocks run with ``HOME`` set to a temporary directory and the built ``ipfs`` first on ``PATH``, as a
user who installed Kubo would run them. The walkthrough's ports (5101/5102, 4101/4102 on 127.0.0.1)
are fixed in the README: the test fails, naming them, if they are taken.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kubo_node

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
PORTS = (5101, 5102, 4101, 4102)

pytestmark = pytest.mark.ipfs


def _block(name: str, lang: str) -> str:
    found = re.search(rf"<!-- walkthrough: {name} -->\n```{lang}\n(.*?)```", README, re.S)
    assert found is not None, f"the README has no '{name}' walkthrough block"
    return found.group(1)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _stop(group: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            group.wait(10)
            return


def test_the_two_peer_walkthrough_runs_as_written(tmp_path: Path) -> None:
    taken = [p for p in PORTS if not _free(p)]
    assert not taken, f"the walkthrough's ports {taken} are in use on 127.0.0.1"
    binary = kubo_node.build()  # cached; fails (never skips) if Kubo cannot be built
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("IPFS_PATH", None)
    env.pop("IPFS_API", None)
    # its own session, so that the daemons it leaves running can be stopped whatever happens
    daemons = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", _block("daemons", "sh")],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        assert daemons.wait(120) == 0, "the daemons block failed"
        peers = subprocess.run(
            [sys.executable, "-c", _block("peers", "py")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        logs = "".join((tmp_path / f".ipfs-{p}.log").read_text()[-2000:] for p in "ab")
        assert peers.returncode == 0, f"{peers.stderr[-3000:]}\n--- daemon logs ---\n{logs}"
        assert "'milk': {'done': False}" in peers.stdout
        assert "'eggs': {'done': True}" in peers.stdout
        stop = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _block("stop", "sh")], env=env, timeout=60, capture_output=True
        )
        assert stop.returncode == 0, stop.stderr
    finally:
        _stop(daemons)
