"""KuboClient against Kubo's documented behaviour (tests/fake_kubo.py over httpx.MockTransport).

These cover what the real node here (js-ipfs) does differently or cannot be made to do: Kubo's
``cid-codec`` path and its refusal of ``format`` + ``cid-codec``, auth failures, a daemon that is down or
slow, Kubo's JSON errors, a block that never arrives, bytes that do not hash to their CID, truncated and
malformed answers, oversized blocks and answers, pubsub switched off.
"""

from __future__ import annotations

import base64
import socket
import threading
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log.cid import CID
from ipfs_log.codec import encode
from ipfs_log.errors import BlockNotFoundError, OrbitError
from orbit.errors import (
    IpfsAddressError,
    IpfsAuthError,
    IpfsBlockMismatchError,
    IpfsBlockTooLargeError,
    IpfsBlockUnavailableError,
    IpfsError,
    IpfsHttpError,
    IpfsPubsubDisabledError,
    IpfsResponseError,
    IpfsTimeoutError,
    IpfsUnreachableError,
    IpfsUnsupportedError,
)
from orbit.ipfs.client import (
    MAX_BLOCK_BYTES,
    KuboClient,
    api_url,
    decode_multibase,
    encode_topic,
    verify_block,
)
from tests.fake_kubo import FakeKubo, mock_client

BLOCK = encode({"hello": "kubo"})
CID_ = CID.for_block(BLOCK)


@pytest.fixture
def fake() -> FakeKubo:
    return FakeKubo()


@pytest.fixture
def kubo(fake: FakeKubo) -> KuboClient:
    return mock_client(fake)


# -- addresses --


@pytest.mark.parametrize(
    ("given_api", "url"),
    [
        ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
        ("/ip4/10.0.0.2/tcp/5002/http", "http://10.0.0.2:5002"),
        ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
        ("/dns4/ipfs.example/tcp/443/https", "https://ipfs.example:443"),
        ("http://127.0.0.1:5001/", "http://127.0.0.1:5001"),
        ("http://127.0.0.1:5001/api/v0", "http://127.0.0.1:5001"),
        ("https://node.example/ipfs-api/", "https://node.example/ipfs-api"),
        ("localhost:5003", "http://localhost:5003"),
    ],
)
def test_api_address_forms(given_api: str, url: str) -> None:
    assert api_url(given_api) == url


@pytest.mark.parametrize(
    "bad", ["/ip4/127.0.0.1/udp/5001", "/unix/tmp/sock", "/ip4/1.2.3.4", "ftp://x:1", "http://"]
)
def test_bad_api_addresses_are_refused(bad: str) -> None:
    with pytest.raises(IpfsAddressError):
        api_url(bad)


def test_api_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.1/tcp/5999")
    assert KuboClient().base_url == "http://127.0.0.1:5999"
    monkeypatch.delenv("IPFS_API")
    assert KuboClient().base_url == "http://127.0.0.1:5001"
    assert KuboClient("/ip4/127.0.0.1/tcp/6000").base_url == "http://127.0.0.1:6000"


def test_injected_client_keeps_its_base_url(fake: FakeKubo) -> None:
    http = httpx.Client(base_url="http://kubo.injected:5001", transport=httpx.MockTransport(fake))
    kubo = KuboClient(client=http)
    assert kubo.base_url == "http://kubo.injected:5001"
    assert kubo.id()["ID"] == "12D3KooWFake"
    kubo.close()
    assert not http.is_closed  # an injected client belongs to the caller


# -- block/put: capability detection, never both parameters, always check the CID


def test_put_uses_kubo_cid_codec_and_remembers_it(fake: FakeKubo, kubo: KuboClient) -> None:
    assert kubo.block_put(BLOCK) == CID_
    other = encode({"second": 2})
    assert kubo.block_put(other) == CID.for_block(other)
    puts = [params for endpoint, params in fake.calls if endpoint == "block/put"]
    assert len(puts) == 2  # the first answer was right: no fallback request
    for params in puts:
        assert params["cid-codec"] == ["dag-cbor"]
        assert params["mhtype"] == ["sha2-256"]
        assert "format" not in params  # never both: Kubo refuses that


def test_put_falls_back_to_format_when_cid_codec_is_ignored(fake: FakeKubo, kubo: KuboClient) -> None:
    fake.ignore_cid_codec = True  # js-ipfs: answers a Qm… CID for cid-codec
    assert kubo.block_put(BLOCK) == CID_
    assert kubo.block_put(encode([1])) == CID.for_block(encode([1]))
    puts = [params for endpoint, params in fake.calls if endpoint == "block/put"]
    assert [("cid-codec" in p, "format" in p) for p in puts] == [(True, False), (False, True), (False, True)]


