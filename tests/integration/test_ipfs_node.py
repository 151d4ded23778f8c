"""The IPFS test node itself: installed from ipfs-node/, started on loopback, killed and restarted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.ipfs_node import NODE_FILES, IpfsNode, IpfsNodeError, cache_root, install


def test_session_node_answers_on_loopback(ipfs_node: IpfsNode) -> None:
    answer = httpx.post(f"{ipfs_node.api_url}/api/v0/id", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["ID"] == ipfs_node.peer_id
    assert ipfs_node.api_url.startswith("http://127.0.0.1:")


def test_install_is_cached_outside_the_repository() -> None:
    path = install()  # already installed by the session fixture: returns at once
    assert (path / "node_modules" / "ipfs" / "src" / "cli.js").exists()
    assert cache_root() in path.parents
    assert NODE_FILES.parent not in path.parents


def test_start_fails_loudly_when_the_port_is_taken(tmp_path: Path, ipfs_node: IpfsNode) -> None:
    node = IpfsNode(tmp_path / "repo", api_port=ipfs_node.api_port)
    with pytest.raises(IpfsNodeError, match="is taken"):
        node.start()
