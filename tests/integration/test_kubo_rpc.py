"""What Kubo does that js-ipfs did not, checked against the real daemon (the ``ipfs_node`` fixtures).

``block/put`` with ``cid-codec`` (and Kubo's refusal of ``format`` with a custom ``cid-codec``), blocks
up to 2 MiB (1 MiB before Kubo 0.40), recursive pins of a 10k-entry log's head (``pin/ls <cid>``,
``pin/update``, ``block/rm`` of a pinned block refused: js-ipfs walked pinned DAGs without a visited set
and never finished), ``dag/import`` pinning only the CAR's roots, ``dag/export`` of a DAG the node
fetches from a peer, pubsub's per-peer sequence-number validator (a restarted publisher, and a
restarted subscriber, still hear each other), and ``API.Authorizations``.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ipfs_log import Log, MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import encode
from orbit.car import car_bytes, read_car
from orbit.errors import IpfsAuthError, IpfsBlockTooLargeError, IpfsHttpError
from orbit.ipfs.client import MAX_BLOCK_BYTES, KuboClient, Subscription
from tests.conftest import ALICE, WRITERS
from tests.kubo_node import KuboNode

WAIT_S = 30.0


def unique(tag: str) -> bytes:
    return encode({"tag": tag, "nonce": os.urandom(8)})


def raw_put(node: KuboNode, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(
        f"{node.api_url}/api/v0/block/put", params=params, files={"file": ("block", data)}, timeout=30
    )


@pytest.fixture
def kubo(ipfs_node: KuboNode):
    with KuboClient(ipfs_node.api_url, block_timeout=5) as client:
        yield client


def test_block_put_sends_cid_codec_and_kubo_refuses_it_beside_format(
    ipfs_node: KuboNode, kubo: KuboClient
) -> None:
    block = unique("cid-codec")
    assert kubo.block_put(block) == CID.for_block(block)  # the returned CID is checked by the client
    answer = raw_put(ipfs_node, unique("both"), **{"cid-codec": "dag-cbor", "format": "dag-cbor"})
    assert answer.status_code == 500
    assert 'unable to use "format" (deprecated) and a custom "cid-codec"' in answer.json()["Message"]
    # cid-codec=raw is Kubo's default, so it does not count as "custom": format wins
    block = unique("format wins")
    answer = raw_put(ipfs_node, block, **{"cid-codec": "raw", "format": "dag-cbor"})
    assert CID.parse(answer.json()["Key"]) == CID.for_block(block)


def kubo_version(node: KuboNode) -> tuple[int, ...]:
    """The node's release from its agent version, e.g. ``kubo/0.43.1/`` -> (0, 43, 1)."""
    assert node.agent_version is not None
    return tuple(int(part) for part in node.agent_version.split("/")[1].split("-")[0].split("."))


def test_blocks_up_to_2_mib(ipfs_node: KuboNode, kubo: KuboClient) -> None:
    block = encode({"x": os.urandom(3 << 19)})  # 1.5 MiB: over js-ipfs's 1 MiB request limit
    if kubo_version(ipfs_node) >= (0, 40):
        cid = kubo.block_put(block)
        assert kubo.block_get(cid) == block
    else:  # the limit was 1 MiB before Kubo 0.40: the node's refusal is recognised
        with pytest.raises(IpfsBlockTooLargeError, match="over 1MiB"):
            kubo.block_put(block)
    answer = raw_put(ipfs_node, os.urandom(MAX_BLOCK_BYTES + 1), **{"cid-codec": "raw"})
    assert answer.status_code == 500
    assert "allow-big-block" in answer.json()["Message"]
    with pytest.raises(IpfsBlockTooLargeError):  # refused before sending
        kubo.block_put(encode({"x": b"y" * MAX_BLOCK_BYTES}))


def test_recursive_pins_of_a_10k_entry_log(kubo: KuboClient, tmp_path: Path) -> None:
    log = Log(ALICE, MemoryBlockStore(), log_id=f"pins-10k-{os.urandom(6).hex()}", access=WRITERS)
    first = log.append({"n": 0})
    for i in range(1, 10_000):
        log.append({"n": i})
    (head,) = log.head_cids
    car = car_bytes(log.head_cids, ((e.cid, e.block) for e in log))
    started = time.monotonic()
    assert kubo.dag_import(io.BytesIO(car), timeout=120) == [head]  # pins the root: walks 10k entries
    imported_s = time.monotonic() - started
    assert kubo.pin_ls([head]) == {head: "recursive"}
    assert kubo.pin_ls([first.cid])[first.cid].startswith("indirect")  # js-ipfs never answered this
    with pytest.raises(IpfsHttpError, match="pinned"):
        kubo.block_rm([first.cid])  # a pinned block is refused
    assert kubo.block_has(first.cid)
    old = head
    new_entry = log.append({"n": 10_000})
    kubo.block_put(new_entry.block)
    started = time.monotonic()
    kubo.pin_update(old, new_entry.cid)  # pins only the difference
    updated_s = time.monotonic() - started
    pins = kubo.pin_ls([old, new_entry.cid])
    assert pins[new_entry.cid] == "recursive"
    assert pins[old].startswith("indirect")
    assert imported_s < 60
    assert updated_s < 30
    kubo.pin_rm([new_entry.cid])
    assert kubo.block_rm([first.cid]) == [first.cid]  # unpinned: removable


