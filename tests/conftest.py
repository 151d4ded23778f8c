"""Shared fixtures and the hypothesis profiles (select with $HYPOTHESIS_PROFILE)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ipfs_log import Identity, Log, MemoryBlockStore, WriteList
from orbit.kubo import KuboClient
from tests.ipfs_node import IpfsNode

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Let hypothesis report a failure instead of crashing pytest.

    On a failing example hypothesis imports libcst to suggest a patch; libcst raises a
    DeprecationWarning (mypy_extensions.TypedDict), and ``filterwarnings = error`` turns that into an
    INTERNALERROR that hides the falsifying example. Import it here first, with the warning silenced.
    """
    if getattr(item, "_hypothesis_failing_examples", None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with contextlib.suppress(ImportError):
                import hypothesis.extra._patching  # noqa: F401


ALICE = Identity.from_seed(b"alice".ljust(32, b"\0"))
BOB = Identity.from_seed(b"bob".ljust(32, b"\0"))
CAROL = Identity.from_seed(b"carol".ljust(32, b"\0"))
MALLORY = Identity.from_seed(b"mallory".ljust(32, b"\0"))
WRITERS = WriteList([ALICE.public_key, BOB.public_key, CAROL.public_key])


@pytest.fixture
def store() -> MemoryBlockStore:
    return MemoryBlockStore()


@pytest.fixture
def log_factory(store: MemoryBlockStore):
    def make(identity: Identity = ALICE, log_id: str = "test-log") -> Log:
        return Log(identity, store, log_id=log_id, access=WRITERS)

    return make


# --- a real IPFS RPC node (tests/ipfs_node.py) ----------------------------------------------------------
# These fixtures FAIL (an error, never a skip) when the node cannot be installed or started: a green run
# must mean the IPFS tests ran. Tests that use them are marked ``ipfs`` automatically (deselect with
# ``-m "not ipfs"`` while developing).

_NODE_FIXTURES = {"ipfs_node", "ipfs_node_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ipfs)


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNode]:
    """One js-ipfs node for the whole session, on free loopback ports. Tests must not stop it."""
    node = IpfsNode(tmp_path_factory.mktemp("ipfs-session") / "repo")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(autouse=True)
def _unpin_the_session_node(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the session node, remove its recursive pins.

    js-ipfs answers ``pin/ls <cid>`` and ``block/rm`` by walking every recursively pinned DAG path by
    path (no visited set); an orbit log's skip links make that walk explode after a few dozen
    entries. Kubo walks with a visited set. Keeping the session node free of pins keeps tests
    independent of each other's pins.
    """
    yield
    if "ipfs_node" not in request.fixturenames:
        return
    node: IpfsNode = request.getfixturevalue("ipfs_node")
    if node.running:
        with KuboClient(node.api_url) as kubo:
            pins = kubo.pin_ls(type="recursive")
            if pins:
                kubo.pin_rm(pins)


@pytest.fixture
def ipfs_node_factory(tmp_path: Path) -> Iterator[Callable[[], IpfsNode]]:
    """Start extra nodes for one test (multi-node tests, kill/restart tests); all are stopped after it."""
    nodes: list[IpfsNode] = []

    def make() -> IpfsNode:
        node = IpfsNode(tmp_path / f"ipfs-{len(nodes)}" / "repo")
        nodes.append(node)
        node.start()
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop()
