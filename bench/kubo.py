"""IPFS node suite: blocks through the Kubo HTTP RPC to a real node that this suite starts.

The node is the project's test node (Kubo, built from ``kubo/`` into ``~/.cache/orbit``;
``ORBIT_BENCH_NODE=js-ipfs`` for the archived js-ipfs 0.66.1), on loopback, in a temporary
repository. Blocks are real log entries (signed, about 280 bytes each).

- ``block_put_per_s``: ``IpfsBlockStore.put_many`` of ``n`` entry blocks, ``concurrency`` in flight.
- ``block_put_sequential_per_s``: the same, one ``block/put`` at a time.
- ``block_get_many_per_s``: ``get_many`` of the ``n`` blocks, held by the node, by a new client and
  store (nothing cached), with the concurrency that measured best.
- ``get_many_per_s_by_concurrency``: ``get_many`` of a 1,000-block sample at each concurrency tried.
- ``upload_per_s``: an ``OrbitDB(…, ipfs=…)`` eventlog of ``n`` entries (one batch), uploaded by the
  background uploader until every block is on the node, the heads pinned and the heads record written
  (on js-ipfs without pins: it cannot pin a 10k-entry orbit log, see README).
- ``load_10k_ms``: open that eventlog by address from a fresh directory (its blocks are only on the
  node) and read every value: manifest, heads record, ``dag/export``, verification of every entry.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ipfs_node
from ipfs_log import Identity, Log, MemoryBlockStore, WriteList
from ipfs_log.cid import CID
from orbit import OrbitDB
from orbit.ipfs.blockstore import DEFAULT_CONCURRENCY, IpfsBlockStore
from orbit.ipfs.client import KuboClient

CONCURRENCIES = (1, 4, 8, 16, 32)
SAMPLE = 1_000


def entry_blocks(n: int) -> list[tuple[CID, bytes]]:
    """``n`` real log entries (signed, with next and refs links), as blocks."""
    identity = Identity.from_seed(b"bench-kubo".ljust(32, b"\0"))
    log = Log(identity, MemoryBlockStore(), log_id="bench-kubo", access=WriteList([identity.public_key]))
    log.append_many({"op": "ADD", "value": f"event {i}"} for i in range(n))
    return [(entry.cid, entry.block) for entry in log]


def _get_rate(api: str, cids: list[CID], concurrency: int) -> float:
    with IpfsBlockStore(KuboClient(api, block_timeout=10), concurrency=concurrency) as store:
        started = time.perf_counter()
        got = store.get_many(cids)
        elapsed = time.perf_counter() - started
    if len(got) != len(cids):
        raise RuntimeError(f"the node returned {len(got)} of {len(cids)} blocks")
    return len(cids) / elapsed


def _orbitdb_load(api: str, tmp: Path, n: int, pin: bool) -> dict[str, Any]:
    writer = Identity.from_seed(b"bench-kubo-writer".ljust(32, b"\0"))
    # pins on Kubo (it walks a pinned DAG once per block); not on js-ipfs, which cannot pin a 10k-entry
    # orbit log (its recursive walk runs out of file descriptors after minutes of work)
    with OrbitDB(tmp / "writer", identity=writer, ipfs=api, pin=pin) as orbit:
        events = orbit.open("bench-events", type="eventlog")
        t = time.perf_counter()
        with events.batch() as batch:
            for i in range(n):
                batch.add({"event": i})
        link = orbit.ipfs
        assert link is not None
        if not link.flush(900):  # every block on the node, and the heads record written
            raise RuntimeError(f"uploads did not finish: {link.uploads.pending_errors()}")
        upload_s = time.perf_counter() - t
        address = events.address
    t = time.perf_counter()
    with OrbitDB(tmp / "reader", ipfs=api, pin=pin) as reader:
        values = [event.value for event in reader.open(address, type="eventlog").iter()]
        load_ms = (time.perf_counter() - t) * 1000
    if len(values) != n:
        raise RuntimeError(f"loaded {len(values)} of {n} entries")
    return {"upload_per_s": round(n / upload_s), f"load_{n // 1000}k_ms": round(load_ms)}


def run(n: int) -> dict[str, Any]:
    blocks = entry_blocks(n)
    cids = [cid for cid, _ in blocks]
    result: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="orbit-bench-kubo-") as tmp:
        node, result["node"] = ipfs_node(Path(tmp) / "repo")
        started = time.perf_counter()
        node.start()
        result["node_start_s"] = round(time.perf_counter() - started, 2)
        try:
            sequential = blocks[: min(n, SAMPLE)]
            with IpfsBlockStore(KuboClient(node.api_url), concurrency=1) as store:
                t = time.perf_counter()
                for cid, block in sequential:
                    store.put(cid, block)
                result["block_put_sequential_per_s"] = round(len(sequential) / (time.perf_counter() - t))
            with IpfsBlockStore(KuboClient(node.api_url), concurrency=DEFAULT_CONCURRENCY) as store:
                t = time.perf_counter()
                store.put_many(blocks)
                result["block_put_per_s"] = round(n / (time.perf_counter() - t))
            sample = cids[: min(n, SAMPLE)]
            by_concurrency = {c: round(_get_rate(node.api_url, sample, c)) for c in CONCURRENCIES}
            best = max(by_concurrency, key=lambda c: by_concurrency[c])
            result["get_many_per_s_by_concurrency"] = by_concurrency
            result["concurrency"] = best
            result["default_concurrency"] = DEFAULT_CONCURRENCY
            result["block_get_many_per_s"] = round(_get_rate(node.api_url, cids, best))
            result.update(_orbitdb_load(node.api_url, Path(tmp), n, pin=result["node"].startswith("kubo")))
        finally:
            node.stop()
    return result
