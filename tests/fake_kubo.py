"""An in-process fake of Kubo's HTTP RPC, as documented, for ``httpx.MockTransport``.

It behaves the way Kubo (0.42) does where js-ipfs, the real node the integration tests run, differs or
cannot be made to misbehave: ``block/put`` honours ``cid-codec`` (default ``raw``) and refuses a request
that sends both ``format`` and ``cid-codec``; errors are HTTP 500 with ``{"Message", "Code", "Type"}``;
``API.Authorizations`` answers 403; a missing block with ``timeout=`` answers "context deadline
exceeded". Knobs inject faults: ``down``, ``slow``, ``gates`` (a call held until released),
``refused_files``, ``corrupt``, ``truncate``, ``pubsub_enabled``, ``ignore_cid_codec`` (behave like js-ipfs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from ipfs_log.cid import CID
from orbit.car import read_car
from orbit.ipfs.client import KuboClient

__all__ = ["FakeKubo", "mock_client", "multipart_file"]

_CODECS = {"dag-cbor": b"\x71", "raw": b"\x55", "dag-json": b"\xa9\x02", "dag-pb": b"\x70"}


def multipart_file(request: httpx.Request) -> bytes:
    """Return the content of the first part of a multipart/form-data request."""
    content_type = request.headers["content-type"]
    boundary = content_type.split("boundary=", 1)[1].encode()
    body = request.read()
    part = body.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


def _error(message: str, status: int = 500, code: int = 0) -> httpx.Response:
    return httpx.Response(status, json={"Message": message, "Code": code, "Type": "error"})


class _Truncated(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class FakeKubo:
    """A Kubo daemon in a dict. ``calls`` records ``(endpoint, params)`` of every request."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {}
        self.pins: dict[CID, str] = {}
        self.files: dict[str, bytes] = {}
        self.calls: list[tuple[str, dict[str, list[str]]]] = []
        self.lock = threading.Lock()
        self.down = False
        self.slow = False
        self.token: str | None = None
        self.corrupt: set[CID] = set()
        self.truncate: set[str] = set()
        self.malformed: dict[str, bytes] = {}
        self.pubsub_enabled = True
        self.ignore_cid_codec = False  # js-ipfs: cid-codec ignored, a Qm… CID comes back
        self.has_pin_update = True
        self.put_failures = 0  # the next N block/put (and dag/import) calls answer HTTP 500
        self.has_dag_import = True
        self.add_failures = 0  # the next N `add` calls answer HTTP 500
        self.unixfs: dict[CID, bytes] = {}  # files added with `add`, by their (fake) root CID
        # endpoint -> a gate its requests wait at (at most 30 s) before they are answered: a slow call
        self.gates: dict[str, threading.Event] = {}
        self.refused_files: set[str] = set()  # `files/write` to a path ending so answers HTTP 500

    def endpoints(self) -> list[str]:
        return [endpoint for endpoint, _ in self.calls]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.removeprefix("/api/v0/")
        params: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            params.setdefault(key, []).append(value)
        with self.lock:
            self.calls.append((endpoint, params))
        gate = self.gates.get(endpoint)
        if gate is not None:
            gate.wait(30)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.slow:
            raise httpx.ReadTimeout("timed out", request=request)
        if request.method != "POST":
            return _error("Method Not Allowed", 405)
        if self.token is not None and request.headers.get("authorization") != self.token:
            return httpx.Response(403, text="403 - Forbidden")
        if endpoint in self.malformed:
            return httpx.Response(200, content=self.malformed[endpoint])
        response = self._handle(endpoint, params, request)
        if endpoint in self.truncate:
            return httpx.Response(
                response.status_code, stream=_Truncated(response.content[: len(response.content) // 2])
            )
        return response

    def _handle(self, endpoint: str, params: dict[str, list[str]], request: httpx.Request) -> httpx.Response:
        one = {k: v[0] for k, v in params.items()}
        args = params.get("arg", [])
        if endpoint == "id":
            return httpx.Response(
                200, json={"ID": "12D3KooWFake", "Addresses": [], "AgentVersion": "kubo/0.42.0"}
            )
        if endpoint == "version":
            return httpx.Response(
                200, json={"Version": "0.42.0", "Commit": "", "Repo": "16", "System": "amd64/linux"}
            )
        if endpoint == "block/put":
            if "format" in one and "cid-codec" in one:
                return _error("incompatible flags: cannot use --format together with --cid-codec")
            if self.put_failures:
                self.put_failures -= 1
                return _error("failed to put block: disk full")
            data = multipart_file(request)
            if len(data) > 1 << 20 and one.get("allow-big-block") != "true":
                return _error(
                    "produced block is over 1MiB: big blocks can't be exchanged with other peers. "
                    "consider using UnixFS for automatic chunking of bigger files, "
                    "or pass --allow-big-block to override"
                )
            codec = one.get("format") or ("raw" if self.ignore_cid_codec else one.get("cid-codec", "raw"))
            digest = hashlib.sha256(data).digest()
            cid = CID(b"\x01" + _CODECS[codec] + b"\x12\x20" + digest)
            if self.ignore_cid_codec and "format" not in one:
                cid = CID(b"\x12\x20" + digest)  # js-ipfs answers a CIDv0
            self.blocks[cid] = data
            if one.get("pin") == "true":
                self.pins[cid] = "recursive"
            return httpx.Response(200, json={"Key": cid.encode("base32"), "Size": len(data)})
        if endpoint == "dag/import":
            if not self.has_dag_import:
                return httpx.Response(404, text="404 page not found")
            if self.put_failures:
                self.put_failures -= 1
                return _error("failed to import: disk full")
            roots, blocks = read_car(multipart_file(request))
            self.blocks.update(blocks)
            pinned: list[dict[str, Any]] = []
            if one.get("pin-roots", "true") == "true":
                for root in roots:
                    self.pins[root] = "recursive"
                    pinned.append({"Root": {"Cid": {"/": root.encode("base32")}, "PinErrorMsg": ""}})
            return httpx.Response(200, content=b"".join(json.dumps(r).encode() + b"\n" for r in pinned))
        if endpoint == "add":
            if self.add_failures:
                self.add_failures -= 1
                return _error("failed to add: disk full")
            data = multipart_file(request)
            cid = CID(b"\x01\x55\x12\x20" + hashlib.sha256(data).digest())  # as a raw-leaf single chunk
            self.unixfs[cid] = data
            if one.get("pin", "true") == "true":
                self.pins[cid] = "recursive"
            return httpx.Response(
                200, json={"Name": "orbit.pack", "Hash": cid.encode("base32"), "Size": str(len(data))}
            )
        if endpoint == "cat":
            cid = CID.parse(args[0])
            if cid not in self.unixfs:
                return _error("context deadline exceeded")
            return httpx.Response(200, content=self.unixfs[cid])
        if endpoint in ("block/get", "block/stat"):
            cid = CID.parse(args[0])
            if cid not in self.blocks:
                if "timeout" not in one and not one.get("offline"):
                    raise httpx.ReadTimeout("Kubo would wait forever", request=request)
                if one.get("offline"):
                    return _error(f"block was not found locally (offline): ipld: could not find {args[0]}")
                return _error("context deadline exceeded")
            data = self.blocks[cid]
            if cid in self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            if endpoint == "block/get":
                return httpx.Response(200, content=data)
            return httpx.Response(200, json={"Key": cid.encode("base58btc"), "Size": len(data)})
        if endpoint == "pin/add":
            missing = [a for a in args if CID.parse(a) not in self.blocks]
            if missing:
                return _error("context deadline exceeded")
            for a in args:
                self.pins[CID.parse(a)] = "recursive" if one.get("recursive", "true") == "true" else "direct"
            return httpx.Response(200, json={"Pins": [CID.parse(a).encode("base58btc") for a in args]})
        if endpoint == "pin/rm":
            for a in args:
                if CID.parse(a) not in self.pins:
                    return _error(f"{a} is not pinned")
            for a in args:
                del self.pins[CID.parse(a)]
            return httpx.Response(200, json={"Pins": args})
        if endpoint == "pin/update":
            if not self.has_pin_update:
                return httpx.Response(404, text="404 page not found")
            old, new = (CID.parse(a) for a in args)
            if old not in self.pins:
                return _error("'from' cid was not recursively pinned already")
            if one.get("unpin", "true") == "true":
                del self.pins[old]
            self.pins[new] = "recursive"
            return httpx.Response(200, json={"Pins": args})
        if endpoint == "pin/ls":
            wanted = [CID.parse(a) for a in args] or list(self.pins)
            lines = []
            for cid in wanted:
                if cid not in self.pins:
                    return _error(f"path '{cid}' is not pinned")
                lines.append(json.dumps({"Cid": cid.encode("base58btc"), "Type": self.pins[cid]}))
            return httpx.Response(200, content="\n".join(lines).encode() + b"\n")
        if endpoint == "files/write":
            if any(args[0].endswith(suffix) for suffix in self.refused_files):
                return _error("failed to write file: disk full")
            self.files[args[0]] = multipart_file(request)
            return httpx.Response(200, content=b"")
        if endpoint == "files/read":
            if args[0] not in self.files:
                return _error("file does not exist")
            return httpx.Response(200, content=self.files[args[0]])
        if endpoint.startswith("pubsub/"):
            if not self.pubsub_enabled:
                return _error(
                    "experimental pubsub feature not enabled, run daemon with --enable-pubsub-experiment "
                    "or set Pubsub.Enabled=true in the config"
                )
            if endpoint == "pubsub/ls":
                return httpx.Response(200, json={"Strings": ["ub3JiaXQ"]})
            if endpoint == "pubsub/peers":
                return httpx.Response(200, json={"Strings": ["12D3KooWPeer"]})
            if endpoint == "pubsub/pub":
                return httpx.Response(200, content=b"")
            if endpoint == "pubsub/sub":
                topic = args[0]
                records: list[dict[str, Any]] = [
                    {
                        "from": "12D3KooWPeer",
                        "data": "u" + base64.urlsafe_b64encode(f"message {i}".encode()).decode().rstrip("="),
                        "seqno": "uAAAAAAAAAAE",
                        "topicIDs": [topic],
                    }
                    for i in range(3)
                ]
                return httpx.Response(200, content=b"".join(json.dumps(r).encode() + b"\n" for r in records))
        return httpx.Response(404, text="404 page not found")


def mock_client(fake: FakeKubo, **kwargs: Any) -> KuboClient:
    """A KuboClient over ``httpx.MockTransport(fake)``."""
    return KuboClient("http://kubo.test:5001", transport=httpx.MockTransport(fake), **kwargs)
