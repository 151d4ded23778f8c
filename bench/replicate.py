"""``replicate``: two peers, each with its own IPFS node on loopback, replicate one eventlog.

The nodes are Kubo (``ORBIT_BENCH_NODE=js-ipfs`` for js-ipfs 0.66.1, see ``bench/common.py``).

- ``replicate_10k_s``: peer B, starting empty, opens the database and replicates until it holds all
  ``n`` entries peer A wrote before (A's node holds them; B fetches over bitswap through its node,
  verifying every entry); ``replicate_per_s`` = n ÷ that.
- ``live_latency_ms``: median time from a write on A until B's store shows it, over 100 writes while both
  are online (announcements inline the new entry, so no fetch is needed).
- ``fetch_concurrency``: block requests B keeps in flight per frontier (for what bundles do not bring).

Both peers are ``OrbitDB(directory, ipfs=client)``: local-first writes uploaded to their node in the
background, a replicator per database.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ipfs_node
from ipfs_log import Identity
from orbit import KuboClient, OrbitDB
from stores.base import Update

LIVE_WRITES = 100


OPTIONS = {"interval": 2.0, "peer_poll": 0.3, "retry": 0.2, "max_retry": 2.0}


def run(n: int) -> dict[str, Any]:
    alice = Identity.from_seed(b"bench-alice".ljust(32, b"\0"))
    bob = Identity.from_seed(b"bench-bob".ljust(32, b"\0"))
    writers = [alice.did, bob.did]
    result: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="orbit-bench-replicate-") as tmp:
        root = Path(tmp)
        made = [ipfs_node(root / f"node{i}" / "repo") for i in range(2)]
        nodes = [node for node, _ in made]
        result["node"] = made[0][1]
        for node in nodes:
            node.start()
        clients = [KuboClient(node.api_url, block_timeout=10.0) for node in nodes]
        try:
            clients[0].swarm_connect(nodes[1].swarm_address)
            # Pins on Kubo; not on js-ipfs, which walks a pinned DAG path by path and does not end on
            # 10k skip-linked entries (Kubo walks each block once); replication does not depend on them.
            pin = result["node"].startswith("kubo")
            a = OrbitDB(root / "a", identity=alice, ipfs=clients[0], pin=pin, replication=OPTIONS)
            b = OrbitDB(root / "b", identity=bob, ipfs=clients[1], pin=pin, replication=OPTIONS)
            with a, b:
                assert a.ipfs is not None
                result["fetch_concurrency"] = a.ipfs.store.concurrency
                da = a.open("bench", type="eventlog", write=writers)
                with da.batch() as batch:
                    for i in range(n):
                        batch.add({"i": i, "text": "replicated event"})
                if not a.ipfs.flush(600):  # A's node holds the log (uploaded in the background)
                    raise RuntimeError("A's uploads did not reach its node")
                started = time.perf_counter()
                db = b.open("bench", type="eventlog", write=writers)
                db.wait_for(da.heads(), timeout=600)
                elapsed = time.perf_counter() - started
                assert db.entry_count() == n
                result["replicate_10k_s"] = round(elapsed, 2)
                result["replicate_per_s"] = round(n / elapsed)
                counters = db.replication_status().counters
                result["catchup"] = {k: counters[k] for k in ("packs", "bundles", "bytes_fetched")}

                assert b.ipfs is not None
                if not b.ipfs.flush(600):  # B puts what it replicated on its node: let it finish first
                    raise RuntimeError("B's uploads did not reach its node")
                latencies: list[float] = []
                seen = threading.Event()
                target: list[Any] = [None]

                def on_update(update: Update) -> None:
                    if any(e.cid == target[0] for e in update.entries):
                        seen.set()

                db.subscribe(on_update)
                for i in range(LIVE_WRITES):
                    seen.clear()
                    t = time.perf_counter()
                    target[0] = da.add({"live": i})
                    if not seen.wait(30):
                        raise RuntimeError(f"live write {i} did not reach B within 30 s")
                    latencies.append((time.perf_counter() - t) * 1000)
                result["live_latency_ms"] = round(statistics.median(latencies), 1)
                result["live_latency_p90_ms"] = round(sorted(latencies)[int(0.9 * len(latencies))], 1)
        finally:
            for client in clients:
                client.close()
            for node in nodes:
                node.stop()
    return result