def test_put_with_a_node_that_stores_under_another_cid_is_not_acknowledged(
    kubo: KuboClient, fake: FakeKubo
) -> None:
    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Key": str(CID.for_block(b"other")), "Size": 1})

    liar = KuboClient("http://kubo.test", transport=httpx.MockTransport(wrong))
    with pytest.raises(IpfsBlockMismatchError, match="another CID") as info:
        liar.block_put(BLOCK)
    assert info.value.cid == CID_
    assert info.value.endpoint == "block/put"


def test_put_checks_a_given_cid_against_the_block(kubo: KuboClient, fake: FakeKubo) -> None:
    with pytest.raises(IpfsBlockMismatchError):
        kubo.block_put(BLOCK, CID.for_block(b"something else"))
    assert not fake.calls


def test_put_over_2_mib_is_refused_before_sending(kubo: KuboClient, fake: FakeKubo) -> None:
    big = b"\x00" * (MAX_BLOCK_BYTES + 1)
    with pytest.raises(IpfsBlockTooLargeError, match="2097152"):
        kubo.block_put(big, CID.for_block(big))
    assert not fake.calls


def test_put_refused_by_kubo_for_its_size_is_block_too_large(kubo: KuboClient) -> None:
    block = encode({"x": b"y" * (1 << 20)})  # over Kubo's 1 MiB soft limit, under 2 MiB
    with pytest.raises(IpfsBlockTooLargeError, match="allow-big-block"):
        kubo.block_put(block)


def test_http_413_is_block_too_large() -> None:
    kubo = KuboClient(
        "http://x", transport=httpx.MockTransport(lambda r: httpx.Response(413, text="too large"))
    )
    with pytest.raises(IpfsBlockTooLargeError):
        kubo.block_put(BLOCK)


# -- block/get: always a timeout, always verified --


def test_get_sends_a_timeout_and_verifies(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.blocks[CID_] = BLOCK
    assert kubo.block_get(CID_, timeout=2.5) == BLOCK
    endpoint, params = fake.calls[-1]
    assert endpoint == "block/get"
    assert params["timeout"] == ["2500ms"]
    assert kubo.block_get(CID_) == BLOCK
    assert fake.calls[-1][1]["timeout"] == ["10000ms"]  # the default block_timeout


def test_block_that_never_arrives_is_block_not_found(kubo: KuboClient) -> None:
    with pytest.raises(IpfsBlockUnavailableError, match="deadline exceeded") as info:
        kubo.block_get(CID_, timeout=0.1)
    assert isinstance(info.value, BlockNotFoundError)
    assert isinstance(info.value, KeyError)
    assert info.value.cid == CID_
    assert str(CID_) in str(info.value)


def test_bytes_that_do_not_hash_to_the_cid_are_rejected(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.blocks[CID_] = BLOCK
    fake.corrupt.add(CID_)
    with pytest.raises(IpfsBlockMismatchError, match="do not hash") as info:
        kubo.block_get(CID_)
    assert info.value.cid == CID_


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=64))
def test_verify_block_accepts_only_the_hashed_bytes(block: bytes, other: bytes) -> None:
    cid = CID.for_block(block)
    assert verify_block(cid, block) == block
    if other != block:
        with pytest.raises(IpfsBlockMismatchError):
            verify_block(cid, other)


def test_verify_block_refuses_unknown_hash_functions() -> None:
    blake3 = CID(b"\x01\x71\x1e\x20" + b"\x00" * 32)
    with pytest.raises(IpfsBlockMismatchError, match="cannot verify"):
        verify_block(blake3, b"")


def test_oversized_block_answer_is_refused() -> None:
    kubo = KuboClient(
        "http://x",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * (MAX_BLOCK_BYTES + 1))),
    )
    with pytest.raises(IpfsResponseError, match="limit"):
        kubo.block_get(CID_)


def test_stat_and_has(kubo: KuboClient, fake: FakeKubo) -> None:
    assert not kubo.block_has(CID_)
    fake.blocks[CID_] = BLOCK
    assert kubo.block_has(CID_)
    assert fake.calls[-1][1]["offline"] == ["true"]
    assert kubo.block_stat(CID_) == len(BLOCK)  # answered in base58btc: compared decoded


# -- transport and HTTP failures: one clear error each, naming the endpoint --


