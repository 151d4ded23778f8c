"""The transport to a node's RPC: one ``httpx.Client``, the one place where its errors become ``IpfsError``.

:class:`RpcTransport` POSTs ``/api/v0/<endpoint>`` with a timeout on every read, maps every httpx and
HTTP failure to an :class:`~orbit.errors.IpfsError` naming the endpoint (and the CID), and reads
answers with bounds on size and time: a whole body, one JSON document, or newline-delimited JSON.
"""

from __future__ import annotations

import contextlib
import json as _json
import time
from collections.abc import Iterator
from typing import Any, Final

import httpx

from orbit.errors import (
    IpfsAuthError,
    IpfsBlockTooLargeError,
    IpfsError,
    IpfsHttpError,
    IpfsPubsubDisabledError,
    IpfsResponseError,
    IpfsTimeoutError,
    IpfsUnreachableError,
    IpfsUnsupportedError,
)

__all__ = ["MAX_JSON_BYTES", "MAX_LINE_BYTES", "RpcTransport", "parse_json_line"]

MAX_JSON_BYTES: Final = 16 << 20
"""Largest single JSON answer read (``pin/ls`` of a big pin set is streamed line by line instead)."""
MAX_LINE_BYTES: Final = 4 << 20
"""Largest line of a streamed (newline-delimited JSON) answer, e.g. one pubsub message."""


