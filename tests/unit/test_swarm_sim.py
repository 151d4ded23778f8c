"""The replicator's decisions in a simulated swarm (bench/swarm_sim.py): scale, loss, churn, hostility."""

from __future__ import annotations

import pytest

from bench.swarm import one
from bench.swarm_sim import SimConfig, Swarm


def test_the_simulation_is_deterministic_by_seed() -> None:
    assert one(10, seed=5) == one(10, seed=5)
    assert one(10, seed=5) != one(10, seed=6)


@pytest.mark.parametrize("n", [10, 100])
def test_what_a_peer_receives_does_not_grow_with_the_swarm(n: int) -> None:
    figures = one(n)
    assert figures["sim_converge_p99_s"] <= 5
    assert figures["sim_idle_msgs_per_peer_s"] <= 0.1  # about one round's announcement per 30 s
    assert figures["sim_catchup_bytes_ratio"] <= 1.5


def test_a_newcomer_reaches_the_state_from_one_replica_when_the_writer_is_gone() -> None:
    swarm = Swarm(SimConfig(n=20, seed=2))
    swarm.seed_history(300)
    swarm.live("p0", 30, 10.0)
    swarm.stop_peer("p0")
    took, _ = swarm.newcomer("p1", links=["p1"])
    assert took < 5
    assert swarm.peers["newcomer"].held == swarm.peers["p1"].held


def test_churn_heals_every_peer_gets_every_write() -> None:
    swarm = Swarm(SimConfig(n=30, seed=3, loss=0.05))
    swarm.seed_history(50)
    for round_ in range(5):
        for name in (f"p{1 + 5 * round_}", f"p{2 + 5 * round_}"):
            swarm.stop_peer(name)
        swarm.live("p0", 10, 10.0)
        for name in (f"p{1 + 5 * round_}", f"p{2 + 5 * round_}"):
            swarm.start_peer(name)
    last = swarm.write("p0")
    assert swarm.run_while(lambda: not swarm.converged(), 2 * swarm.config.interval)
    assert swarm.holders(last) == 30


def test_a_hostile_flood_does_not_delay_honest_writes() -> None:
    calm = Swarm(SimConfig(n=50, seed=4))
    calm.seed_history(100)
    baseline = calm.live("p0", 50, 10.0)
    flooded = Swarm(SimConfig(n=50, seed=4))
    flooded.seed_history(100)
    flooded.add_peer("mallory", hostile=True)
    flooded.every(0.5, lambda: flooded.announce_garbage("mallory", 200))
    delays = flooded.live("p0", 50, 10.0)
    assert max(delays) <= 3 * max(baseline) + 0.1
    wanted = max(p.machine.wanted for p in flooded.peers.values())
    assert wanted <= flooded.policy.max_wanted * 2  # bounded, whatever mallory announces
