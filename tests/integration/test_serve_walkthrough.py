"""The README's two-peer walkthrough with ``orbit serve``, replayed exactly as written: the two Kubo daemons
of the first walkthrough (its ``daemons`` block), then the ``serve`` block (two daemons, one per node, and
the CLI going through them), then the ``stop`` block.

As in test_readme_walkthrough.py, the blocks run with ``HOME`` set to a temporary directory and the built
``ipfs`` first on ``PATH`` (and this environment's ``orbit`` beside it). The ports are the walkthrough's.
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
from tests.integration.test_readme_walkthrough import PORTS, README

pytestmark = pytest.mark.ipfs


def block(name: str, lang: str) -> str:
    found = re.search(rf"<!-- walkthrough: {name} -->\n```{lang}\n(.*?)```", README, re.S)
    assert found is not None, f"the README has no '{name}' walkthrough block"
    return found.group(1)


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stop_group(group: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            group.wait(10)
            return


def test_the_serve_walkthrough_runs_as_written(tmp_path: Path) -> None:
    taken = [p for p in PORTS if not free(p)]
    assert not taken, f"the walkthrough's ports {taken} are in use on 127.0.0.1"
    binary = kubo_node.build()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "NO_COLOR": "1",
        "PATH": os.pathsep.join(
            [str(binary.parent), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        ),
    }
    for name in ("IPFS_PATH", "IPFS_API", "ORBIT_DIR"):
        env.pop(name, None)
    daemons = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", block("daemons", "sh")],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        assert daemons.wait(120) == 0, "the daemons block failed"
        serve = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block("serve", "sh")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, start_new_session=True,
        )  # fmt: skip
        logs = "".join(p.read_text()[-2000:] for p in tmp_path.glob("tmp.*.log"))
        assert serve.returncode == 0, f"{serve.stdout}\n{serve.stderr[-3000:]}\n--- serve logs ---\n{logs}"
        lines = serve.stdout.splitlines()
        assert lines[0].startswith("todo")
        assert "/orbitdb/" in lines[0]
        assert '{"done": false}' in lines  # Bob read Alice's write, through his daemon and node
        assert '{"done": true}' in lines  # and Alice read Bob's
        table = serve.stdout[serve.stdout.index("KEY") :]
        assert "eggs" in table
        assert "milk" in table
        assert not list(tmp_path.glob("tmp.*/api")), "a daemon left its api file"
        stop = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block("stop", "sh")], env=env, timeout=60, capture_output=True
        )
        assert stop.returncode == 0, stop.stderr
    finally:
        stop_group(daemons)


def test_the_readme_block_is_the_one_replayed() -> None:
    assert "<!-- walkthrough: serve -->" in README
