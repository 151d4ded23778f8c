"""Same-run baselines shared by the benchmark suites."""

from __future__ import annotations

import time

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
