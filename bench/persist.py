"""Persistence suite: durable appends, cold reopen, and peak RSS over a large stored eventlog.

- ``append_persisted_per_s``: eventlog ``add`` into the local store, one commit per add (each
  acknowledged add survives a kill of the process).
- ``reopen_ms``: a new process opens a 10k-entry eventlog and reads every value; the time is taken
  inside the child around open + read (imports excluded); median of 3 runs.
- ``rss_mb_1m``: peak RSS of a new process that opens an ``n``-entry eventlog and iterates it. The
  database is built once with batches and cached under ``$TMPDIR/orbit-bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import raw_sign_verify
from ipfs_log import Identity
from orbit import OrbitDB

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "orbit-bench"
SEED = b"bench-persist".ljust(32, b"\0")

_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from ipfs_log import Identity
from orbit import OrbitDB
t = time.perf_counter()
orbit = OrbitDB({dir!r}, identity=Identity.from_seed({seed!r}))
db = orbit.open("events", type="eventlog")
count = 0
for event in db.iter():
    count += 1
elapsed = time.perf_counter() - t
orbit.close()
# VmHWM is this process image's peak RSS. getrusage's ru_maxrss is not: Linux carries it over from the
# parent across fork and exec, so a child of the process that just built the database would report the
# builder's peak.
with open("/proc/self/status") as status:
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"ms": elapsed * 1000, "count": count, "rss_mb": rss_kb / 1024}}))
"""


def build(directory: Path, n: int, chunk: int = 10_000) -> None:
    """Create an ``n``-entry eventlog in ``directory`` (batches of ``chunk``), unless it exists."""
    done = directory / "BUILT"
    if done.exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    identity = Identity.from_seed(SEED)
    written = 0
    while written < n:
        with OrbitDB(directory, identity=identity) as orbit:
            db = orbit.open("events", type="eventlog")
            with db.batch() as batch:
                for i in range(written, min(n, written + chunk)):
                    batch.add({"i": i, "text": f"event number {i}"})
            written = min(n, written + chunk)
    done.write_text(str(n))


def child(directory: Path) -> dict[str, Any]:
    code = _CHILD.format(root=str(ROOT), dir=str(directory), seed=SEED)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def append_rate(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, OrbitDB(tmp, identity=Identity.from_seed(SEED)) as orbit:
        db = orbit.open("events", type="eventlog")
        for i in range(200):  # warm up
            db.add(i)
        t = time.perf_counter()
        for i in range(count):
            db.add({"i": i, "text": f"event number {i}"})
        return count / (time.perf_counter() - t)


def run(n: int) -> dict[str, Any]:
    sign_per_s, _ = raw_sign_verify()
    appends = max(append_rate(20_000) for _ in range(2))
    CACHE.mkdir(parents=True, exist_ok=True)
    ten_k = CACHE / "eventlog-10000"
    build(ten_k, 10_000)
    reopen = [child(ten_k) for _ in range(3)]
    assert all(r["count"] == 10_000 for r in reopen)
    big = CACHE / f"eventlog-{n}"
    t = time.perf_counter()
    build(big, n)
    build_s = time.perf_counter() - t
    iterate = child(big)
    assert iterate["count"] == n, iterate
    os.sync()
    return {
        "n": n,
        "append_persisted_per_s": round(appends, 1),
        "sign_per_s": round(sign_per_s, 1),
        "append_persisted_ratio": round(appends / sign_per_s, 4),
        "reopen_ms": round(statistics.median(r["ms"] for r in reopen), 2),
        "rss_mb_1m": round(iterate["rss_mb"], 1),
        "iterate_n_s": round(iterate["ms"] / 1000, 2),
        "build_n_s": round(build_s, 1),
    }
