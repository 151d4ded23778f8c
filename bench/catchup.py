"""``catchup``: the ways a peer can fetch a history it lacks from another peer, side by side, on two nodes.

Node A holds ``n`` real entry blocks (imported as a CAR) and the same entries as one pack (a CAR file
added as a UnixFS file, :mod:`orbit.ipfs.packs`). Node B, connected to A and empty, fetches them:

- ``bundles_per_s``: as catch-up bundles on pubsub (what replicas sent each other before packs): A
  publishes messages of up to 512 KiB of blocks, B's subscriber receives them. A broadcast: every
  subscriber of the topic receives every bundle, so a newcomer costs the swarm N times its history.
- ``dag_export_per_s``: ``dag/export`` of the head through B (Kubo walks the DAG, fetching over bitswap
  one block at a time); stopped after ``LIMIT_S`` seconds and reported as the rate so far.
- ``block_get_per_s``: ``block/get`` of every CID through B with 16 / 64 requests in flight (the
  fetch flow of the log asks for one breadth-first frontier at a time; here all at once, a best case).
- ``pack_per_s``: ``cat`` of the pack through B (bitswap fetches the file's chunks from A many at a
  time) and every block checked against its CID while reading the CAR.

Each is a rate of entries per second; the node's version is reported.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ipfs_node
from bench.kubo import entry_blocks
from orbit.car import CarReader, car_bytes, read_car
from orbit.errors import CarError, IpfsError
from orbit.ipfs.blockstore import IpfsBlockStore
from orbit.ipfs.client import KuboClient
from orbit.replication.wire import bundle_messages

LIMIT_S = 60.0


def _bundles(a: KuboClient, b: KuboClient, blocks: list[bytes]) -> float:
    topic = f"orbit-bench-catchup-{time.monotonic_ns()}"
    messages = [m.encode() for m in bundle_messages(topic, blocks, [])]
    received = 0
    done = threading.Event()
    with b.pubsub_sub(topic) as subscription:
        deadline = time.monotonic() + 30
        while True:  # until the mesh carries messages: a warm-up message B receives
            if time.monotonic() > deadline:
                raise RuntimeError("B's subscription never received A's messages")
            if a.pubsub_peers(topic):
                a.pubsub_pub(topic, b"warm-up")
                if subscription.next(timeout=1.0) is not None:
                    break
            else:
                time.sleep(0.1)
        while subscription.next(timeout=0.5) is not None:
            pass  # further warm-ups

        def receive() -> None:
            nonlocal received
            while received < len(messages):
                message = subscription.next(timeout=LIMIT_S)
                if message is None:
                    break
                received += 1
            done.set()

        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        started = time.perf_counter()
        for message in messages:
            a.pubsub_pub(topic, message)
        done.wait(LIMIT_S)
        elapsed = time.perf_counter() - started
    if received < len(messages):
        raise RuntimeError(f"B received {received} of {len(messages)} bundles")
    return len(blocks) / elapsed


def _complete_sections(data: bytes) -> int:
    """How many whole, hash-checked blocks a (maybe cut) CAR stream holds."""
    count = 0
    with contextlib.suppress(CarError), CarReader(data) as car:
        for _ in car:
            count += 1
    return count


def run(n: int) -> dict[str, Any]:
    blocks = entry_blocks(n)
    result: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="orbit-bench-catchup-") as tmp:
        root = Path(tmp)
        made = [ipfs_node(root / f"node{i}" / "repo") for i in range(2)]
        nodes = [node for node, _ in made]
        result["node"] = made[0][1]
        for node in nodes:
            node.start()
        a = KuboClient(nodes[0].api_url, timeout=120, block_timeout=LIMIT_S)
        b = KuboClient(nodes[1].api_url, timeout=120, block_timeout=LIMIT_S)
        try:
            a.swarm_connect(nodes[1].swarm_address)
            car = car_bytes([blocks[-1][0]], blocks)
            a.dag_import(io.BytesIO(car), pin_roots=False)
            pack = a.add(io.BytesIO(car))
            head = blocks[-1][0]  # the newest entry: its next and refs reach every other

            started = time.perf_counter()
            out = io.BytesIO()
            b.cat(pack, out, max_bytes=1 << 30)
            got = read_car(out.getvalue())[1]
            assert len(got) == n
            result["pack_per_s"] = round(n / (time.perf_counter() - started))

            result["bundles_per_s"] = round(_bundles(a, b, [block for _, block in blocks]))

            for concurrency in (16, 64):
                fresh = ipfs_node(root / f"fresh{concurrency}" / "repo")[0]
                fresh.start()
                try:
                    c = KuboClient(fresh.api_url, timeout=120, block_timeout=LIMIT_S)
                    c.swarm_connect(nodes[0].swarm_address)
                    with IpfsBlockStore(c, concurrency=concurrency) as store:
                        started = time.perf_counter()
                        fetched = store.get_many([cid for cid, _ in blocks])
                        elapsed = time.perf_counter() - started
                    assert len(fetched) == n
                    result[f"block_get_{concurrency}_per_s"] = round(n / elapsed)
                    c.close()
                finally:
                    fresh.stop()

            fresh = ipfs_node(root / "fresh-export" / "repo")[0]
            fresh.start()
            try:
                c = KuboClient(fresh.api_url, timeout=LIMIT_S)
                c.swarm_connect(nodes[0].swarm_address)
                sink = io.BytesIO()
                started = time.perf_counter()
                with contextlib.suppress(IpfsError):  # stopped at the time limit: the rate so far
                    c.dag_export(head, sink, timeout=LIMIT_S, total_timeout=LIMIT_S)
                elapsed = time.perf_counter() - started
                exported = _complete_sections(sink.getvalue())
                result["dag_export_per_s"] = round(exported / elapsed)
                result["dag_export_entries"] = exported
                c.close()
            finally:
                fresh.stop()
        finally:
            a.close()
            b.close()
            for node in nodes:
                node.stop()
    return result