def test_daemon_down(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.down = True
    with pytest.raises(
        IpfsUnreachableError, match=r"IPFS block/put .*cannot reach the daemon at http://kubo.test:5001"
    ):
        kubo.block_put(BLOCK)


def test_daemon_down_for_real() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubo = KuboClient(f"/ip4/127.0.0.1/tcp/{port}", timeout=5)
    with pytest.raises(IpfsUnreachableError, match=r"IPFS id: cannot reach"):
        kubo.id()


def test_daemon_slow(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.slow = True
    with pytest.raises(IpfsTimeoutError, match=r"IPFS version: no answer"):
        kubo.version()


def test_daemon_that_accepts_but_never_answers_times_out() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        kubo = KuboClient(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(IpfsTimeoutError, match=r"IPFS id"):
            kubo.id()
        assert time.monotonic() - started < 5
        kubo.close()


def test_kubo_json_error_carries_its_message(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.put_failures = 1
    with pytest.raises(
        IpfsHttpError, match=r"IPFS block/put .*HTTP 500: failed to put block: disk full"
    ) as info:
        kubo.block_put(BLOCK)
    assert info.value.status == 500
    assert info.value.kubo_message == "failed to put block: disk full"
    assert info.value.cid == CID_


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refused(status: int) -> None:
    kubo = KuboClient(
        "http://x", transport=httpx.MockTransport(lambda r: httpx.Response(status, text="Forbidden"))
    )
    with pytest.raises(IpfsAuthError, match=rf"IPFS pin/ls: HTTP {status}.*API.Authorizations"):
        kubo.pin_ls()


def test_auth_header_is_sent(fake: FakeKubo) -> None:
    fake.token = "Bearer s3cret"
    assert mock_client(fake, auth="Bearer s3cret").id()["ID"]
    with pytest.raises(IpfsAuthError):
        mock_client(fake).id()
    fake.token = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert mock_client(fake, auth=("alice", "pw")).version()["Version"] == "0.42.0"


@pytest.mark.parametrize(
    "body",
    [b'{"Key": "bafy', b"not json at all", b"[]", b'{"Key": 42}', b'{"Key": "not-a-cid"}', b"\xff\xfe"],
)
def test_malformed_put_answers(kubo: KuboClient, fake: FakeKubo, body: bytes) -> None:
    fake.malformed["block/put"] = body
    with pytest.raises(IpfsResponseError) as info:
        kubo.block_put(BLOCK)
    assert info.value.endpoint == "block/put"


def test_truncated_answer(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.blocks[CID_] = BLOCK
    fake.truncate.add("pin/ls")
    fake.pins[CID_] = "recursive"
    with pytest.raises(IpfsResponseError, match=r"IPFS pin/ls: the answer was cut off"):
        kubo.pin_ls()


def test_unknown_endpoint_is_unsupported(kubo: KuboClient) -> None:
    with pytest.raises(IpfsUnsupportedError):
        kubo.rpc.json("no/such/command")


def test_every_failure_is_an_orbit_error(fake: FakeKubo) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("garbled", request=request)

    with pytest.raises(IpfsError) as info:
        KuboClient("http://x", transport=httpx.MockTransport(boom)).id()
    assert isinstance(info.value, OrbitError)


def test_closed_client_refuses_calls(kubo: KuboClient) -> None:
    kubo.close()
    with pytest.raises(IpfsError, match="closed"):
        kubo.id()


# -- pins --


def test_pins(kubo: KuboClient, fake: FakeKubo) -> None:
    kubo.block_put(BLOCK)
    assert kubo.pin_add([CID_]) == [CID_]
    assert kubo.pin_ls() == {CID_: "recursive"}
    assert kubo.pin_ls([CID_, CID.for_block(b"nope")]) == {CID_: "recursive"}
    assert kubo.pin_rm([CID_]) == [CID_]
    assert kubo.pin_ls() == {}
    with pytest.raises(IpfsHttpError, match="not pinned"):
        kubo.pin_rm([CID_])


def test_pin_update_where_the_node_has_it(kubo: KuboClient, fake: FakeKubo) -> None:
    new = encode({"new": 1})
    kubo.block_put(BLOCK)
    kubo.block_put(new)
    kubo.pin_add([CID_])
    kubo.pin_update(CID_, CID.for_block(new))
    assert fake.pins == {CID.for_block(new): "recursive"}
    assert "pin/update" in fake.endpoints()
    assert "pin/rm" not in fake.endpoints()


def test_pin_update_falls_back_and_remembers(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.has_pin_update = False
    blocks = [encode({"n": i}) for i in range(3)]
    for block in blocks:
        kubo.block_put(block)
    cids = [CID.for_block(b) for b in blocks]
    kubo.pin_add([cids[0]])
    kubo.pin_update(cids[0], cids[1])
    kubo.pin_update(cids[1], cids[2])
    assert fake.pins == {cids[2]: "recursive"}
    assert fake.endpoints().count("pin/update") == 1


# -- pubsub --


@given(st.binary(max_size=200))
def test_multibase_topic_round_trip(raw: bytes) -> None:
    encoded = encode_topic(raw)
    assert encoded.startswith("u")
    assert "=" not in encoded
    assert "+" not in encoded
    assert "/" not in encoded
    assert decode_multibase(encoded) == raw


@given(st.text(max_size=50))
def test_text_topics_round_trip(topic: str) -> None:
    assert decode_multibase(encode_topic(topic)).decode() == topic


@pytest.mark.parametrize("bad", ["", "u!!!", "?abc", "zIl0O"])
def test_bad_multibase_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_multibase(bad)


def test_pubsub_disabled_names_the_setting(kubo: KuboClient, fake: FakeKubo) -> None:
    fake.pubsub_enabled = False
    with pytest.raises(IpfsPubsubDisabledError, match=r"Pubsub.Enabled"):
        kubo.pubsub_pub("t", b"x")
    with pytest.raises(IpfsPubsubDisabledError, match=r"IPFS pubsub/sub"):
        kubo.pubsub_sub("t")


def test_pubsub_calls_encode_topics(kubo: KuboClient, fake: FakeKubo) -> None:
    kubo.pubsub_pub("orbit", b"data")
    assert fake.calls[-1] == ("pubsub/pub", {"arg": ["ub3JiaXQ"]})
    assert kubo.pubsub_ls() == ["orbit"]
    assert kubo.pubsub_peers("orbit") == ["12D3KooWPeer"]
    with pytest.raises(ValueError, match="empty"):
        kubo.pubsub_pub("orbit", b"")


def test_subscription_decodes_messages_then_reports_the_end(kubo: KuboClient) -> None:
    sub = kubo.pubsub_sub("orbit")
    got = [sub.next(timeout=5) for _ in range(3)]
    assert [m.data for m in got if m] == [b"message 0", b"message 1", b"message 2"]
    assert all(m is not None and m.topics == ("orbit",) and m.sender == "12D3KooWPeer" for m in got)
    with pytest.raises(IpfsUnreachableError, match="ended"):  # the fake's stream ends: the node went away
        sub.next(timeout=5)
    sub.close()
    assert sub.next(timeout=0) is None
    assert sub.closed


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",
        b'{"from": "p", "data": "u!!"}',
        b'{"from": 7, "data": "uYQ"}',
        b'{"data": "uYQ", "topicIDs": 5}',
        b"{",
    ],
)
def test_malformed_pubsub_messages_end_the_stream_with_a_clear_error(line: bytes) -> None:
    kubo = KuboClient(
        "http://x",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"{}\n" + line + b"\n")),
    )
    sub = kubo.pubsub_sub("t")
    with pytest.raises(IpfsError, match="pubsub/sub"):
        sub.next(timeout=5)


def test_subscription_iteration_stops_on_close_from_another_thread() -> None:
    release = threading.Event()

    class Slow(httpx.SyncByteStream):
        def __iter__(self):
            yield b"{}\n"
            release.wait(5)

    kubo = KuboClient("http://x", transport=httpx.MockTransport(lambda r: httpx.Response(200, stream=Slow())))
    sub = kubo.pubsub_sub("t")
    received: list[object] = []
    consumer = threading.Thread(target=lambda: received.extend(sub))
    consumer.start()
    started = time.monotonic()
    sub.close(timeout=0.2)
    consumer.join(2)
    assert not consumer.is_alive()
    assert received == []
    assert time.monotonic() - started < 2
    release.set()


def test_subscription_queue_is_bounded() -> None:
    lines = b"".join(
        b'{"from": "p", "data": "u' + base64.urlsafe_b64encode(bytes([i])).rstrip(b"=") + b'"}\n'
        for i in range(20)
    )
    kubo = KuboClient("http://x", transport=httpx.MockTransport(lambda r: httpx.Response(200, content=lines)))
    sub = kubo.pubsub_sub("t", max_queued=5)
    deadline = time.monotonic() + 5
    while sub.queued < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sub.queued == 5  # the reader waits for the consumer
    assert [sub.next(timeout=5).data for _ in range(20)] == [bytes([i]) for i in range(20)]  # type: ignore[union-attr]
    sub.close()
