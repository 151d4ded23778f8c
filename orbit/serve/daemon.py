"""``orbit serve``'s process: it owns an OrbitDB directory, keeps its databases replicating, and serves them.

:class:`Daemon` opens the directory (taking its lock: no other process can open it meanwhile), opens
every database of the directory's registry (with ``ipfs``, each is linked to the node and replicated as
long as the daemon runs), binds the HTTP API (:mod:`orbit.serve.app`) and writes its address into the
directory's ``api`` file (:mod:`orbit.serve.files`). SIGINT or SIGTERM (or :meth:`Daemon.stop`) ends
it: live streams are closed, requests under way get a few seconds, the databases are closed (saving
their checkpoints; replicators stop within their close timeout), and the ``api`` file is removed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn

from ipfs_log.errors import OrbitError
from orbit.errors import ServeError
from orbit.facade import OrbitDB
from orbit.ipfs.client import KuboClient
from orbit.registry import Registry
from orbit.serve.app import Host, build_app
from orbit.serve.files import load_token, read_api, remove_api, write_api
from orbit.serve.protocol import CommandRunner

__all__ = ["GRACE", "MAX_CONNECTIONS", "Daemon", "is_loopback"]

GRACE: Final = 3.0
"""Seconds requests under way get to finish once the daemon is asked to stop."""
MAX_CONNECTIONS: Final = 256
"""Connections (event streams included) served at once; one more gets 503."""
_log = logging.getLogger("orbit.serve")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1`` or ``localhost``).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _signals_noted() -> Iterator[None]:
    """SIGINT and SIGTERM only noted while the block runs (on the main thread).

    uvicorn handles both while it serves, then raises the signal it caught again once it stopped; with
    the default handlers that would kill the process (SIGTERM) or interrupt the closing of the directory
    (SIGINT) before the databases were closed and the ``api`` file removed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, frame: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Server(uvicorn.Server):
    """uvicorn's server, ending the live streams first when asked to exit (else they hold it back)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


class Daemon:
    """One directory served over HTTP until SIGINT/SIGTERM or :meth:`stop`.

    Args:
        directory: the orbit directory (created if absent).
        host: the address to listen on; anything but loopback needs the token.
        port: the TCP port; 0 picks a free one.
        ipfs: an IPFS node's RPC URL to replicate through (None: no replication).
        token: require the directory's token on every request (off only on loopback).
        passphrase: the keystore's passphrase, if it is encrypted.
        run_command: runs an ``orbit`` command line against the open directory (``POST /api/v1/cli``).

    Raises:
        ServeError: a non-loopback ``host`` without the token.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ipfs: str | None = None,
        token: bool = True,
        passphrase: str | None = None,
        run_command: CommandRunner | None = None,
    ) -> None:
        if not token and not is_loopback(host):
            raise ServeError(f"refusing to listen on {host} without the token: only loopback may go without")
        if not 0 <= port <= 65535:
            raise ServeError(f"a port is from 0 to 65535, not {port}")
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.ipfs = ipfs
        self.token = token
        self.passphrase = passphrase
        self.run_command = run_command
        self.url: str | None = None
        """The base URL, once listening."""
        self.api: Host | None = None
        self._server: _Server | None = None
        self._stop = threading.Event()

    def _check_not_served(self) -> None:
        url = read_api(self.directory)
        if url is None:
            return
        import httpx

        try:
            httpx.get(f"{url}/api/v1/ping", timeout=2.0)
        except httpx.HTTPError:
            return  # a stale file: its daemon died
        raise ServeError(f"a daemon already serves {self.directory} at {url}", url)

    def serve(self, ready: Callable[[str, str | None], None] | None = None) -> None:
        """Open the directory, listen, and serve until stopped; then close everything.

        Args:
            ready: called once listening, with the base URL and the token.

        Raises:
            ServeError: the port cannot be bound, or another daemon serves the directory.
            DatabaseLockedError: another process has the directory open.
            IpfsError: the node does not answer.
            OrbitError: the directory cannot be opened.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_not_served()
        token = load_token(self.directory, create=True) if self.token else None
        client = None
        if self.ipfs is not None:
            client = KuboClient(self.ipfs)
            try:
                client.id()
            except BaseException:
                client.close()
                raise
        try:
            orbit = OrbitDB(self.directory, passphrase=self.passphrase, ipfs=client)
        except BaseException:
            if client is not None:
                client.close()
            raise
        try:
            self._serve(orbit, token, ready)
        finally:
            try:
                orbit.close()
            finally:
                if client is not None:
                    client.close()

    def _serve(
        self, orbit: OrbitDB, token: str | None, ready: Callable[[str, str | None], None] | None
    ) -> None:
        for entry in Registry(self.directory):
            try:
                orbit.open(entry.address, **entry.options)
            except OrbitError as e:
                _log.warning("could not open %s (%s): %s", entry.name, entry.address, e)
        host = Host(orbit, token, self.ipfs, self.run_command)
        host.hub.watch(orbit.databases)
        self.api = host
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # accepted connections inherit it: without, a response's body waits ~40 ms behind its headers
            # (Nagle's algorithm against the client's delayed ACK)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise ServeError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}") from e
        bound = sock.getsockname()[1]
        # the api file names an address the command line can reach: loopback for a wildcard bind
        reach = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        shown = f"[{reach}]" if ":" in reach else reach
        url = f"http://{shown}:{bound}"
        config = uvicorn.Config(
            build_app(host),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=int(GRACE),
            server_header=False,
        )
        server = _Server(config, host.hub.close)
        self._server = server
        try:
            write_api(self.directory, url)
            self.url = url
            if ready is not None:
                ready(url, token)
            if self._stop.is_set():
                return
            with _signals_noted():
                server.run(sockets=[sock])
        finally:
            host.hub.close()
            remove_api(self.directory, url)
            sock.close()

    def stop(self) -> None:
        """Ask the daemon to stop (from any thread); :meth:`serve` returns once it closed everything."""
        self._stop.set()
        if self.api is not None:
            self.api.hub.close()
        if self._server is not None:
            self._server.should_exit = True
