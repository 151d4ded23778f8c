r"""A synchronous client for the Kubo HTTP RPC API (``POST /api/v0/<command>``), over one ``httpx.Client``.

Written against Kubo's documented RPC and tested against js-ipfs 0.66.1, which serves the same API.
There is no version gate: where implementations differ the client detects what works and remembers it
(``block/put`` sends Kubo's ``cid-codec`` and falls back to the older ``format`` that js-ipfs honours,
always checking the CID the node returns; ``pin/update`` falls back to ``pin/add`` + ``pin/rm``).

Nothing that comes back is trusted: every block is hashed and checked against the CID asked for before
it is returned, answers are size-bounded, CIDs are compared decoded (nodes answer in varying multibases),
and every call has a timeout (``block/get`` also sends the node a ``timeout=``, without which a missing
block hangs forever). Every failure is an :class:`~orbit.errors.IpfsError` naming the endpoint (and the
CID); the mapping from httpx and HTTP errors is in one place, :meth:`KuboClient._call`.

The API address is, in order: the ``api`` argument, ``$IPFS_API``, ``http://127.0.0.1:5001``; a URL or a
multiaddr such as ``/ip4/127.0.0.1/tcp/5001``:

>>> api_url("/ip4/127.0.0.1/tcp/5001")
'http://127.0.0.1:5001'
>>> api_url("localhost:5002")
'http://localhost:5002'

Pubsub (Kubo ≥ 0.11 encodes topics and data as multibase base64url; ``u`` prefix):

>>> encode_topic("orbit")
'ub3JiaXQ'
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

import httpx

from ipfs_log.cid import CID, DAG_CBOR, DAG_PB, RAW, SHA2_256, read_uvarint
from ipfs_log.errors import CodecError
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

__all__ = [
    "DEFAULT_API",
    "MAX_BLOCK_BYTES",
    "KuboClient",
    "PubsubMessage",
    "Subscription",
    "api_url",
    "decode_multibase",
    "encode_topic",
    "verify_block",
]

DEFAULT_API: Final = "http://127.0.0.1:5001"
MAX_BLOCK_BYTES: Final = 2 << 20
"""Largest block sent or accepted: 2 MiB, the bitswap limit (Kubo refuses bigger without allow-big-block)."""
MAX_JSON_BYTES: Final = 16 << 20
"""Largest single JSON answer read (``pin/ls`` of a big pin set is streamed line by line instead)."""
MAX_LINE_BYTES: Final = 4 << 20
"""Largest line of a streamed (newline-delimited JSON) answer, e.g. one pubsub message."""

_CODEC_NAMES: Final = {DAG_CBOR: "dag-cbor", RAW: "raw", DAG_PB: "dag-pb", 0x0129: "dag-json"}
_SHA2_512: Final = 0x13
_IDENTITY: Final = 0x00
_PUT_MODES: Final = ("cid-codec", "format")


def api_url(api: str | None = None) -> str:
    """Return the RPC base URL for ``api`` (a URL, ``host:port`` or multiaddr), ``$IPFS_API`` or the default.

    Raises:
        IpfsAddressError: the address is not understood.
    """
    text = (api if api is not None else os.environ.get("IPFS_API") or DEFAULT_API).strip()
    if text.startswith("/"):
        return _multiaddr_url(text)
    if "://" not in text:
        text = "http://" + text
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as e:
        raise IpfsAddressError(f"not a URL or multiaddr: {text!r} ({e})") from e
    if url.scheme not in ("http", "https") or not url.host:
        raise IpfsAddressError(f"not an http(s) URL with a host: {text!r}")
    path = url.path.rstrip("/")
    path = path.removesuffix("/api/v0")
    return str(url.copy_with(path=path or "/", query=None, fragment=None)).rstrip("/")


def _multiaddr_url(text: str) -> str:
    parts = text.strip("/").split("/")
    scheme = "http"
    if parts and parts[-1] in ("http", "https"):
        scheme = parts.pop()
    if len(parts) != 4 or parts[2] != "tcp" or not parts[3].isdigit():
        raise IpfsAddressError(
            f"unsupported multiaddr {text!r}: expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>"
        )
    proto, host, _, port = parts
    if proto == "ip6":
        host = f"[{host}]"
    elif proto not in ("ip4", "dns", "dns4", "dns6"):
        raise IpfsAddressError(f"unsupported multiaddr protocol {proto!r} in {text!r}")
    return f"{scheme}://{host}:{port}"


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


def verify_block(cid: CID, block: bytes, endpoint: str = "block/get") -> bytes:
    """Return ``block`` if it hashes to ``cid``.

    Raises:
        IpfsBlockMismatchError: it does not, or the CID's hash function is not one orbit can check
            (sha2-256, sha2-512, identity).
    """
    try:
        code = cid.hash_code
        digest = cid.digest
    except CodecError as e:
        raise IpfsBlockMismatchError(f"malformed CID: {e}", endpoint, cid) from e
    if code == SHA2_256:
        ok = hashlib.sha256(block).digest() == digest
    elif code == _SHA2_512:
        ok = hashlib.sha512(block).digest() == digest
    elif code == _IDENTITY:
        ok = block == digest
    else:
        raise IpfsBlockMismatchError(f"cannot verify hash function {code:#x}", endpoint, cid)
    if not ok:
        raise IpfsBlockMismatchError(
            f"the node returned {len(block)} bytes that do not hash to the CID", endpoint, cid
        )
    return block


def _codec_of(cid: CID) -> int:
    if cid.version == 0:
        return DAG_PB
    _, pos = read_uvarint(cid, 0)
    return read_uvarint(cid, pos)[0]


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


class KuboClient:
    """A client for the Kubo HTTP RPC API; thread-safe, one connection pool.

    Args:
        api: the API address: URL, ``host:port`` or multiaddr (default ``$IPFS_API``, else
            ``http://127.0.0.1:5001``).
        auth: an ``Authorization`` header value (``"Bearer …"``, ``"Basic …"``), or ``(user, password)``
            for basic auth, for daemons that set ``API.Authorizations``.
        timeout: seconds to wait for an answer (connect, each read, write) on ordinary calls.
        block_timeout: seconds the node may spend finding a block (sent as ``timeout=`` on block reads;
            a block nobody serves in that time raises :class:`~orbit.errors.IpfsBlockUnavailableError`).
        client: an ``httpx.Client`` to use instead of a new one (tests pass one over
            ``httpx.MockTransport``); its ``base_url`` is used when ``api`` is not given and it has one.
        transport: an httpx transport for a new client (ignored with ``client``).
        max_connections: the size of the connection pool (concurrent calls share it).

    Raises:
        IpfsAddressError: the API address is not understood.
    """

    def __init__(
        self,
        api: str | None = None,
        *,
        auth: str | tuple[str, str] | None = None,
        timeout: float = 30.0,
        block_timeout: float = 10.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 64,
    ) -> None:
        if api is None and client is not None and str(client.base_url):
            self.base_url = str(client.base_url).rstrip("/").removesuffix("/api/v0")
        else:
            self.base_url = api_url(api)
        self.timeout = timeout
        self.block_timeout = block_timeout
        self._owns_client = client is None
        headers: dict[str, str] = {}
        if isinstance(auth, tuple):
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        elif auth:
            headers["Authorization"] = auth
        self._headers = headers
        self._http = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._put_mode: str | None = None  # "cid-codec" (Kubo) or "format" (js-ipfs), once known
        self._has_pin_update: bool | None = None
        self._closed = False

    # -- the one place where transport and HTTP errors become IpfsError ---------------------------------

    @contextlib.contextmanager
    def _call(
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
            parsed = json.loads(body)
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
    def _check_deadline(deadline: float | None, endpoint: str, cid: object) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise IpfsTimeoutError("the answer is taking too long (overall time limit)", endpoint, cid)

    @classmethod
    def _read_bytes(
        cls,
        response: httpx.Response,
        limit: int,
        endpoint: str,
        cid: object = None,
        deadline: float | None = None,
    ) -> bytes:
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
            cls._check_deadline(deadline, endpoint, cid)
        return b"".join(parts)

    def _deadline(self, total: float | None) -> float:
        """The overall time limit of a call: ``total`` seconds, or four times the per-read timeout."""
        return time.monotonic() + (4 * self.timeout if total is None else total)

    def _json(
        self,
        endpoint: str,
        *,
        params: Any = None,
        files: Any = None,
        cid: object = None,
        total: float | None = None,
    ) -> Any:
        deadline = self._deadline(total)
        with self._call(endpoint, params=params, files=files, cid=cid) as response:
            body = self._read_bytes(response, MAX_JSON_BYTES, endpoint, cid, deadline)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError as e:
            raise IpfsResponseError(f"answer is not JSON ({e}): {body[:80]!r}", endpoint, cid) from e

    @classmethod
    def _lines(
        cls,
        response: httpx.Response,
        endpoint: str,
        limit: int = MAX_LINE_BYTES,
        deadline: float | None = None,
    ) -> Iterator[bytes]:
        """Yield the non-empty lines of a streamed answer, each at most ``limit`` bytes."""
        buffer = b""
        for chunk in response.iter_bytes():
            cls._check_deadline(deadline, endpoint, None)
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

    def _ndjson(
        self,
        endpoint: str,
        *,
        params: Any = None,
        files: Any = None,
        cid: object = None,
        total: float | None = None,
    ) -> list[Any]:
        deadline = self._deadline(total)
        with self._call(endpoint, params=params, files=files, cid=cid) as response:
            lines = list(self._lines(response, endpoint, deadline=deadline))
        return [_loads(line, endpoint, cid) for line in lines]

    # -- node ---------------------------------------------------------------------------------------------

    def id(self) -> dict[str, Any]:
        """Return the node's identity: ``ID`` (peer id), ``Addresses``, ``AgentVersion``, ….

        Raises:
            IpfsError: the call failed or the answer has no ``ID``.
        """
        return self._record("id", "ID")

    def version(self) -> dict[str, Any]:
        """Return the node's version record (``Version``, …). Informational only: nothing is gated on it.

        Raises:
            IpfsError: the call failed or the answer has no ``Version``.
        """
        return self._record("version", "Version")

    def _record(self, endpoint: str, field: str) -> dict[str, Any]:
        """The JSON object ``endpoint`` answers, which must hold the text field ``field``."""
        answer = self._json(endpoint)
        if not isinstance(answer, dict) or not isinstance(answer.get(field), str):
            raise IpfsResponseError(f"no {field} in {str(answer)[:80]!r}", endpoint)
        return answer

    # -- blocks -------------------------------------------------------------------------------------------

    def block_put(self, block: bytes, cid: CID | None = None, *, pin: bool = False) -> CID:
        """Store ``block`` on the node and return its CID, checked against the CID computed here.

        ``cid`` defaults to the CIDv1 dag-cbor sha2-256 CID of the block; other codecs (raw, dag-pb,
        dag-json) are sent as the CID says. The first call finds out whether the node honours
        ``cid-codec`` (Kubo) or only ``format`` (js-ipfs); never both in one request (Kubo refuses that).

        Raises:
            IpfsBlockTooLargeError: the block is over 2 MiB (nothing is sent), or the node refused its size.
            IpfsBlockMismatchError: the node stored it under another CID with either parameter, or the
                given CID does not match the block.
            IpfsError: the call failed.
        """
        if len(block) > MAX_BLOCK_BYTES:
            raise IpfsBlockTooLargeError(
                f"block of {len(block)} bytes is over the {MAX_BLOCK_BYTES}-byte bitswap limit",
                "block/put",
                cid,
            )
        if cid is None:
            cid = CID.for_block(block)
        else:
            verify_block(cid, block, "block/put")
        if cid.hash_code != SHA2_256:
            raise IpfsBlockMismatchError("only sha2-256 blocks can be put", "block/put", cid)
        try:
            codec = _CODEC_NAMES[_codec_of(cid)]
        except KeyError:
            raise IpfsBlockMismatchError("unsupported codec for block/put", "block/put", cid) from None
        modes = (self._put_mode,) if self._put_mode else _PUT_MODES
        returned: list[str] = []
        for mode in modes:
            params = {mode: codec, "mhtype": "sha2-256", "pin": "true" if pin else "false"}
            if cid.version == 0:
                params = {"format": "v0", "mhtype": "sha2-256", "pin": params["pin"]}
            try:
                answer = self._json("block/put", params=params, files={"file": ("block", block)}, cid=cid)
            except IpfsHttpError as e:
                if (
                    mode == "cid-codec"
                    and self._put_mode is None
                    and e.status in (400, 500)
                    and "cid-codec" in e.kubo_message
                ):
                    continue  # a node that does not know the parameter: try the old one
                raise
            key = answer.get("Key") if isinstance(answer, dict) else None
            if not isinstance(key, str):
                raise IpfsResponseError(f"no Key in {str(answer)[:80]!r}", "block/put", cid)
            try:
                got = CID.parse(key)
            except CodecError as e:
                raise IpfsResponseError(f"Key {key!r} is not a CID", "block/put", cid) from e
            if got == cid:
                self._put_mode = mode
                return cid
            returned.append(f"{mode}: {key}")
        raise IpfsBlockMismatchError(
            f"the node stored the block under another CID ({'; '.join(returned)})", "block/put", cid
        )

    def block_get(self, cid: CID, *, timeout: float | None = None) -> bytes:
        """Return the block's bytes, verified against ``cid``.

        The node is given ``timeout`` seconds (default ``block_timeout``) to find the block, locally or
        from peers; the HTTP read allows a little more.

        Raises:
            IpfsBlockUnavailableError: the node did not produce it in time (a ``BlockNotFoundError``).
            IpfsBlockMismatchError: the bytes do not hash to ``cid`` (they are dropped).
            IpfsError: the call failed.
        """
        wait = self.block_timeout if timeout is None else timeout
        params = {"arg": str(cid), "timeout": f"{max(1, int(wait * 1000))}ms"}
        try:
            with self._call(
                "block/get", params=params, cid=cid, read_timeout=wait + self.timeout
            ) as response:
                block = self._read_bytes(
                    response, MAX_BLOCK_BYTES, "block/get", cid, self._deadline(wait + self.timeout)
                )
        except IpfsHttpError as e:
            if _is_not_found(e):
                raise IpfsBlockUnavailableError(
                    f"not found within {wait:g} s ({e.kubo_message})", "block/get", cid
                ) from e
            raise
        return verify_block(cid, block)

    def block_stat(self, cid: CID, *, timeout: float | None = None) -> int:
        """Return the size in bytes of a block the node holds (or finds within ``timeout``).

        Raises:
            IpfsBlockUnavailableError: the node did not find it in time.
            IpfsError: the call failed or answered for another CID.
        """
        wait = self.block_timeout if timeout is None else timeout
        params = {"arg": str(cid), "timeout": f"{max(1, int(wait * 1000))}ms"}
        try:
            answer = self._json("block/stat", params=params, cid=cid)
        except IpfsHttpError as e:
            if _is_not_found(e):
                raise IpfsBlockUnavailableError(
                    f"not found within {wait:g} s ({e.kubo_message})", "block/stat", cid
                ) from e
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("Size"), int):
            raise IpfsResponseError(f"no Size in {str(answer)[:80]!r}", "block/stat", cid)
        _same_cid(answer.get("Key"), cid, "block/stat")
        return int(answer["Size"])

    def block_has(self, cid: CID, *, timeout: float = 1.0) -> bool:
        """Return whether the node holds the block locally.

        Asks ``block/stat`` with ``offline`` (Kubo answers at once) and ``timeout`` seconds for nodes that
        ignore ``offline`` (they look for the block that long).

        Raises:
            IpfsError: the call failed for another reason than the block being absent.
        """
        params = {"arg": str(cid), "offline": "true", "timeout": f"{max(1, int(timeout * 1000))}ms"}
        try:
            answer = self._json("block/stat", params=params, cid=cid)
        except IpfsHttpError as e:
            if _is_not_found(e):
                return False
            raise
        return isinstance(answer, dict) and isinstance(answer.get("Size"), int)

    def block_rm(self, cids: Iterable[CID], *, force: bool = False) -> list[CID]:
        """Remove blocks from the node; return those removed (``force`` ignores the ones it lacks).

        Raises:
            IpfsHttpError: a block could not be removed (the node's message names it) and not ``force``.
            IpfsError: the call failed.
        """
        wanted = list(cids)
        if not wanted:
            return []
        params = [("arg", str(c)) for c in wanted] + [("force", "true" if force else "false")]
        removed: list[CID] = []
        for record in self._ndjson("block/rm", params=params):
            if not isinstance(record, dict):
                raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "block/rm")
            error = record.get("Error")
            if error and not force:
                raise IpfsHttpError(
                    str(error), "block/rm", record.get("Hash"), status=200, kubo_message=str(error)
                )
            if not error and isinstance(record.get("Hash"), str):
                removed.append(_parse_cid(record["Hash"], "block/rm"))
        return removed

    # -- pins ---------------------------------------------------------------------------------------------

    def pin_add(
        self, cids: Iterable[CID], *, recursive: bool = True, timeout: float | None = None
    ) -> list[CID]:
        """Pin blocks (recursively: everything reachable through IPLD links); return the pinned CIDs.

        ``timeout`` bounds how long the node may look for missing blocks (default: the client timeout).

        Raises:
            IpfsError: the call failed (e.g. a block is missing and not found in time).
        """
        wanted = list(cids)
        if not wanted:
            return []
        wait = self.timeout if timeout is None else timeout
        params = [("arg", str(c)) for c in wanted] + [
            ("recursive", "true" if recursive else "false"),
            ("timeout", f"{max(1, int(wait * 1000))}ms"),
        ]
        answer = self._json(
            "pin/add", params=params, cid=wanted[0] if len(wanted) == 1 else None, total=wait + self.timeout
        )
        return _cid_list(answer, "Pins", "pin/add")

    def pin_rm(self, cids: Iterable[CID], *, recursive: bool = True) -> list[CID]:
        """Unpin blocks; return the unpinned CIDs.

        Raises:
            IpfsHttpError: a CID is not pinned (the node's message says so).
            IpfsError: the call failed.
        """
        wanted = list(cids)
        if not wanted:
            return []
        params = [("arg", str(c)) for c in wanted] + [("recursive", "true" if recursive else "false")]
        answer = self._json("pin/rm", params=params, cid=wanted[0] if len(wanted) == 1 else None)
        return _cid_list(answer, "Pins", "pin/rm")

    def pin_ls(self, cids: Iterable[CID] = (), *, type: str = "all") -> dict[CID, str]:
        """Return pinned CIDs and their pin type (``recursive``, ``direct``, ``indirect…``).

        With ``cids``, only those are listed, and one that is not pinned is simply absent.
        ``type`` is ``all``, ``recursive``, ``direct`` or ``indirect``. The list is streamed.

        Raises:
            IpfsError: the call failed.
        """
        wanted = list(cids)
        if wanted:
            result: dict[CID, str] = {}
            for cid in wanted:  # one call each: a node fails the whole call for one unpinned CID
                try:
                    records = self._ndjson(
                        "pin/ls", params={"arg": str(cid), "type": type, "stream": "true"}, cid=cid
                    )
                except IpfsHttpError as e:
                    if "not pinned" in e.kubo_message.lower():
                        continue
                    raise
                result.update(_pin_records(records))
            return result
        return _pin_records(self._ndjson("pin/ls", params={"type": type, "stream": "true"}))

    def pin_update(self, old: CID, new: CID, *, unpin: bool = True) -> None:
        """Move a recursive pin from ``old`` to ``new`` (``pin/update``, which only pins the difference).

        On a node without ``pin/update`` (js-ipfs) this pins ``new`` and then unpins ``old``; the client
        remembers which works.

        Raises:
            IpfsError: the call failed.
        """
        if self._has_pin_update is not False:
            try:
                self._json(
                    "pin/update", params=[("arg", str(old)), ("arg", str(new)), ("unpin", str(unpin).lower())]
                )
                self._has_pin_update = True
                return
            except IpfsUnsupportedError:
                self._has_pin_update = False
        self.pin_add([new])
        if unpin and old != new:
            try:
                self.pin_rm([old])
            except IpfsHttpError as e:
                if "not pinned" not in e.kubo_message.lower():
                    raise

    # -- DAGs and CAR files -----------------------------------------------------------------------------

    def dag_import(
        self, car: str | os.PathLike[str] | IO[bytes], *, pin_roots: bool = True, timeout: float | None = None
    ) -> list[CID]:
        """Import a CARv1 file (streamed from disk or a binary file object); return its root CIDs.

        ``timeout`` bounds the whole call (default: ten times the client timeout).

        Raises:
            IpfsHttpError: the node rejected the file or could not pin a root.
            IpfsError: the call failed.
        """
        params = {"pin-roots": "true" if pin_roots else "false"}
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(open(car, "rb")) if isinstance(car, (str, os.PathLike)) else car
            records = self._ndjson(
                "dag/import",
                params=params,
                files={"file": ("orbit.car", handle)},
                total=10 * self.timeout if timeout is None else timeout,
            )
        roots: list[CID] = []
        for record in records:
            root = record.get("Root") if isinstance(record, dict) else None
            if root is None:
                continue  # Stats records
            link = root.get("Cid") if isinstance(root, dict) else None
            text = link.get("/") if isinstance(link, dict) else link
            if not isinstance(text, str):
                raise IpfsResponseError(f"no root CID in {str(record)[:80]!r}", "dag/import")
            cid = _parse_cid(text, "dag/import")
            if root.get("PinErrorMsg"):
                raise IpfsHttpError(
                    f"pinning root failed: {root['PinErrorMsg']}",
                    "dag/import",
                    cid,
                    status=200,
                    kubo_message=str(root["PinErrorMsg"]),
                )
            roots.append(cid)
        return roots

    def dag_export(
        self,
        root: CID,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: float | None = None,
        max_bytes: int = 1 << 40,
        total_timeout: float | None = None,
    ) -> int:
        """Stream ``dag/export`` of ``root`` (a CARv1 file) into ``dest``; return the bytes written.

        The file is not verified here: read it with :func:`orbit.car.read_car` or import it into a
        database, which check every block. ``timeout`` bounds each read (default: the client timeout),
        ``total_timeout`` the whole export (default: no overall bound; ``max_bytes`` bounds its size).

        Raises:
            IpfsError: the call failed, stalled, or the answer exceeded ``max_bytes``.
        """
        wait = self.timeout if timeout is None else timeout
        written = 0
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(dest, "wb")) if isinstance(dest, (str, os.PathLike)) else dest
            params = {"arg": str(root), "timeout": f"{max(1, int(wait * 1000))}ms"}
            with self._call("dag/export", params=params, cid=root, read_timeout=wait) as response:
                deadline = None if total_timeout is None else time.monotonic() + total_timeout
                for chunk in response.iter_bytes():
                    self._check_deadline(deadline, "dag/export", root)
                    written += len(chunk)
                    if written > max_bytes:
                        raise IpfsResponseError(f"export is over {max_bytes} bytes", "dag/export", root)
                    out.write(chunk)
        return written

    # -- MFS (the node's mutable files) -------------------------------------------------------------------

    def files_write(self, path: str, data: bytes) -> None:
        """Write ``data`` to the MFS file ``path`` (created with its parents, replaced if present).

        Raises:
            IpfsError: the call failed.
        """
        params = {"arg": path, "create": "true", "parents": "true", "truncate": "true"}
        self._json("files/write", params=params, files={"file": ("data", data)})

    def files_read(self, path: str, *, max_bytes: int = MAX_JSON_BYTES) -> bytes | None:
        """Return the content of the MFS file ``path``, or None if there is no such file.

        Raises:
            IpfsError: the call failed, or the file is over ``max_bytes``.
        """
        try:
            with self._call("files/read", params={"arg": path}) as response:
                return self._read_bytes(response, max_bytes, "files/read")
        except IpfsHttpError as e:
            if "does not exist" in e.kubo_message.lower() or "not exist" in e.kubo_message.lower():
                return None
            raise

    # -- swarm --------------------------------------------------------------------------------------------

    def swarm_connect(self, address: str) -> None:
        """Connect the node to a peer, e.g. ``/ip4/127.0.0.1/tcp/4001/p2p/<peer id>``.

        Raises:
            IpfsError: the call failed (the node's message says why the dial failed).
        """
        self._json("swarm/connect", params={"arg": address})

    def swarm_peers(self) -> list[dict[str, str]]:
        """Return the connected peers as ``{"peer": id, "addr": multiaddr}``.

        Raises:
            IpfsError: the call failed or the answer is malformed.
        """
        answer = self._json("swarm/peers")
        peers = answer.get("Peers") if isinstance(answer, dict) else None
        if peers is None:
            return []
        if not isinstance(peers, list):
            raise IpfsResponseError(f"Peers is not a list: {str(peers)[:80]!r}", "swarm/peers")
        return [
            {"peer": str(p.get("Peer", "")), "addr": str(p.get("Addr", ""))}
            for p in peers
            if isinstance(p, dict)
        ]

    # -- pubsub -------------------------------------------------------------------------------------------

    def pubsub_pub(self, topic: str | bytes, data: bytes) -> None:
        """Publish ``data`` (non-empty) on ``topic``.

        Raises:
            IpfsPubsubDisabledError: pubsub is off on the node.
            IpfsHttpError: the node refused, e.g. js-ipfs's "InsufficientPeers" when nobody subscribes.
            IpfsError: the call failed.
            ValueError: ``data`` is empty (nodes reject empty messages).
        """
        if not data:
            raise ValueError("pubsub messages cannot be empty")
        self._json("pubsub/pub", params={"arg": encode_topic(topic)}, files={"file": ("data", data)})

    def pubsub_sub(self, topic: str | bytes, *, max_queued: int = 10_000) -> Subscription:
        """Subscribe to ``topic``; return a :class:`Subscription` once the node has accepted it.

        Raises:
            IpfsPubsubDisabledError: pubsub is off on the node.
            IpfsError: the subscription could not be opened within the client timeout.
        """
        return Subscription(self, topic, max_queued=max_queued)

    def pubsub_ls(self) -> list[str]:
        """Return the topics the node subscribes to (decoded to text).

        Raises:
            IpfsError: the call failed or a topic is not multibase.
        """
        return [_topic_text(t, "pubsub/ls") for t in _strings(self._json("pubsub/ls"), "pubsub/ls")]

    def pubsub_peers(self, topic: str | bytes | None = None) -> list[str]:
        """Return the peer ids the node exchanges pubsub messages with (on ``topic``, if given).

        There is no "peer subscribed" event in the RPC: poll this.

        Raises:
            IpfsError: the call failed.
        """
        params = {"arg": encode_topic(topic)} if topic is not None else None
        return _strings(self._json("pubsub/peers", params=params), "pubsub/peers")

    # -- lifetime -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (unless the client was injected). Idempotent."""
        if not self._closed:
            self._closed = True
            if self._owns_client:
                self._http.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KuboClient({self.base_url!r})"


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

    def __init__(self, client: KuboClient, topic: str | bytes, *, max_queued: int = 10_000) -> None:
        self.topic = topic if isinstance(topic, str) else topic.decode("utf-8", "replace")
        self._client = client
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
        if not self._ready.wait(client.timeout + 1.0):
            self.close()
            raise IpfsTimeoutError(
                f"the subscription to {self.topic!r} was not accepted in time", "pubsub/sub"
            )
        if not self._accepted:
            self.close()
            raise self._error or IpfsResponseError("the subscription was not accepted", "pubsub/sub")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the stream ended."""
        return self._closed or self._ended

    def _run(self) -> None:
        endpoint = "pubsub/sub"
        try:
            with self._client._call(
                endpoint, params={"arg": self._encoded}, read_timeout=self._client.timeout
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
                for line in self._client._lines(response, endpoint):
                    message = _pubsub_message(_loads(line, endpoint), endpoint)
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


# -- answer parsing helpers ---------------------------------------------------------------------------------


def _loads(line: bytes, endpoint: str, cid: object = None) -> Any:
    try:
        return json.loads(line)
    except ValueError as e:
        raise IpfsResponseError(f"streamed line is not JSON ({e}): {line[:80]!r}", endpoint, cid) from e


def _parse_cid(text: object, endpoint: str) -> CID:
    if not isinstance(text, str):
        raise IpfsResponseError(f"expected a CID, got {str(text)[:80]!r}", endpoint)
    try:
        return CID.parse(text)
    except CodecError as e:
        raise IpfsResponseError(f"{text[:80]!r} is not a CID", endpoint) from e


def _same_cid(text: object, cid: CID, endpoint: str) -> None:
    if text is not None and _parse_cid(text, endpoint) != cid:
        raise IpfsBlockMismatchError(f"the node answered for another CID, {text}", endpoint, cid)


def _cid_list(answer: Any, field: str, endpoint: str) -> list[CID]:
    items = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise IpfsResponseError(f"no {field} list in {str(answer)[:80]!r}", endpoint)
    return [_parse_cid(item, endpoint) for item in items]


def _pin_records(records: list[Any]) -> dict[CID, str]:
    result: dict[CID, str] = {}
    for record in records:
        if not isinstance(record, dict):
            raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "pin/ls")
        if "Keys" in record:  # the non-streamed form {"Keys": {cid: {"Type": …}}}
            keys = record["Keys"]
            if not isinstance(keys, dict):
                raise IpfsResponseError("Keys is not an object", "pin/ls")
            for text, info in keys.items():
                result[_parse_cid(text, "pin/ls")] = (
                    str(info.get("Type", "")) if isinstance(info, dict) else ""
                )
        elif "Cid" in record:
            result[_parse_cid(record["Cid"], "pin/ls")] = str(record.get("Type", ""))
        else:
            raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "pin/ls")
    return result


def _strings(answer: Any, endpoint: str) -> list[str]:
    if answer is None:
        return []
    items = answer.get("Strings") if isinstance(answer, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise IpfsResponseError(f"Strings is not a list of strings: {str(answer)[:80]!r}", endpoint)
    return list(items)


def _topic_text(encoded: str, endpoint: str) -> str:
    try:
        return decode_multibase(encoded).decode("utf-8", "replace")
    except ValueError as e:
        raise IpfsResponseError(str(e), endpoint) from e


def _pubsub_message(record: Any, endpoint: str) -> PubsubMessage | None:
    if not isinstance(record, dict):
        raise IpfsResponseError(f"message is not an object: {str(record)[:80]!r}", endpoint)
    if not record:
        return None
    try:
        sender = record.get("from", "")
        data = decode_multibase(record["data"]) if record.get("data") else b""
        seqno = decode_multibase(record["seqno"]) if record.get("seqno") else b""
        topics = tuple(_topic_text(t, endpoint) for t in record.get("topicIDs") or ())
    except (ValueError, TypeError, AttributeError) as e:
        raise IpfsResponseError(f"malformed pubsub message ({e}): {str(record)[:80]!r}", endpoint) from e
    if not isinstance(sender, str):
        raise IpfsResponseError(f"malformed pubsub sender {sender!r}", endpoint)
    return PubsubMessage(sender=sender, data=data, seqno=seqno, topics=topics)


def _is_not_found(error: IpfsHttpError) -> bool:
    """Whether a block call's HTTP error means "the node did not find the block" (in time)."""
    message = error.kubo_message.lower()
    return error.status == 500 and any(
        marker in message
        for marker in (
            "timed out",
            "deadline exceeded",
            "not found",
            "could not find",
            "context canceled",
            "blockservice: key not found",
        )
    )
