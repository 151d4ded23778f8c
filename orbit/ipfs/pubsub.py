"""Pubsub over a node's RPC: the topic codec, received messages, and a threaded subscription.

Kubo (≥ 0.11) encodes topics and data as multibase base64url (``u`` prefix) in URLs and answers:

>>> encode_topic("orbit")
'ub3JiaXQ'
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx

from orbit.errors import IpfsError, IpfsResponseError, IpfsTimeoutError, IpfsUnreachableError
from orbit.ipfs.transport import RpcTransport, parse_json_line

__all__ = ["PubsubMessage", "Subscription", "decode_multibase", "encode_topic", "parse_message", "topic_text"]


def encode_topic(topic: str | bytes) -> str:
    """Return a pubsub topic (or any bytes) as Kubo's RPC wants it in a URL: multibase base64url, ``u…``."""
    raw = topic.encode() if isinstance(topic, str) else topic
    return "u" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_multibase(text: str) -> bytes:
    """Decode a multibase string as Kubo's pubsub sends them (base64url ``u``; other bases too).

    Raises:
        ValueError: the text is not valid multibase.
    """
    if not text:
        raise ValueError("empty multibase string")
    prefix, body = text[0], text[1:]
    try:
        if prefix in ("u", "U"):
            if "+" in body or "/" in body:
                raise ValueError("'+' or '/' in base64url")
            return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        if prefix == "m":
            return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"bad base64 in multibase {text[:40]!r}: {e}") from e
    from multiformats import multibase

    try:
        return bytes(multibase.decode(text))
    except Exception as e:  # multiformats raises several unrelated types
        raise ValueError(f"not multibase: {text[:40]!r} ({e})") from e


@dataclass(frozen=True, slots=True)
class PubsubMessage:
    """One message received on a pubsub subscription.

    Attributes:
        sender: the peer id of the publisher (``from``), as text.
        data: the message bytes.
        seqno: the publisher's sequence number bytes.
        topics: the topics the message was published to.
    """

    sender: str
    data: bytes
    seqno: bytes
    topics: tuple[str, ...]


def topic_text(encoded: str, endpoint: str) -> str:
    """Decode a multibase topic a node answered.

    Raises:
        IpfsResponseError: it is not multibase.
    """
    try:
        return decode_multibase(encoded).decode("utf-8", "replace")
    except ValueError as e:
        raise IpfsResponseError(str(e), endpoint) from e


def parse_message(record: Any, endpoint: str) -> PubsubMessage | None:
    """Return the message a ``pubsub/sub`` record holds (None for js-ipfs's opening ``{}``).

    Raises:
        IpfsResponseError: the record is malformed.
    """
    if not isinstance(record, dict):
        raise IpfsResponseError(f"message is not an object: {str(record)[:80]!r}", endpoint)
    if not record:
        return None
    try:
        sender = record.get("from", "")
        data = decode_multibase(record["data"]) if record.get("data") else b""
        seqno = decode_multibase(record["seqno"]) if record.get("seqno") else b""
        topics = tuple(topic_text(t, endpoint) for t in record.get("topicIDs") or ())
    except (ValueError, TypeError, AttributeError) as e:
        raise IpfsResponseError(f"malformed pubsub message ({e}): {str(record)[:80]!r}", endpoint) from e
    if not isinstance(sender, str):
        raise IpfsResponseError(f"malformed pubsub sender {sender!r}", endpoint)
    return PubsubMessage(sender=sender, data=data, seqno=seqno, topics=topics)


