"""Verifiable state: tree maintenance per admitted entry, rebuild, proof size and verification.

- ``state_update_us``: time spent keeping a keyvalue store's state tree in step (applying the keys
  each admitted entry names, and hashing the dirty nodes once per batch of 1,000 entries), per entry,
  over ``n`` entries written to ``live`` keys (default 1M entries over 10k keys); the mean, and the
  median over the batches (less moved by other work on a shared machine);
- ``tree_rebuild_s``: building the tree from the store's index (the ``live`` keys) in one pass;
- ``proof_bytes`` (mean; p99 and max too), ``proof_verify_us`` (median; mean and p99 too): over 1,000
  random keys (and 100 absent ones, verified too) of a tree of 1M live keys built directly in memory
  (keys ``key<i>``, small int values); ``proof_bytes_max_every_key``: the largest proof of any of the
  1M keys (each one proven); ``proof_path_blocks_max``: the most blocks on any path of that tree;
- ``snapshot_bootstrap_speedup``: a full verified replay of those ``n`` entries into a new replica (a
  join from the writer's in-memory store: every entry fetched, verified and applied) over opening the
  state from a trusted commit (``writer`` trust: the commit checked, every tree node fetched and checked);
- ``partial_sync_ratio``: the node bytes a partial replica of 1% of the key range fetches to follow
  10k random writes to the 10k live keys (a commit every 100 writes) over what a full replica fetches.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from typing import Any

from bench import snapshot_open
from ipfs_log import Identity, Log, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import encode
from orbit.state import Commit, MemoryNodes, NodeStore, Snapshot, StateIndex, StateTree, prove, verify_proof
from orbit.state.partial import PartialReplica
from orbit.state.tree import block_parts
from orbit.state.views import state_items
from stores.keyvalue import KeyValue

LIVE = 10_000
BATCH = 1_000
PROOF_KEYS = 1_000_000


def run(n: int) -> dict[str, Any]:
    result: dict[str, Any] = {"entries": n, "live_keys": min(LIVE, n)}
    result.update(_updates(n))
    result.update(_proofs(PROOF_KEYS if n >= 100_000 else n))
    result.update(_partial(min(LIVE, n)))
    result.update(snapshot_open.run(n))  # bench/snapshot_open.py
    return result


def _partial(live: int) -> dict[str, Any]:
    tree = StateTree.build(sorted((b"key%06d" % i, encode(i)) for i in range(live)))
    share = max(1, live // 100)
    lo, hi = b"key%06d" % (live // 2), b"key%06d" % (live // 2 + share)  # 1% of the keys
    full, part = PartialReplica(tree.store, None, None), PartialReplica(tree.store, lo, hi)
    for replica in (full, part):
        replica.follow(tree.root())
        replica.fetched_bytes = replica.fetched_nodes = 0  # count what following costs, not the start
    rng = random.Random(13)
    writes, every = 10_000, 100
    for n in range(writes):
        tree.put(b"key%06d" % rng.randrange(live), encode(-n))
        if (n + 1) % every == 0:
            root = tree.root()
            full.follow(root)
            part.follow(root)
    assert part.items() == list(tree.items(lo, hi))
    return {
        "partial_sync_ratio": round(part.fetched_bytes / full.fetched_bytes, 4),
        "partial_fetched_bytes": part.fetched_bytes,
        "full_fetched_bytes": full.fetched_bytes,
    }


def _updates(n: int) -> dict[str, Any]:
    identity = Identity.from_seed(b"s" * 32)
    store = KeyValue(Log(identity, MemoryBlockStore(), log_id="bench-state"))
    nodes = MemoryNodes()
    index = StateIndex(store, nodes)
    index.root()
    spent = 0.0

    def follow(update: Any) -> None:
        nonlocal spent
        t = time.perf_counter()
        index.apply(update.entries)
        spent += time.perf_counter() - t

    store.subscribe(follow)
    rng = random.Random(7)
    live = min(LIVE, n)
    t_total = time.perf_counter()
    per_batch: list[float] = []
    for start in range(0, n, BATCH):
        before = spent
        with store.batch() as batch:
            for i in range(start, min(n, start + BATCH)):
                batch.put(f"key{rng.randrange(live)}", i)
        t = time.perf_counter()
        index.root()
        spent += time.perf_counter() - t
        per_batch.append((spent - before) / len(batch.entries))
    total = time.perf_counter() - t_total
    t = time.perf_counter()
    rebuilt = StateTree.build(state_items(store))
    root = rebuilt.root()
    rebuild = time.perf_counter() - t
    assert root == index.root()
    snapshot = _snapshot(store, index, nodes, identity)
    return snapshot | {
        "state_update_us": round(spent / n * 1e6, 2),
        "state_update_us_median_batch": round(statistics.median(per_batch) * 1e6, 2),
        "write_and_apply_us": round(total / n * 1e6, 2),
        "tree_rebuild_s": round(rebuild, 4),
    }


def _snapshot(store: KeyValue, index: StateIndex, nodes: MemoryNodes, identity: Identity) -> dict[str, Any]:
    log = store.log
    commit = Commit.create(identity, "bench-state", log.head_cids, index.root(), len(log))
    t = time.perf_counter()
    snap = Snapshot(nodes, address="bench-state", writers=[identity.public_key])
    snap.accept([commit.block])
    items = snap.bootstrap()
    opened = time.perf_counter() - t
    t = time.perf_counter()
    replica = KeyValue(Log(identity, MemoryBlockStore(), log_id="bench-state"))
    replica.join(store)
    replayed = time.perf_counter() - t
    assert items == len(replica) == len(store)
    return {
        "snapshot_open_s": round(opened, 4),
        "snapshot_fetched_bytes": snap.fetched_bytes,
        "full_replay_s": round(replayed, 2),
        "snapshot_bootstrap_speedup": round(replayed / opened, 1),
    }


def _proofs(keys: int) -> dict[str, Any]:
    items = [(b"key%d" % i, encode(i)) for i in range(keys)]
    items.sort()
    t = time.perf_counter()
    tree = StateTree.build(items)
    root = tree.root()
    build = time.perf_counter() - t
    rng = random.Random(11)
    probes = [items[rng.randrange(keys)][0] for _ in range(1_000)] + [b"absent%d" % i for i in range(100)]
    t = time.perf_counter()
    proofs = [(key, prove(tree, key)) for key in probes]
    proving = (time.perf_counter() - t) / len(proofs)
    t = time.perf_counter()
    every = max(len(prove(tree, key)) for key, _ in items)  # the target is for every key, not a sample
    every_s = time.perf_counter() - t
    deepest = _deepest_path(tree.store, root)
    gc.freeze()  # a verifier does not hold the prover's million nodes: keep the collector off them
    times: list[float] = []
    clock = time.perf_counter
    for key, proof in proofs:
        t = clock()
        verify_proof(root, key, proof)
        times.append(clock() - t)
    gc.unfreeze()
    times.sort()
    sizes = sorted(len(p) for _, p in proofs[:1_000])
    absent = [len(p) for _, p in proofs[1_000:]]
    return {
        "proof_live_keys": keys,
        "tree_build_s_at_proof_keys": round(build, 2),
        "proof_bytes": round(statistics.mean(sizes)),
        "proof_bytes_p99": sizes[int(len(sizes) * 0.99)],
        "proof_bytes_max": sizes[-1],
        "proof_bytes_max_every_key": every,
        "proof_every_key_s": round(every_s, 1),
        "proof_path_blocks_max": deepest,
        "absence_proof_bytes": round(statistics.mean(absent)),
        "prove_us": round(proving * 1e6, 1),
        "proof_verify_us": round(statistics.median(times) * 1e6, 1),
        "proof_verify_us_mean": round(statistics.mean(times) * 1e6, 1),
        "proof_verify_us_p99": round(times[int(len(times) * 0.99)] * 1e6, 1),
    }


def _deepest_path(store: NodeStore, root: CID) -> int:
    """The most blocks on any path from ``root`` (what the longest proof crosses)."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        cid, depth = stack.pop()
        deepest = max(deepest, depth)
        links, _ = block_parts(store.get(cid))
        stack.extend((link, depth + 1) for link in links)
    return deepest
