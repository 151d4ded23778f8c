"""Peers on separate hosts (network namespaces made by the test), each with its own Kubo node, linked
through a relay that adds 40 ms round trips with jitter, stalls and cuts links (tests/netns.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.netns import Lab
from tests.swarm_lab import churn, offline_writer, partition

pytestmark = pytest.mark.ipfs


def test_a_host_reaches_another_only_through_its_relay_link(tmp_path: Path) -> None:
    import httpx

    with Lab(tmp_path, 2) as lab:
        lab.start()
        a, b = lab.nodes
        peers = httpx.post(f"{a.api_url}/api/v0/swarm/peers", timeout=10).json()["Peers"]
        link = lab.relay.link(a.host, b.host)
        assert [(p["Peer"], p["Addr"]) for p in peers] == [(b.peer_id, link.address)]
        for direction in lab.relay.between(a.host, b.host):
            direction.down()

        def connected() -> bool:
            answer = httpx.post(f"{a.api_url}/api/v0/swarm/peers", timeout=10).json()
            return bool(answer.get("Peers"))

        assert not connected()  # cut, and no other way between the hosts


def test_five_hosts_writing_through_churn_converge(tmp_path: Path) -> None:
    measures = churn(tmp_path, hosts=5, steps=40, seed=7)
    assert measures["churn_writes"] > 10
    assert measures["churn_restarts"] >= 1


def test_a_newcomer_linked_to_one_replica_reaches_the_state_when_the_writer_is_gone(tmp_path: Path) -> None:
    measures = offline_writer(tmp_path, entries=500)
    assert measures["offline_writer_entries"] == 500


def test_a_partition_heals(tmp_path: Path) -> None:
    partition(tmp_path)
