r"""A synchronous client for the Kubo HTTP RPC API (``POST /api/v0/<command>``), over one ``httpx.Client``.

Written against Kubo's documented RPC and tested against js-ipfs 0.66.1, which serves the same API.
There is no version gate: where implementations differ the client detects what works and remembers it
(``block/put`` sends Kubo's ``cid-codec`` and falls back to the older ``format`` that js-ipfs honours,
always checking the CID the node returns; ``pin/update`` falls back to ``pin/add`` + ``pin/rm``).

Nothing that comes back is trusted: every block is hashed and checked against the CID asked for before
it is returned, answers are size-bounded, CIDs are compared decoded (nodes answer in varying multibases),
and every call has a timeout (``block/get`` also sends the node a ``timeout=``, without which a missing
block hangs forever). Every failure is an :class:`~orbit.errors.IpfsError` naming the endpoint (and the
CID); the mapping from httpx and HTTP errors is in one place, :mod:`orbit.ipfs.transport`.

The API address is, in order: the ``api`` argument, ``$IPFS_API``, ``http://127.0.0.1:5001``; a URL or a
multiaddr such as ``/ip4/127.0.0.1/tcp/5001`` (:mod:`orbit.ipfs.address`). Answers are checked by
:mod:`orbit.ipfs.answers`; pubsub's codec and subscription are in :mod:`orbit.ipfs.pubsub`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterable
from typing import IO, Any, Final

import httpx

from ipfs_log.cid import CID, SHA2_256
from ipfs_log.errors import CodecError
from orbit.errors import (
    IpfsBlockMismatchError,
    IpfsBlockTooLargeError,
    IpfsBlockUnavailableError,
    IpfsHttpError,
    IpfsResponseError,
    IpfsUnsupportedError,
)
from orbit.ipfs.address import DEFAULT_API, api_url
from orbit.ipfs.answers import (
    CODEC_NAMES,
    cid_list,
    codec_of,
    is_not_found,
    parse_cid,
    pin_records,
    same_cid,
    strings,
    verify_block,
)
from orbit.ipfs.pubsub import PubsubMessage, Subscription, decode_multibase, encode_topic, topic_text
from orbit.ipfs.transport import MAX_JSON_BYTES, RpcTransport

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

MAX_BLOCK_BYTES: Final = 2 << 20
"""Largest block sent or accepted: 2 MiB, the bitswap limit (Kubo refuses bigger without allow-big-block)."""
_PUT_MODES: Final = ("cid-codec", "format")


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
        headers: dict[str, str] = {}
        if isinstance(auth, tuple):
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        elif auth:
            headers["Authorization"] = auth
        http = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.rpc = RpcTransport(
            self.base_url, http, timeout=timeout, headers=headers, owns_http=client is None
        )
        """The transport: calls, error mapping and bounded reads (see :mod:`orbit.ipfs.transport`)."""
        self._put_mode: str | None = None  # "cid-codec" (Kubo) or "format" (js-ipfs), once known
        self._has_pin_update: bool | None = None

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
        answer = self.rpc.json(endpoint)
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
            codec = CODEC_NAMES[codec_of(cid)]
        except KeyError:
            raise IpfsBlockMismatchError("unsupported codec for block/put", "block/put", cid) from None
        modes = (self._put_mode,) if self._put_mode else _PUT_MODES
        returned: list[str] = []
        for mode in modes:
            params = {mode: codec, "mhtype": "sha2-256", "pin": "true" if pin else "false"}
            if cid.version == 0:
                params = {"format": "v0", "mhtype": "sha2-256", "pin": params["pin"]}
            try:
                answer = self.rpc.json("block/put", params=params, files={"file": ("block", block)}, cid=cid)
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
            with self.rpc.call(
                "block/get", params=params, cid=cid, read_timeout=wait + self.timeout
            ) as response:
                block = self.rpc.read_bytes(
                    response, MAX_BLOCK_BYTES, "block/get", cid, self.rpc.deadline(wait + self.timeout)
                )
        except IpfsHttpError as e:
            if is_not_found(e):
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
            answer = self.rpc.json("block/stat", params=params, cid=cid)
        except IpfsHttpError as e:
            if is_not_found(e):
                raise IpfsBlockUnavailableError(
                    f"not found within {wait:g} s ({e.kubo_message})", "block/stat", cid
                ) from e
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("Size"), int):
            raise IpfsResponseError(f"no Size in {str(answer)[:80]!r}", "block/stat", cid)
        same_cid(answer.get("Key"), cid, "block/stat")
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
            answer = self.rpc.json("block/stat", params=params, cid=cid)
        except IpfsHttpError as e:
            if is_not_found(e):
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
        for record in self.rpc.ndjson("block/rm", params=params):
            if not isinstance(record, dict):
                raise IpfsResponseError(f"unexpected record {str(record)[:80]!r}", "block/rm")
            error = record.get("Error")
            if error and not force:
                raise IpfsHttpError(
                    str(error), "block/rm", record.get("Hash"), status=200, kubo_message=str(error)
                )
            if not error and isinstance(record.get("Hash"), str):
                removed.append(parse_cid(record["Hash"], "block/rm"))
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
        answer = self.rpc.json(
            "pin/add", params=params, cid=wanted[0] if len(wanted) == 1 else None, total=wait + self.timeout
        )
        return cid_list(answer, "Pins", "pin/add")

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
        answer = self.rpc.json("pin/rm", params=params, cid=wanted[0] if len(wanted) == 1 else None)
        return cid_list(answer, "Pins", "pin/rm")

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
                    records = self.rpc.ndjson(
                        "pin/ls", params={"arg": str(cid), "type": type, "stream": "true"}, cid=cid
                    )
                except IpfsHttpError as e:
                    if "not pinned" in e.kubo_message.lower():
                        continue
                    raise
                result.update(pin_records(records))
            return result
        return pin_records(self.rpc.ndjson("pin/ls", params={"type": type, "stream": "true"}))

    def pin_update(self, old: CID, new: CID, *, unpin: bool = True) -> None:
        """Move a recursive pin from ``old`` to ``new`` (``pin/update``, which only pins the difference).

        On a node without ``pin/update`` (js-ipfs) this pins ``new`` and then unpins ``old``; the client
        remembers which works. Kubo diffs the two DAGs pairwise without a visited set: on DAGs whose
        nodes share descendants (an orbit log's skip links) that takes exponential time, so the block
        store moves log pins with :meth:`pin_add` and :meth:`pin_rm` instead.

        Raises:
            IpfsError: the call failed.
        """
        if self._has_pin_update is not False:
            try:
                self.rpc.json(
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
        """Import a CARv1 file (streamed from disk or a binary file object); return the roots it pinned.

        Kubo pins the CAR's roots (not its other blocks: those are kept only through the roots' links)
        and reports each root from that pinning step: with ``pin_roots=False`` it reports none, and the
        list is empty.

        ``timeout`` bounds the whole call (default: ten times the client timeout).

        Raises:
            IpfsHttpError: the node rejected the file or could not pin a root.
            IpfsError: the call failed.
        """
        params = {"pin-roots": "true" if pin_roots else "false"}
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(open(car, "rb")) if isinstance(car, (str, os.PathLike)) else car
            records = self.rpc.ndjson(
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
            cid = parse_cid(text, "dag/import")
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
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(dest, "wb")) if isinstance(dest, (str, os.PathLike)) else dest
            return self._stream("dag/export", root, out, max_bytes, timeout, total_timeout)

    # -- files (UnixFS): what Kubo moves fastest, between nodes too ----------------------------------------

    def add(self, data: bytes | IO[bytes], *, pin: bool = True, timeout: float | None = None) -> CID:
        """Add ``data`` as one UnixFS file (CIDv1, raw leaves) and return its root CID.

        A file is what Kubo serves fastest: ``cat`` reads it in one stream, and a node that lacks it
        fetches its chunks over bitswap many at a time (a DAG of small blocks is walked one block at
        a time). ``timeout`` bounds the whole call (default: ten times the client timeout).

        Raises:
            IpfsError: the call failed or the answer names no file.
        """
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "pin": "true" if pin else "false",
            "quieter": "true",
        }
        records = self.rpc.ndjson(
            "add",
            params=params,
            files={"file": ("orbit.pack", data)},
            total=10 * self.timeout if timeout is None else timeout,
        )
        hashes = [r.get("Hash") for r in records if isinstance(r, dict) and r.get("Hash")]
        if not hashes:
            raise IpfsResponseError(f"no file CID in {str(records)[:80]!r}", "add")
        return parse_cid(hashes[-1], "add")

    def cat(
        self,
        cid: CID,
        dest: IO[bytes],
        *,
        max_bytes: int,
        timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> int:
        """Stream the UnixFS file ``cid`` into ``dest``; return the bytes written.

        The bytes are not verified here (a file's chunks are hashed by the node, its contents are
        whatever was added): a caller checks what it reads, e.g. the blocks of a CAR against their
        CIDs. ``timeout`` bounds each read (and is sent to the node, which otherwise waits forever
        for a file nobody serves), ``total_timeout`` the whole call.

        Raises:
            IpfsError: the call failed, stalled, or the file is over ``max_bytes``.
        """
        return self._stream("cat", cid, dest, max_bytes, timeout, total_timeout)

    def _stream(
        self,
        endpoint: str,
        cid: CID,
        dest: IO[bytes],
        max_bytes: int,
        timeout: float | None,
        total_timeout: float | None,
    ) -> int:
        """Stream ``endpoint`` of ``cid`` into ``dest``, bounded in size and time; return the bytes."""
        wait = self.timeout if timeout is None else timeout
        params = {"arg": str(cid), "timeout": f"{max(1, int(wait * 1000))}ms"}
        written = 0
        with self.rpc.call(endpoint, params=params, cid=cid, read_timeout=wait) as response:
            deadline = None if total_timeout is None else time.monotonic() + total_timeout
            for chunk in response.iter_bytes():
                self.rpc.check_deadline(deadline, endpoint, cid)
                written += len(chunk)
                if written > max_bytes:
                    raise IpfsResponseError(f"the answer is over {max_bytes} bytes", endpoint, cid)
                dest.write(chunk)
        return written

    # -- MFS (the node's mutable files) -------------------------------------------------------------------

    def files_write(self, path: str, data: bytes) -> None:
        """Write ``data`` to the MFS file ``path`` (created with its parents, replaced if present).

        Raises:
            IpfsError: the call failed.
        """
        params = {"arg": path, "create": "true", "parents": "true", "truncate": "true"}
        self.rpc.json("files/write", params=params, files={"file": ("data", data)})

    def files_read(self, path: str, *, max_bytes: int = MAX_JSON_BYTES) -> bytes | None:
        """Return the content of the MFS file ``path``, or None if there is no such file.

        Raises:
            IpfsError: the call failed, or the file is over ``max_bytes``.
        """
        try:
            with self.rpc.call("files/read", params={"arg": path}) as response:
                return self.rpc.read_bytes(response, max_bytes, "files/read")
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
        self.rpc.json("swarm/connect", params={"arg": address})

    def swarm_peers(self) -> list[dict[str, str]]:
        """Return the connected peers as ``{"peer": id, "addr": multiaddr}``.

        Raises:
            IpfsError: the call failed or the answer is malformed.
        """
        answer = self.rpc.json("swarm/peers")
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
        self.rpc.json("pubsub/pub", params={"arg": encode_topic(topic)}, files={"file": ("data", data)})

    def pubsub_sub(self, topic: str | bytes, *, max_queued: int = 10_000) -> Subscription:
        """Subscribe to ``topic``; return a :class:`Subscription` once the node has accepted it.

        Raises:
            IpfsPubsubDisabledError: pubsub is off on the node.
            IpfsError: the subscription could not be opened within the client timeout.
        """
        return Subscription(self.rpc, topic, max_queued=max_queued)

    def pubsub_ls(self) -> list[str]:
        """Return the topics the node subscribes to (decoded to text).

        Raises:
            IpfsError: the call failed or a topic is not multibase.
        """
        return [topic_text(t, "pubsub/ls") for t in strings(self.rpc.json("pubsub/ls"), "pubsub/ls")]

    def pubsub_peers(self, topic: str | bytes | None = None) -> list[str]:
        """Return the peer ids the node exchanges pubsub messages with (on ``topic``, if given).

        There is no "peer subscribed" event in the RPC: poll this.

        Raises:
            IpfsError: the call failed.
        """
        params = {"arg": encode_topic(topic)} if topic is not None else None
        return strings(self.rpc.json("pubsub/peers", params=params), "pubsub/peers")

    # -- lifetime -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (unless the client was injected). Idempotent."""
        self.rpc.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KuboClient({self.base_url!r})"