class Subscription:
    """A pubsub subscription: iterate it, or call :meth:`next` with a timeout, from any thread.

    A background thread reads the node's stream into a bounded queue (at most ``max_queued`` messages;
    when it is full the reader waits, so a slow consumer slows the stream instead of growing memory).
    :meth:`close` ends it promptly even while the reader is blocked on the socket (it shuts the socket
    down), and wakes every waiting consumer.

    ``for message in subscription`` yields :class:`PubsubMessage` until :meth:`close` is called, and
    raises the :class:`~orbit.errors.IpfsError` that ended the stream if the node went away.

    Raises:
        IpfsPubsubDisabledError: pubsub is off on the node.
        IpfsError: the node did not accept the subscription within the client's timeout.
    """

    _END: Final = object()

    def __init__(self, rpc: RpcTransport, topic: str | bytes, *, max_queued: int = 10_000) -> None:
        self.topic = topic if isinstance(topic, str) else topic.decode("utf-8", "replace")
        self._rpc = rpc
        self._encoded = encode_topic(topic)
        self._max_queued = max_queued
        self._queue: deque[PubsubMessage] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._ended = False
        self._error: IpfsError | None = None
        self._socket: socket.socket | None = None
        self._response: httpx.Response | None = None
        self._ready = threading.Event()
        self._accepted = False
        self._thread = threading.Thread(target=self._run, name=f"pubsub-sub {self.topic[:40]}", daemon=True)
        self._thread.start()
        if not self._ready.wait(rpc.timeout + 1.0):
            self.close()
            raise IpfsTimeoutError(
                f"the subscription to {self.topic!r} was not accepted in time", "pubsub/sub"
            )
        if not self._accepted:
            self.close()
            raise self._error or IpfsResponseError("the subscription was not accepted", "pubsub/sub")

    @property
    def queued(self) -> int:
        """How many received messages wait in the queue (at most ``max_queued``)."""
        with self._cond:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the stream ended."""
        return self._closed or self._ended

    def _run(self) -> None:
        endpoint = "pubsub/sub"
        try:
            with self._rpc.call(
                endpoint, params={"arg": self._encoded}, read_timeout=self._rpc.timeout
            ) as response:
                # The headers came within the timeout; from here on the stream may be idle for any time
                # (nobody publishes), so body reads wait without one; close() shuts the socket down.
                timeouts = response.request.extensions.get("timeout")
                if isinstance(timeouts, dict):
                    timeouts["read"] = None
                self._response = response
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if isinstance(sock, socket.socket):
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                    self._socket = sock
                self._accepted = True
                self._ready.set()
                if self._closed:
                    return
                for line in self._rpc.lines(response, endpoint):
                    message = parse_message(parse_json_line(line, endpoint), endpoint)
                    if message is None:
                        continue  # js-ipfs's opening {}
                    with self._cond:
                        while len(self._queue) >= self._max_queued and not self._closed:
                            self._cond.wait(0.5)
                        if self._closed:
                            return
                        self._queue.append(message)
                        self._cond.notify_all()
                    if self._closed:
                        return
        except IpfsError as e:
            if not self._closed:
                cause = e.__cause__
                if self._accepted and isinstance(cause, (httpx.RemoteProtocolError, httpx.ReadError)):
                    e = IpfsUnreachableError(f"the node cut the subscription stream ({cause})", endpoint)
                self._error = e
        except Exception as e:  # never let the thread die silently
            if not self._closed:
                self._error = IpfsResponseError(f"subscription reader failed: {e!r}", endpoint)
        finally:
            with self._cond:
                self._ended = True
                if self._error is None and not self._closed:
                    self._error = IpfsUnreachableError("the node ended the subscription stream", endpoint)
                self._cond.notify_all()
            self._ready.set()

    def next(self, timeout: float | None = None) -> PubsubMessage | None:
        """Return the next message, or None if none arrives within ``timeout`` seconds or after close.

        Raises:
            IpfsError: the stream ended because of an error (the node went away); queued messages are
                returned first.
        """
        with self._cond:
            if not self._queue and not self._closed and not self._ended:
                self._cond.wait_for(lambda: self._queue or self._closed or self._ended, timeout)
            if self._queue:
                message = self._queue.popleft()
                self._cond.notify_all()
                return message
            if self._closed:
                return None
            if self._ended and self._error is not None:
                raise self._error
            return None

    def __iter__(self) -> Iterator[PubsubMessage]:
        while True:
            message = self.next(timeout=None)
            if message is None:
                return
            yield message

    def close(self, timeout: float = 2.0) -> None:
        """Stop the subscription: wake every consumer, end the stream; returns within ``timeout`` seconds.

        Idempotent and safe to call from any thread, including while another thread is inside
        :meth:`next` or iterating.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Subscription({self.topic!r}, closed={self.closed})"
