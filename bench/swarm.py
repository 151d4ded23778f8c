"""``swarm``: how replication scales, from the replicator's own decisions in a simulated swarm.

The simulator (:mod:`bench.swarm_sim`) runs :class:`orbit.replication.machine.Machine` in every peer,
with simulated gossip (mesh degree 8, 20 ms one-way links with 10 ms jitter, 1% of link transmissions
lost) and block exchange. For N = 10, 100 and ``n`` (1,000 by default) peers, all holding the same
history of 2,000 entries:

- ``sim_converge_p99_s``: one writer writes 100 entries at 10 per second; the time from each write to
  the last peer that admits it, 99th percentile;
- ``sim_idle_msgs_per_peer_s``: then 10 anti-entropy intervals (30 s each) with no writes: the
  messages each peer receives per second, on average;
- ``sim_catchup_bytes_ratio``: a newcomer joins; the bytes the whole swarm sends because of it (greetings
  to and from it, the blocks it fetches, its want-lists, its own announcements) over the bytes of the
  entries it lacks; and ``sim_catchup_s``, the simulated seconds it takes;
- ``sim_hostile_converge_p99_s``: the live run again at N = 100 while a hostile peer announces 200
  unresolvable heads every second.

Each figure is suffixed with its N (the N = ``n`` figures also without a suffix). Deterministic: seed 1.

Then the real half, on Kubo nodes in network namespaces behind the relay of ``tests/netns.py`` (40 ms
round trips with jitter; needs root and ``ip``), from the scenarios of ``tests/swarm_lab.py``:

- ``churn_converge_s``: five hosts all writing one keyvalue database for 120 steps while links stall and
  are cut and nodes and OrbitDB instances restart at random: from the last restart until every peer holds
  every acknowledged write;
- ``offline_writer_newcomer_s``: a writer writes 5,000 entries, two replicas copy them, the writer and
  its node go away; a newcomer linked to one replica only opens the database by address: until it holds
  the whole state.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.swarm_sim import SimConfig, Swarm
from tests.swarm_lab import churn, offline_writer

HISTORY = 2_000


def _p99(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.99) - 1)]


def one(n: int, *, seed: int = 1) -> dict[str, float]:
    """The figures at ``n`` peers."""
    swarm = Swarm(SimConfig(n=n, seed=seed))
    swarm.seed_history(HISTORY)
    converge = swarm.live("p0", 100, 10.0)
    swarm.run_until(swarm.now + 60)
    idle = swarm.idle(10 * swarm.config.interval)
    took, ratio = swarm.newcomer("p0")
    return {
        "sim_converge_p99_s": _p99(converge),
        "sim_idle_msgs_per_peer_s": idle,
        "sim_catchup_bytes_ratio": ratio,
        "sim_catchup_s": took,
    }


def hostile(n: int, *, seed: int = 1) -> float:
    """The live run's p99 while a hostile peer announces 200 unresolvable heads every second."""
    swarm = Swarm(SimConfig(n=n, seed=seed))
    swarm.seed_history(HISTORY)
    swarm.add_peer("mallory", hostile=True)
    swarm.every(1.0, lambda: swarm.announce_garbage("mallory", 200))
    return _p99(swarm.live("p0", 100, 10.0))


def run(n: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for size in sorted({10, 100, n}):
        for key, value in one(size).items():
            result[f"{key}_{size}"] = value
            if size == n:
                result[key] = value
    result["sim_hostile_converge_p99_s_100"] = hostile(100)
    result["sim_peers"] = n
    with tempfile.TemporaryDirectory() as root:
        result.update(churn(Path(root) / "churn", steps=120))
        result.update(offline_writer(Path(root) / "offline", entries=5_000))
    return result
