"""``replicate``: two peers, each with its own js-ipfs node on loopback, replicate one eventlog.

- ``replicate_10k_s``: peer B, starting empty, opens the database and replicates until it holds all
  ``n`` entries peer A wrote before (A's node holds them; B fetches over bitswap through its node,
  verifying every entry); ``replicate_per_s`` = n ÷ that.
- ``live_latency_ms``: median time from a write on A until B's store shows it, over 100 writes while both
  are online (announcements inline the new entry, so no fetch is needed).
- ``fetch_concurrency``: block requests B keeps in flight per frontier.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ipfs_log import Identity
from orbit import KuboClient, OrbitDB, Replicator
from orbit.blockstore.ipfs import IpfsBlockStore
from stores.base import Update
from tests.ipfs_node import IpfsNode

LIVE_WRITES = 100


def _replicator(db: Any, client: KuboClient, remote: IpfsBlockStore) -> Replicator:
    replicator = Replicator(db, client, remote, interval=2.0, peer_poll=0.3, retry=0.2, max_retry=2.0)
    db.replicator = replicator
    return replicator.start()


def run(n: int) -> dict[str, Any]:
    alice = Identity.from_seed(b"bench-alice".ljust(32, b"\0"))
    bob = Identity.from_seed(b"bench-bob".ljust(32, b"\0"))
    writers = [alice.did, bob.did]
    result: dict[str, Any] = {"n": n, "node": "js-ipfs 0.66.1 (Kubo RPC)"}
    with tempfile.TemporaryDirectory(prefix="orbit-bench-replicate-") as tmp:
        root = Path(tmp)
        nodes = [IpfsNode(root / f"node{i}" / "repo") for i in range(2)]
        for node in nodes:
            node.start()
        clients = [KuboClient(node.api_url, block_timeout=10.0) for node in nodes]
        remotes = [IpfsBlockStore(client) for client in clients]
        try:
            clients[0].swarm_connect(nodes[1].swarm_address)
            result["fetch_concurrency"] = remotes[1].concurrency
            with OrbitDB(root / "a", identity=alice) as a, OrbitDB(root / "b", identity=bob) as b:
                da = a.open("bench", type="eventlog", write=writers)
                with da.batch() as batch:
                    for i in range(n):
                        batch.add({"i": i, "text": "replicated event"})
                remotes[0].put_many((e.cid, e.block) for e in da.log)  # A's node holds the log
                _replicator(da, clients[0], remotes[0])
                started = time.perf_counter()
                db = b.open("bench", type="eventlog", write=writers)
                _replicator(db, clients[1], remotes[1])
                db.wait_for(da.heads(), timeout=600)
                elapsed = time.perf_counter() - started
                assert db.entry_count() == n
                result["replicate_10k_s"] = round(elapsed, 2)
                result["replicate_per_s"] = round(n / elapsed)

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
            for remote in remotes:
                remote.close()
            for client in clients:
                client.close()
            for node in nodes:
                node.stop()
    return result
