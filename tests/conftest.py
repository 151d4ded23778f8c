"""Shared fixtures and the hypothesis profiles (select with $HYPOTHESIS_PROFILE)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

from ipfs_log import Identity, Log, MemoryBlockStore, WriteList
from tests.kubo_node import KuboNode

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


# --- a real IPFS RPC node: Kubo (tests/kubo_node.py) ----------------------------------------------------
# These fixtures FAIL (an error, never a skip) when Kubo cannot be built or started: a green run must mean
# the IPFS tests ran. Tests that use them are marked ``ipfs`` automatically (deselect with ``-m "not ipfs"``
# while developing). js-ipfs (tests/ipfs_node.py) remains only for tests about js-ipfs itself.

_NODE_FIXTURES = {"ipfs_node", "ipfs_node_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ipfs)


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KuboNode]:
    """One Kubo node for the whole session, on free loopback ports. Tests must not stop it."""
    node = KuboNode(tmp_path_factory.mktemp("ipfs-session") / "repo")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(autouse=True)
def _unpin_the_session_node(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the session node, remove its recursive pins, so tests do not see each other's.

    (On js-ipfs this was also a workaround: it walked pinned DAGs path by path, without a visited set, so
    an orbit log's skip links made ``pin/ls <cid>`` and ``block/rm`` explode. Kubo walks with a visited
    set.) Two cheap requests: ``pin/ls --type=recursive`` lists the roots without walking them.
    """
    yield
    if "ipfs_node" not in request.fixturenames:
        return
    node: KuboNode = request.getfixturevalue("ipfs_node")
    if not node.running:
        return
    with httpx.Client(base_url=f"{node.api_url}/api/v0", timeout=60) as rpc:
        listed = rpc.post("/pin/ls", params={"type": "recursive"})
        listed.raise_for_status()
        pins = list(listed.json().get("Keys") or {})
        for i in range(0, len(pins), 500):
            rpc.post("/pin/rm", params=[("arg", cid) for cid in pins[i : i + 500]]).raise_for_status()


@pytest.fixture
def ipfs_node_factory(tmp_path: Path) -> Iterator[Callable[[], KuboNode]]:
    """Start extra Kubo nodes for one test (multi-node, kill/restart tests); all are stopped after it."""
    nodes: list[KuboNode] = []

    def make() -> KuboNode:
        node = KuboNode(tmp_path / f"ipfs-{len(nodes)}" / "repo")
        nodes.append(node)
        node.start()
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop()
