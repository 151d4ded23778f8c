"""Opening a database from a trusted commit against a full verified replay, through ``orbit.open``.

- ``snapshot_open_local_speedup``: a new directory opens the keyvalue database by address with
  ``snapshot=commit, trust="writer"`` (the commit checked, the winners and state trees fetched and
  checked, the winning entries verified, the log started at the commit's heads), reading blocks from the
  writer's local store, over opening it by address and joining the heads from that store (every entry
  fetched, verified and applied: today's default);
- ``snapshot_open_ipfs_speedup``: the same, both reading from an IPFS node (Kubo) that the writer's
  directory uploaded to (``OrbitDB(..., ipfs=client)``): the newcomer's directory is linked to the same
  node and is given the commit's state pack (``pack=``, the hint a peer's announcement carries with the
  commit), so the state comes with one ``cat``, each block checked; what the pack lacks comes over the
  node's RPC. The replay reads the log's packs the same way (``snapshot_open_ipfs_block_s`` is the
  open from the commit without the pack, a ``block/get`` per block, for comparison, when
  ``ORBIT_BENCH_SNAPSHOT_BLOCKS`` is set).

Sizes: ``entries`` writes over ``min(10k, entries)`` keys; the IPFS case may use fewer entries
(uploading a long history to a node takes minutes) and says how many: at most
:data:`DEFAULT_IPFS_ENTRIES` unless ``ORBIT_BENCH_SNAPSHOT_IPFS`` says otherwise (0 skips it). The
whole IPFS case at 1M entries (writes, uploads, pins, packs, both opens) took about 11 minutes here
on one day, and the writer's upload flush alone over 30 minutes on a day the machine ran some 1.6 times
slower: the flush waits at most ``ORBIT_BENCH_FLUSH_S`` seconds (default 3,600). It did not finish at
all before pins moved with Kubo's ``pin/update``, whose diff of two log heads is exponential (see
:meth:`orbit.ipfs.IpfsBlockStore.pin`). A smaller run:
``ORBIT_BENCH_SNAPSHOT_IPFS=100000 python bench/run.py snapshot_open --n 1000000 --json``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ipfs_node
from ipfs_log import Identity
from orbit import KuboClient, OrbitDB

LIVE = 10_000


def snapshot_open(local_entries: int, ipfs_entries: int) -> dict[str, Any]:
    """Return the two speedups (and their times) for histories of the given sizes."""
    result: dict[str, Any] = {
        "snapshot_open_local_entries": local_entries,
        "snapshot_open_ipfs_entries": ipfs_entries,
    }
    with tempfile.TemporaryDirectory(prefix="orbit-bench-snapshot-") as tmp:
        root = Path(tmp)
        if local_entries:
            result.update(_measure(root / "local", local_entries, None, "local"))
        if not ipfs_entries:
            return result
        node, label = ipfs_node(root / "node" / "repo")
        node.start()
        try:
            result["snapshot_open_node"] = label
            result.update(
                _measure(root / "ipfs", ipfs_entries, KuboClient(node.api_url, block_timeout=30.0), "ipfs")
            )
        finally:
            node.stop()
    return result


def _measure(root: Path, entries: int, client: KuboClient | None, where: str) -> dict[str, Any]:
    writer = Identity.from_seed(b"bench-snapshot-writer".ljust(32, b"\0"))
    reader = Identity.from_seed(b"bench-snapshot-reader".ljust(32, b"\0"))
    live = min(LIVE, entries)
    with OrbitDB(root / "writer", identity=writer, ipfs=client, replicate=False) as orbit:
        db = orbit.open("snap", type="keyvalue", write=[writer.did])
        for start in range(0, entries, 1_000):
            with db.batch() as batch:
                for i in range(start, min(entries, start + 1_000)):
                    batch.put(f"key{i % live}", i)
        commit = db.commit()
        address, heads, state = db.address, db.heads(), db.all()
        flush_s = float(os.environ.get("ORBIT_BENCH_FLUSH_S", "3600"))
        if orbit.ipfs is not None and not orbit.ipfs.flush(flush_s):
            raise RuntimeError(f"the writer's uploads did not reach its node within {flush_s:.0f} s")
        source = None if client is not None else orbit.blocks
        packed = None if orbit.ipfs is None else orbit.ipfs.state_pack_of(address)
        if orbit.ipfs is not None and (packed is None or packed.commit != commit.cid):
            raise RuntimeError("the writer's node holds no state pack of its commit")
        extra: dict[str, Any] = {}
        if packed is not None and os.environ.get("ORBIT_BENCH_SNAPSHOT_BLOCKS"):
            with OrbitDB(root / "blocks", identity=reader, ipfs=client, replicate=False) as new:
                t = time.perf_counter()
                opened: Any = new.open(address, snapshot=commit.block, trust="writer")
                extra[f"snapshot_open_{where}_block_s"] = round(time.perf_counter() - t, 3)
                assert opened.all() == state
        with OrbitDB(root / "snap", identity=reader, ipfs=client, replicate=False) as new:
            t = time.perf_counter()
            opened = new.open(
                address,
                snapshot=commit.block,
                trust="writer",
                source=source,
                pack=None if packed is None else packed.cid,
            )
            snapshot_s = time.perf_counter() - t
            assert opened.all() == state
        with OrbitDB(root / "replay", identity=reader, ipfs=client, replicate=False) as new:
            t = time.perf_counter()
            if client is None:  # no node to fetch the manifest from: it comes with the heads
                new.blocks.put(db.manifest.cid, db.manifest.block)
            replayed: Any = new.open(address, wait=0)
            replayed.join_heads(heads, source=source)
            replay_s = time.perf_counter() - t
            assert replayed.all() == state
    return {
        **extra,
        f"snapshot_open_{where}_s": round(snapshot_s, 3),
        f"full_replay_open_{where}_s": round(replay_s, 2),
        f"snapshot_open_{where}_speedup": round(replay_s / snapshot_s, 1),
    }


DEFAULT_IPFS_ENTRIES = 1_000_000
"""The IPFS case's size unless ``$ORBIT_BENCH_SNAPSHOT_IPFS`` gives another (see the module's text)."""


def run(n: int) -> dict[str, Any]:
    """Both cases at ``n`` entries, the IPFS one capped by ``$ORBIT_BENCH_SNAPSHOT_IPFS`` (0 skips it)."""
    cap = int(os.environ.get("ORBIT_BENCH_SNAPSHOT_IPFS", DEFAULT_IPFS_ENTRIES))
    return snapshot_open(n, min(n, cap))
