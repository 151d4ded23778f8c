"""The Kubo test node itself: built from kubo/ into the cache, configured for loopback, killed, restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.kubo_node import MODULE, KuboNode, KuboNodeError, binary_path, build, cache_root, version

REPO_ROOT = MODULE.parent


def rpc(node: KuboNode, endpoint: str, **params: str) -> httpx.Response:
    return httpx.post(f"{node.api_url}/api/v0/{endpoint}", params=params, timeout=10)


def test_session_node_is_kubo_on_loopback(ipfs_node: KuboNode) -> None:
    answer = rpc(ipfs_node, "id")
    assert answer.status_code == 200
    record = answer.json()
    assert record["ID"] == ipfs_node.peer_id
    assert record["AgentVersion"].startswith(f"kubo/{version().removeprefix('v')}")
    assert ipfs_node.api_url.startswith("http://127.0.0.1:")
    # TCP on loopback only: no QUIC, WebTransport, WebRTC or relay listeners
    assert record["Addresses"] == [f"/ip4/127.0.0.1/tcp/{ipfs_node.swarm_port}/p2p/{ipfs_node.peer_id}"]


def test_session_node_config(ipfs_node: KuboNode) -> None:
    config = rpc(ipfs_node, "config/show").json()
    assert config["Pubsub"]["Enabled"] is True
    assert config["Routing"]["Type"] == "none"
    assert config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Experimental"]["Libp2pStreamMounting"] is True
    assert config["Addresses"]["Gateway"] == []
    assert rpc(ipfs_node, "pubsub/ls").status_code == 200  # pubsub on without --enable-pubsub-experiment


def test_binary_is_cached_outside_the_repository() -> None:
    path = build()  # already built for the session node: returns at once
    assert path == binary_path()
    assert cache_root() in path.parents
    assert REPO_ROOT not in path.parents
    stamp = json.loads(path.with_name("ipfs.built").read_text())
    assert stamp["version"] == version()


def test_path_command_prints_the_binary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.kubo_node", "path"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == str(binary_path())


def test_start_fails_loudly_when_the_port_is_taken(tmp_path: Path, ipfs_node: KuboNode) -> None:
    node = KuboNode(tmp_path / "repo", api_port=ipfs_node.api_port)
    with pytest.raises(KuboNodeError, match="is taken"):
        node.start()
    assert not node.running


def test_a_node_that_cannot_start_reports_its_command_and_log(tmp_path: Path) -> None:
    node = KuboNode(tmp_path / "repo", config={"Datastore.Spec": {"type": "no-such-datastore"}})
    with pytest.raises(KuboNodeError) as info:
        node.start(timeout=30)
    assert not node.running
    assert info.value.command is not None
    assert info.value.command[-1] == "daemon"
    assert info.value.log_tail
    assert info.value.log_tail in str(info.value)


def test_kill_and_restart_keep_the_repository_and_the_ports(
    ipfs_node_factory: Callable[[], KuboNode],
) -> None:
    node = ipfs_node_factory()
    peer, api, swarm = node.peer_id, node.api_port, node.swarm_port
    stored = httpx.post(f"{node.api_url}/api/v0/block/put", files={"file": b"kept"}, timeout=10)
    cid = stored.json()["Key"]
    node.kill()
    assert not node.running
    with pytest.raises(httpx.HTTPError):
        rpc(node, "id")
    node.restart()
    assert (node.peer_id, node.api_port, node.swarm_port) == (peer, api, swarm)
    assert rpc(node, "block/get", arg=cid).content == b"kept"
    node.stop()
    assert not node.running
    node.start()
    assert rpc(node, "id").json()["ID"] == peer


def test_a_node_started_from_a_short_lived_thread_outlives_it(
    ipfs_node_factory: Callable[[], KuboNode],
) -> None:
    """Nodes are forked from one long-lived thread: the parent-death signal is per thread on Linux."""
    made: list[KuboNode] = []
    thread = threading.Thread(target=lambda: made.append(ipfs_node_factory()))
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    (node,) = made
    assert node.running  # after its starting thread ended
    assert rpc(node, "id").status_code == 200


_ORPHAN = """
import sys
from pathlib import Path
from tests.kubo_node import KuboNode
node = KuboNode(Path(sys.argv[1]))
node.start()
print(node.process.pid, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.ipfs
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_node_dies_with_the_python_process_that_started_it(tmp_path: Path) -> None:
    build()
    with subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(tmp_path / "repo")],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        try:
            assert parent.stdout is not None
            pid = int(parent.stdout.readline())
            os.kill(pid, 0)  # the daemon runs
            parent.send_signal(signal.SIGKILL)
            parent.wait(10)
            deadline = time.monotonic() + 10
            while _alive(pid):
                assert time.monotonic() < deadline, f"the Kubo daemon {pid} outlived its parent"
                time.sleep(0.05)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait(10)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