def test_dag_import_pins_only_the_roots(kubo: KuboClient) -> None:
    leaf, loose = unique("leaf"), unique("loose")
    leaf_cid, loose_cid = CID.for_block(leaf), CID.for_block(loose)
    root = encode({"next": [leaf_cid]})
    root_cid = CID.for_block(root)
    car = car_bytes([root_cid], [(root_cid, root), (leaf_cid, leaf), (loose_cid, loose)])
    assert kubo.dag_import(io.BytesIO(car)) == [root_cid]
    pins = kubo.pin_ls([root_cid, leaf_cid, loose_cid])
    assert pins[root_cid] == "recursive"
    assert pins[leaf_cid].startswith("indirect")
    assert loose_cid not in pins  # imported, not pinned: a GC would take it
    assert kubo.block_has(loose_cid)
    other = unique("unpinned import")
    other_cid = CID.for_block(other)
    # without pin-roots Kubo reports no roots at all (its Root records come from the pinning step)
    assert kubo.dag_import(io.BytesIO(car_bytes([other_cid], [(other_cid, other)])), pin_roots=False) == []
    assert kubo.block_has(other_cid)
    assert kubo.pin_ls([other_cid]) == {}


def test_dag_export_fetches_a_dag_held_by_a_peer(
    ipfs_node: KuboNode, ipfs_node_factory: Callable[[], KuboNode]
) -> None:
    holder = ipfs_node_factory()
    log = Log(ALICE, MemoryBlockStore(), log_id=f"export-{os.urandom(6).hex()}", access=WRITERS)
    for i in range(200):
        log.append({"n": i})
    with KuboClient(ipfs_node.api_url) as here, KuboClient(holder.api_url) as there:
        there.dag_import(io.BytesIO(car_bytes(log.head_cids, ((e.cid, e.block) for e in log))))
        here.swarm_connect(holder.swarm_address)
        out = io.BytesIO()
        here.dag_export(log.head_cids[0], out, timeout=WAIT_S, total_timeout=WAIT_S)
    roots, blocks = read_car(out.getvalue())  # every block verified against its CID
    assert roots == log.head_cids
    assert set(blocks) == {e.cid for e in log}


def _await_message(sub_next: Callable[[float], object], data: bytes) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        message = sub_next(max(0.1, deadline - time.monotonic()))
        if message is not None and getattr(message, "data", None) == data:
            return
    raise AssertionError(f"{data!r} never arrived")


def _await_topic_peer(client: KuboClient, topic: str, peer: str | None) -> None:
    deadline = time.monotonic() + WAIT_S
    while peer not in client.pubsub_peers(topic):
        assert time.monotonic() < deadline, f"{peer} never appeared on {topic}"
        time.sleep(0.05)


def test_pubsub_seqno_validator_lets_restarted_peers_through(
    ipfs_node_factory: Callable[[], KuboNode],
) -> None:
    """Since Kubo 0.40 every node drops a message whose sequence number is not above the highest it has
    seen from that peer, and keeps that number across restarts. A restarted publisher must still be heard
    (go-libp2p seeds its counter from the clock), and so must a publisher after the subscriber restarts."""
    subscriber, publisher = ipfs_node_factory(), ipfs_node_factory()
    topic = f"orbit-seqno-{os.urandom(4).hex()}"
    with KuboClient(subscriber.api_url) as a, KuboClient(publisher.api_url) as b:

        def connected_subscription() -> tuple[Subscription, Subscription]:
            b.swarm_connect(subscriber.swarm_address)
            sub = a.pubsub_sub(topic)
            b_sub = b.pubsub_sub(topic)  # the publisher joins the topic's mesh too
            _await_topic_peer(b, topic, subscriber.peer_id)
            _await_topic_peer(a, topic, publisher.peer_id)
            return sub, b_sub

        sub, b_sub = connected_subscription()
        b.pubsub_pub(topic, b"before")
        _await_message(sub.next, b"before")

        b_sub.close()
        publisher.restart()  # a fresh seqno counter, above the one the subscriber persisted
        b_sub = b.pubsub_sub(topic)
        b.swarm_connect(subscriber.swarm_address)
        _await_topic_peer(b, topic, subscriber.peer_id)
        b.pubsub_pub(topic, b"after the publisher restarted")
        _await_message(sub.next, b"after the publisher restarted")

        sub.close()
        b_sub.close()
        subscriber.kill()  # the subscriber's validator state is in its datastore
        subscriber.start()
        sub, b_sub = connected_subscription()
        b.pubsub_pub(topic, b"after the subscriber restarted")
        _await_message(sub.next, b"after the subscriber restarted")
        sub.close()
        b_sub.close()


def test_api_authorizations(tmp_path: Path) -> None:
    node = KuboNode(
        tmp_path / "repo",
        config={
            "API.Authorizations": {
                "admin": {"AuthSecret": "bearer:s3cret", "AllowedPaths": ["/api/v0"]},
                "reader": {
                    "AuthSecret": "basic:reader:pw",
                    "AllowedPaths": ["/api/v0/id", "/api/v0/block/get"],
                },
            }
        },
        auth="Bearer s3cret",
    )
    with node:
        with KuboClient(node.api_url) as anonymous, pytest.raises(IpfsAuthError):
            anonymous.id()
        with KuboClient(node.api_url, auth="Bearer wrong") as wrong, pytest.raises(IpfsAuthError):
            wrong.id()
        readable = unique("readable")
        with KuboClient(node.api_url, auth="Bearer s3cret") as admin:
            cid = admin.block_put(readable)
        with KuboClient(node.api_url, auth=("reader", "pw")) as reader:
            assert reader.id()["ID"] == node.peer_id
            assert reader.block_get(cid) == readable
            with pytest.raises(IpfsAuthError):
                reader.block_put(unique("not allowed"))
