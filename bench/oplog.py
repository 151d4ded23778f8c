"""``oplog``: append, join with full verification, iteration, against raw Ed25519 in the same run."""

from __future__ import annotations

import time
from typing import Any

from bench.common import raw_sign_verify
from ipfs_log import Identity, Log, MemoryBlockStore, WriteList


def run(n: int) -> dict[str, Any]:
    alice, bob = Identity.from_seed(b"a" * 32), Identity.from_seed(b"b" * 32)
    access = WriteList([alice.public_key, bob.public_key])
    sign_per_s, verify_per_s = raw_sign_verify()

    writer = Log(alice, MemoryBlockStore(), log_id="bench", access=access)
    t = time.perf_counter()
    for i in range(n):
        writer.append({"op": "ADD", "key": None, "value": {"n": i, "text": "event payload"}})
    append_per_s = n / (time.perf_counter() - t)

    reader = Log(bob, MemoryBlockStore(), log_id="bench", access=access)
    t = time.perf_counter()
    reader.join(writer)
    join_verify_per_s = n / (time.perf_counter() - t)
    assert len(reader) == n

    rounds = max(1, 2_000_000 // n)
    t = time.perf_counter()
    for _ in range(rounds):
        for _entry in reader:
            pass
    iterate_per_s = rounds * n / (time.perf_counter() - t)

    t = time.perf_counter()
    newest = list(reader.iter(reverse=True, amount=n // 10))
    iter_range_per_s = len(newest) / (time.perf_counter() - t)

    return {
        "n": n,
        "sign_per_s": round(sign_per_s),
        "verify_per_s": round(verify_per_s),
        "append_per_s": round(append_per_s),
        "join_verify_per_s": round(join_verify_per_s),
        "iterate_per_s": round(iterate_per_s),
        "iter_range_per_s": round(iter_range_per_s),
        "append_ratio": round(append_per_s / sign_per_s, 3),
        "join_ratio": round(join_verify_per_s / verify_per_s, 3),
        "entry_bytes": len(writer.values()[-1].block),
    }
