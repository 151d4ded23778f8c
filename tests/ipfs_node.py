"""A real IPFS RPC node for tests and benchmarks, installed and started from the project's own files.

The node is js-ipfs 0.66.1 (``ipfs-node/`` at the repository root: package.json, the tested lock file,
a ``Promise.withResolvers`` polyfill for Node 20, and a guard that ends the node when the process that
started it dies). It serves the Kubo HTTP RPC API.

- :func:`install` runs ``npm install`` (with the lock file) once per machine into a cache outside the
  repository, ``~/.cache/orbit/ipfs-node/<hash of the package files>/`` (``$ORBIT_IPFS_NODE_CACHE``
  overrides the root), under a file lock so that concurrent pytest processes install it once.
- :class:`IpfsNode` inits a repository in a directory, configures it to stay on loopback (free ports,
  no bootstrap, no discovery, no preload), starts the daemon and waits, bounded, for ``POST /api/v0/id``
  to answer. It can stop, restart and kill it (a killed node's stale ``repo.lock`` is removed).

Every failure raises :class:`IpfsNodeError` with the command and the tail of the node's log: a test
fixture built on this fails, it never skips.

By hand: ``python -m tests.ipfs_node install`` or ``python -m tests.ipfs_node run``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests import npm_cache

__all__ = ["NODE_FILES", "IpfsNode", "IpfsNodeError", "cache_root", "free_port", "install"]

NODE_FILES = Path(__file__).resolve().parent.parent / "ipfs-node"
"""The project's files that define the node: package.json, package-lock.json, with-resolvers.cjs."""

INSTALL_TIMEOUT_S = 900.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class IpfsNodeError(RuntimeError):
    """The test node could not be installed, started or stopped."""


def cache_root() -> Path:
    """Return the directory under which node installs are cached (outside the repository)."""
    return npm_cache.cache_root("ORBIT_IPFS_NODE_CACHE", "ipfs-node")


