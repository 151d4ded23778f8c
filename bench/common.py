"""Same-run baselines shared by the benchmark suites."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nacl.bindings

MESSAGE = bytes(range(256)) * 2 + b"x" * 168  # about one entry's signing bytes


def raw_sign_verify(rounds: int = 20_000) -> tuple[float, float]:
    """Return raw pynacl Ed25519 (signs/s, verifies/s) on this machine, now."""
    public, secret = nacl.bindings.crypto_sign_seed_keypair(b"s" * 32)
    sign, open_ = nacl.bindings.crypto_sign, nacl.bindings.crypto_sign_open
    t = time.perf_counter()
    for _ in range(rounds):
        signed = sign(MESSAGE, secret)
    sign_per_s = rounds / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(rounds):
        open_(signed, public)
    verify_per_s = rounds / (time.perf_counter() - t)
    return sign_per_s, verify_per_s


def ipfs_node(repo: Path) -> tuple[Any, str]:
    """Return an unstarted IPFS node for a benchmark and its label (``"node"`` in the JSON).

    Kubo (built from ``kubo/`` by ``tests/kubo_node.py``) by default; ``ORBIT_BENCH_NODE=js-ipfs`` runs
    the archived js-ipfs 0.66.1 instead (``tests/ipfs_node.py``), for the README's comparison.
    """
    if os.environ.get("ORBIT_BENCH_NODE", "kubo") == "js-ipfs":
        from tests.ipfs_node import IpfsNode

        return IpfsNode(repo), "js-ipfs 0.66.1 (Kubo RPC)"
    from tests import kubo_node

    return kubo_node.KuboNode(repo), f"kubo {kubo_node.version()}"