class RpcTransport:
    """POST calls to one node's RPC API with bounded waits and reads; thread-safe (one connection pool).

    Args:
        base_url: the node's API URL (without ``/api/v0``).
        http: the ``httpx.Client`` to send with.
        timeout: seconds to wait for an answer (connect, each read, write).
        headers: headers sent with every call (``Authorization``).
        owns_http: close ``http`` in :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        http: httpx.Client,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
        owns_http: bool = True,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._http = http
        self._headers = dict(headers or {})
        self._owns_http = owns_http
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection pool (unless it was injected). Idempotent."""
        if not self._closed:
            self._closed = True
            if self._owns_http:
                self._http.close()

    # -- the one place where transport and HTTP errors become IpfsError ---------------------------------

    @contextlib.contextmanager
    def call(
        self,
        endpoint: str,
        *,
        params: Any = None,
        files: Any = None,
        cid: object = None,
        read_timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """POST ``/api/v0/<endpoint>`` and yield the streaming response once its status is 2xx.

        ``read_timeout`` bounds each read (default: the client's timeout).

        Raises:
            IpfsError: every failure, mapped here and only here.
        """
        if self._closed:
            raise IpfsError("the client is closed", endpoint, cid)
        read = self.timeout if read_timeout is None else read_timeout
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0), read=read)
        url = f"{self.base_url}/api/v0/{endpoint}"
        try:
            request = self._http.build_request(
                "POST", url, params=params, files=files, headers=self._headers, timeout=timeout
            )
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException as e:
            raise IpfsTimeoutError(
                f"no answer from {self.base_url} within {self.timeout:g} s ({e!r})", endpoint, cid
            ) from e
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise IpfsUnreachableError(
                f"cannot reach the daemon at {self.base_url} ({e})", endpoint, cid
            ) from e
        except httpx.HTTPError as e:
            raise IpfsError(f"request to {self.base_url} failed ({e!r})", endpoint, cid) from e
        try:
            if response.status_code >= 300:
                self._raise_status(response, endpoint, cid)
            yield response
        except httpx.TimeoutException as e:
            raise IpfsTimeoutError(f"the answer from {self.base_url} stalled ({e!r})", endpoint, cid) from e
        except (httpx.RemoteProtocolError, httpx.ReadError) as e:
            raise IpfsResponseError(f"the answer was cut off ({e})", endpoint, cid) from e
        except httpx.HTTPError as e:
            raise IpfsError(f"reading the answer failed ({e!r})", endpoint, cid) from e
        finally:
            response.close()

    def _raise_status(self, response: httpx.Response, endpoint: str, cid: object) -> None:
        body = b""
        with contextlib.suppress(httpx.HTTPError):
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > 64 << 10:
                    break
        message = body[:500].decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError):
            parsed = _json.loads(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("Message"), str):
                message = parsed["Message"]
        status = response.status_code
        lowered = message.lower()
        text = f"HTTP {status}: {message or response.reason_phrase}"
        kind: type[IpfsHttpError] = IpfsHttpError
        if status in (401, 403):
            kind = IpfsAuthError
            text += " (the daemon's API.Authorizations refused the credentials given)"
        elif status == 404 or (status in (400, 405) and "unknown command" in lowered):
            kind = IpfsUnsupportedError
        elif "pubsub" in lowered and ("not enabled" in lowered or "disabled" in lowered):
            kind = IpfsPubsubDisabledError
            text += (
                " (Kubo: set Pubsub.Enabled = true in the node's config, or run --enable-pubsub-experiment)"
            )
        elif status == 413 or "big block" in lowered or "allow-big-block" in lowered:
            raise IpfsBlockTooLargeError(text, endpoint, cid)
        raise kind(text, endpoint, cid, status=status, kubo_message=message)

    # -- bounded readers ------------------------------------------------------------------------------

    @staticmethod
    def check_deadline(deadline: float | None, endpoint: str, cid: object) -> None:
        """Raise :class:`~orbit.errors.IpfsTimeoutError` once ``deadline`` (monotonic) has passed."""
        if deadline is not None and time.monotonic() > deadline:
            raise IpfsTimeoutError("the answer is taking too long (overall time limit)", endpoint, cid)

    @classmethod
    def read_bytes(
        cls,
        response: httpx.Response,
        limit: int,
        endpoint: str,
        cid: object = None,
        deadline: float | None = None,
    ) -> bytes:
        """Read a whole answer body, at most ``limit`` bytes (and before ``deadline``).

        Raises:
            IpfsResponseError: the body is over the limit.
            IpfsTimeoutError: the deadline passed.
        """
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise IpfsResponseError(
                f"answer of {declared} bytes is over the {limit}-byte limit", endpoint, cid
            )
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise IpfsResponseError(f"answer is over the {limit}-byte limit", endpoint, cid)
            parts.append(chunk)
            cls.check_deadline(deadline, endpoint, cid)
        return b"".join(parts)

    def deadline(self, total: float | None) -> float:
        """The overall time limit of a call: ``total`` seconds, or four times the per-read timeout."""
        return time.monotonic() + (4 * self.timeout if total is None else total)

    def json(
        self,
        endpoint: str,
        *,
        params: Any = None,
        files: Any = None,
        cid: object = None,
        total: float | None = None,
    ) -> Any:
        """Call ``endpoint`` and return its answer decoded from JSON (None for an empty body).

        Raises:
            IpfsError: the call failed, the answer is over :data:`MAX_JSON_BYTES` or not JSON.
        """
        deadline = self.deadline(total)
        with self.call(endpoint, params=params, files=files, cid=cid) as response:
            body = self.read_bytes(response, MAX_JSON_BYTES, endpoint, cid, deadline)
        if not body.strip():
            return None
        try:
            return _json.loads(body)
        except ValueError as e:
            raise IpfsResponseError(f"answer is not JSON ({e}): {body[:80]!r}", endpoint, cid) from e

    @classmethod
    def lines(
        cls,
        response: httpx.Response,
        endpoint: str,
        limit: int = MAX_LINE_BYTES,
        deadline: float | None = None,
    ) -> Iterator[bytes]:
        """Yield the non-empty lines of a streamed answer, each at most ``limit`` bytes."""
        buffer = b""
        for chunk in response.iter_bytes():
            cls.check_deadline(deadline, endpoint, None)
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    break
                line, buffer = buffer[:end].strip(), buffer[end + 1 :]
                if line:
                    yield line
            if len(buffer) > limit:
                raise IpfsResponseError(f"a streamed line is over the {limit}-byte limit", endpoint)
        if buffer.strip():
            yield buffer.strip()

    def ndjson(
        self,
        endpoint: str,
        *,
        params: Any = None,
        files: Any = None,
        cid: object = None,
        total: float | None = None,
    ) -> list[Any]:
        """Call ``endpoint`` and return its newline-delimited JSON answer as a list.

        Raises:
            IpfsError: the call failed, a line is too long or not JSON.
        """
        deadline = self.deadline(total)
        with self.call(endpoint, params=params, files=files, cid=cid) as response:
            lines = list(self.lines(response, endpoint, deadline=deadline))
        return [parse_json_line(line, endpoint, cid) for line in lines]


def parse_json_line(line: bytes, endpoint: str, cid: object = None) -> Any:
    """Decode one line of a newline-delimited JSON answer.

    Raises:
        IpfsResponseError: the line is not JSON.
    """
    try:
        return _json.loads(line)
    except ValueError as e:
        raise IpfsResponseError(f"streamed line is not JSON ({e}): {line[:80]!r}", endpoint, cid) from e