def install(
    node_files: Path = NODE_FILES, root: Path | None = None, timeout: float = INSTALL_TIMEOUT_S
) -> Path:
    """Install the node's npm packages into the cache, once; return the install directory.

    The directory is keyed by a hash of package.json and package-lock.json, so changing either installs
    afresh. An install that did not complete is never used (it is built in a temporary directory and
    renamed into place).

    Raises:
        IpfsNodeError: npm is missing, fails, or takes longer than ``timeout`` seconds.
    """
    if shutil.which("node") is None:
        raise IpfsNodeError("the IPFS test node needs node and npm on PATH (Node 20 and npm 10+ were tested)")
    return npm_cache.install(
        node_files,
        root or cache_root(),
        command="install",
        expect="node_modules/ipfs/src/cli.js",
        needs="the IPFS test node",
        timeout=timeout,
        error=IpfsNodeError,
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class IpfsNode:
    """One js-ipfs daemon on loopback with its repository in ``repo``.

    Args:
        repo: the node's repository directory (created and initialised by :meth:`start` if empty).
        install_dir: where the npm packages are (default: :func:`install`).
        api_port: the RPC API port (default: a free one, kept across restarts).
        swarm_port: the libp2p TCP port (default: a free one, kept across restarts).
    """

    def __init__(
        self,
        repo: Path,
        *,
        install_dir: Path | None = None,
        api_port: int | None = None,
        swarm_port: int | None = None,
    ) -> None:
        self.repo = Path(repo)
        self._install_dir = install_dir
        self.api_port = api_port or free_port()
        self.swarm_port = swarm_port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.peer_id: str | None = None
        self.log_path = self.repo.parent / f"{self.repo.name}.log"
        self.startup_s: float | None = None

    @property
    def api_url(self) -> str:
        """The RPC base URL, e.g. ``http://127.0.0.1:5001``."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_multiaddr(self) -> str:
        """The RPC address as a multiaddr, e.g. ``/ip4/127.0.0.1/tcp/5001``."""
        return f"/ip4/127.0.0.1/tcp/{self.api_port}"

    @property
    def swarm_address(self) -> str:
        """The address other nodes dial: ``/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>``."""
        if self.peer_id is None:
            raise IpfsNodeError("the node has not started yet: its peer id is unknown")
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self.process is not None and self.process.poll() is None

    def _cli(self) -> list[str]:
        install_dir = self._install_dir or install()
        self._install_dir = install_dir
        return [
            shutil.which("node") or "node",
            "--require",
            str(NODE_FILES / "with-resolvers.cjs"),
            "--require",
            str(NODE_FILES / "exit-with-parent.cjs"),
            str(install_dir / "node_modules" / "ipfs" / "src" / "cli.js"),
        ]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "IPFS_PATH": str(self.repo), "IPFS_MONITORING": "", "DEBUG": ""}

    def _log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    def init(self) -> None:
        """Create the repository (``init --profile test --empty-repo``) and write the loopback config.

        Raises:
            IpfsNodeError: init failed or took longer than a minute.
        """
        self.repo.mkdir(parents=True, exist_ok=True)
        command = [*self._cli(), "init", "--profile", "test", "--empty-repo"]
        try:
            done = subprocess.run(
                command, env=self._env(), capture_output=True, text=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise IpfsNodeError(f"`ipfs init` in {self.repo} took longer than 60 s") from e
        if done.returncode != 0:
            raise IpfsNodeError(f"`ipfs init` in {self.repo} failed: {done.stderr[-3000:]}")
        self._write_config()

    def _write_config(self) -> None:
        path = self.repo / "config"
        config: dict[str, Any] = json.loads(path.read_text())
        addresses = config.setdefault("Addresses", {})
        addresses.update(
            API=f"/ip4/127.0.0.1/tcp/{self.api_port}",
            Gateway="",
            RPC="",
            Swarm=[f"/ip4/127.0.0.1/tcp/{self.swarm_port}"],
            Announce=[],
            NoAnnounce=[],
            Delegates=[],
        )
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery["MDNS"] = {"Enabled": False}
        discovery["webRTCStar"] = {"Enabled": False}
        config["Routing"] = {"Type": "none"}
        config.setdefault("Swarm", {})["DisableNatPortMap"] = True
        config["Pubsub"] = {"Router": "gossipsub", "Enabled": True}
        path.write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the daemon (initialising the repository first if needed); return once the API answers.

        Raises:
            IpfsNodeError: a port is taken, the daemon exits, or ``POST /api/v0/id`` does not answer 200
                within ``timeout`` seconds. The message carries the tail of the node's log.
        """
        if self.running:
            return
        for port in (self.api_port, self.swarm_port):
            if _port_in_use(port):
                raise IpfsNodeError(
                    f"port {port} on 127.0.0.1 is taken: cannot start the node in {self.repo}"
                )
        if not (self.repo / "config").exists():
            self.init()
        self._remove_stale_lock()
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self._cli(), "daemon", "--enable-preload=false"],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal does not reach it; we stop it
            )
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise IpfsNodeError(
                        f"the IPFS node in {self.repo} exited with status {self.process.returncode} "
                        f"while starting; log:\n{self._log_tail()}"
                    )
                try:
                    answer = client.post(f"{self.api_url}/api/v0/id")
                    if answer.status_code == 200:
                        self.peer_id = str(answer.json()["ID"])
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self._terminate(signal.SIGKILL)
                    raise IpfsNodeError(
                        f"the IPFS node in {self.repo} did not answer POST {self.api_url}/api/v0/id within "
                        f"{timeout:.0f} s; log:\n{self._log_tail()}"
                    )
                time.sleep(0.1)
        self.startup_s = time.monotonic() - started

    def _terminate(self, sig: signal.Signals, timeout: float = STOP_TIMEOUT_S) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self.process = None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        self._terminate(signal.SIGTERM, timeout)
        self._remove_stale_lock()

    def kill(self) -> None:
        """Kill the daemon with SIGKILL, as a crash would, and clear the lock it leaves behind."""
        self._terminate(signal.SIGKILL)
        self._remove_stale_lock()

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        """Stop the daemon and start it again on the same ports with the same repository.

        Raises:
            IpfsNodeError: it does not come back within ``timeout`` seconds.
        """
        self.stop()
        self._wait_ports_free(timeout)
        self.start(timeout)

    def _wait_ports_free(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while _port_in_use(self.api_port) or _port_in_use(self.swarm_port):
            if time.monotonic() > deadline:
                raise IpfsNodeError(
                    f"ports {self.api_port}/{self.swarm_port} still in use after {timeout:.0f} s"
                )
            time.sleep(0.05)

    def _remove_stale_lock(self) -> None:
        """Remove ``repo.lock`` (js-ipfs would refuse to start for 20 s); only when no daemon runs."""
        if self.running:
            return
        lock = self.repo / "repo.lock"
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def __enter__(self) -> IpfsNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"IpfsNode({self.api_url}, repo={str(self.repo)!r}, running={self.running})"


def main(argv: list[str] | None = None) -> int:
    """``install``: install the node into the cache; ``run``: start one and wait for Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "install"
    started = time.monotonic()
    path = install()
    print(f"installed in {path} ({time.monotonic() - started:.1f} s)")
    if command == "run":
        with tempfile.TemporaryDirectory(prefix="orbit-ipfs-") as tmp, IpfsNode(Path(tmp) / "repo") as node:
            print(
                f"IPFS_API={node.api_url}  peer {node.peer_id}  started in {node.startup_s:.1f} s", flush=True
            )
            with contextlib.suppress(KeyboardInterrupt):
                while node.running:
                    time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
