"""The loop machinery both replicators share, without a node."""

from __future__ import annotations

import itertools
import threading
import time

from ipfs_log import CID, encode
from orbit.errors import IpfsError, IpfsUnreachableError
from orbit.ipfs.pubsub import PubsubMessage
from orbit.replication.loops import Backoff, PeerWatch, SubscriptionKeeper, Workers
from tests.fake_pubsub import Sub

HEADS = [CID.for_block(encode({"n": i})) for i in range(4)]


def test_backoff_doubles_up_to_its_longest_wait() -> None:
    backoff = Backoff(0.5, 3.0)
    assert list(itertools.islice(backoff.delays(), 5)) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.after(2.5) == 3.0
    assert next(Backoff(5.0, 1.0).delays()) == 5.0  # the first wait is not capped


def test_workers_join_within_one_deadline() -> None:
    release = threading.Event()
    workers = Workers()

    def hang() -> None:
        release.wait(10)

    for i in range(3):
        workers.start(f"test-worker-{i}", hang)
    started = time.monotonic()
    assert not workers.join(0.2)  # still running: the deadline holds for all three together
    assert time.monotonic() - started < 1.0
    release.set()
    assert workers.join(5.0)


def test_the_keeper_subscribes_again_after_the_stream_ends_and_stops_promptly() -> None:
    stop = threading.Event()
    opened: list[Sub] = []
    failures = [IpfsUnreachableError("node away", "pubsub/sub")]  # the first try after the end fails
    events: list[str] = []
    changed = threading.Condition()

    def note(event: str) -> None:
        with changed:
            events.append(event)
            changed.notify_all()

    def open_subscription() -> Sub:
        if len(opened) == 1 and failures:
            raise failures.pop()
        subscription = Sub("me", "t")
        opened.append(subscription)
        return subscription

    keeper = SubscriptionKeeper(
        open_subscription,
        stop,
        Backoff(0.01, 0.05),
        close_timeout=0.1,
        on_open=lambda reopened: note(f"open reopened={reopened}"),
        on_open_failed=lambda e: note("open failed"),
        on_end=lambda e: note("end"),
    )
    first = keeper.subscribe()
    read: list[bytes] = []

    def step(subscription: Sub) -> None:
        message = subscription.next(timeout=0.05)
        if message is not None:
            read.append(message.data)

    thread = threading.Thread(target=keeper.run, args=(step,), daemon=True)
    thread.start()
    first.push(PubsubMessage("peer", b"one", b"", ("t",)))
    first.fail(IpfsUnreachableError("the node ended the stream", "pubsub/sub"))
    with changed:
        assert changed.wait_for(lambda: "open reopened=True" in events, 5)
    assert events == ["end", "open failed", "open reopened=True"]
    assert first.closed
    assert keeper.current is opened[1]
    stop.set()
    keeper.close(0.1)
    thread.join(2)
    assert not thread.is_alive()
    assert opened[1].closed
    assert keeper.current is None
    assert read == [b"one"]


def test_a_keeper_stopped_before_it_subscribes_closes_what_it_opened() -> None:
    stop = threading.Event()
    opened: list[Sub] = []

    def open_subscription() -> Sub:
        stop.set()  # the owner closes while the subscription request is under way
        opened.append(Sub("me", "t"))
        return opened[-1]

    keeper = SubscriptionKeeper(open_subscription, stop, Backoff(0.01, 0.05), close_timeout=0.1)
    keeper.run(lambda subscription: None)
    assert len(opened) == 1
    assert opened[0].closed
    assert keeper.current is None


def test_peer_watch_tells_new_peers_and_none_when_the_node_fails() -> None:
    answers: list[list[str] | IpfsError] = [
        ["a"],
        ["a", "b"],
        IpfsUnreachableError("down", "pubsub/peers"),
        ["a", "b"],
        ["c"],
    ]
    errors: list[IpfsError] = []

    def list_peers() -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, IpfsError):
            raise answer
        return answer

    watch = PeerWatch(list_peers, errors.append)
    assert watch.poll() == {"a"}
    assert watch.poll() == {"b"}
    assert watch.poll() is None
    assert len(errors) == 1
    assert watch.poll() == set()  # the peers known before the failure are still known
    assert watch.poll() == {"c"}
