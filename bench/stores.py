"""``stores``: keyvalue puts and gets, documents lookups, counter increments, against raw Ed25519."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.common import raw_sign_verify
from ipfs_log import Identity, Log, MemoryBlockStore
from stores import Counter, Documents, KeyValue


def _log(identity: Identity, log_id: str) -> Log:
    return Log(identity, MemoryBlockStore(), log_id=log_id)


def _median_us(calls: list[Any], fn: Any) -> float:
    clock = time.perf_counter_ns
    samples = []
    for arg in calls:
        t = clock()
        fn(arg)
        samples.append(clock() - t)
    return statistics.median(samples) / 1000


def run(n: int) -> dict[str, Any]:
    alice = Identity.from_seed(b"a" * 32)
    rng = random.Random(7)
    sign_per_s, _ = raw_sign_verify()

    # keyvalue: n individual puts (one entry each), then gets at n keys
    kv = KeyValue(_log(alice, "bench-kv"))
    t = time.perf_counter()
    for i in range(n):
        kv.put(f"key{i}", {"n": i, "text": "a value"})
    kv_put_per_s = n / (time.perf_counter() - t)
    keys = [f"key{rng.randrange(n)}" for _ in range(100_000)]
    kv_get_us = _median_us(keys, kv.get)
    assert len(kv) == n

    rounds = min(n, 20_000)
    batched = KeyValue(_log(alice, "bench-kv-batch"))
    t = time.perf_counter()
    with batched.batch() as batch:
        for i in range(rounds):
            batch.put(f"key{i}", {"n": i, "text": "a value"})
    kv_batch_put_per_s = rounds / (time.perf_counter() - t)

    t = time.perf_counter()
    replayed = KeyValue(kv.log)
    kv_replay_per_s = n / (time.perf_counter() - t)
    checkpoint = kv.checkpoint()
    t = time.perf_counter()
    restored = KeyValue(kv.log, checkpoint=checkpoint)
    kv_restore_ms = (time.perf_counter() - t) * 1000
    assert replayed.all() == restored.all() == kv.all()

    # documents: n docs written in PUTALL entries of 1,000, 1,000 cities
    docs = Documents(_log(alice, "bench-docs"), indexes=["city"])
    cities = max(1, min(1_000, n // 100))
    t = time.perf_counter()
    chunk = 1_000
    with docs.batch() as dbatch:
        for start in range(0, n, chunk):
            dbatch.put_many(
                {"_id": f"doc{i}", "city": f"city{i % cities}", "n": i}
                for i in range(start, min(n, start + chunk))
            )
    docs_fill_per_s = n / (time.perf_counter() - t)
    assert len(docs) == n
    wanted = [f"city{rng.randrange(cities)}" for _ in range(500)]
    docs_find_ms = _median_us(wanted, lambda city: docs.find(city=city)) / 1000
    assert len(docs.find(city="city0")) == len(range(0, n, cities))

    def scan(r: int) -> list[Any]:
        return docs.query(lambda d: d["n"] == r)

    docs_query_ms = _median_us(list(range(5)), scan) / 1000
    docs_get_us = _median_us([f"doc{rng.randrange(n)}" for _ in range(100_000)], docs.get)

    # counter: individual increments
    counter = Counter(_log(alice, "bench-counter"))
    t = time.perf_counter()
    for _ in range(rounds):
        counter.inc()
    counter_inc_per_s = rounds / (time.perf_counter() - t)
    assert counter.value == rounds

    return {
        "n": n,
        "sign_per_s": round(sign_per_s),
        "kv_put_per_s": round(kv_put_per_s),
        "kv_put_ratio": round(kv_put_per_s / sign_per_s, 3),
        "kv_get_us": round(kv_get_us, 3),
        "kv_batch_put_per_s": round(kv_batch_put_per_s),
        "kv_replay_per_s": round(kv_replay_per_s),
        "kv_restore_ms": round(kv_restore_ms, 1),
        "docs_fill_per_s": round(docs_fill_per_s),
        "docs_find_ms": round(docs_find_ms, 4),
        "docs_find_matches": len(docs.find(city="city0")),
        "docs_query_ms": round(docs_query_ms, 2),
        "docs_get_us": round(docs_get_us, 3),
        "counter_inc_per_s": round(counter_inc_per_s),
    }
