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
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import npm_cache
from tests.daemon import STOP_TIMEOUT_S, DaemonError, LoopbackDaemon, free_port, run_command

__all__ = ["NODE_FILES", "IpfsNode", "IpfsNodeError", "cache_root", "free_port", "install"]

NODE_FILES = Path(__file__).resolve().parent.parent / "ipfs-node"
"""The project's files that define the node: package.json, package-lock.json, with-resolvers.cjs."""

INSTALL_TIMEOUT_S = 900.0


class IpfsNodeError(DaemonError):
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


class IpfsNode(LoopbackDaemon):
    """One js-ipfs daemon on loopback with its repository in ``repo``.

    Args:
        repo: the node's repository directory (created and initialised by :meth:`start` if empty).
        install_dir: where the npm packages are (default: :func:`install`).
        api_port: the RPC API port (default: a free one, kept across restarts).
        swarm_port: the libp2p TCP port (default: a free one, kept across restarts).
    """

    error = IpfsNodeError
    kind = "IPFS"

    def __init__(
        self,
        repo: Path,
        *,
        install_dir: Path | None = None,
        api_port: int | None = None,
        swarm_port: int | None = None,
    ) -> None:
        super().__init__(repo, api_port=api_port, swarm_port=swarm_port)
        self._install_dir = install_dir

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

    def daemon_argv(self) -> list[str]:
        """``ipfs daemon --enable-preload=false`` run by node with the two polyfills."""
        return [*self._cli(), "daemon", "--enable-preload=false"]

    def env(self) -> dict[str, str]:
        """This process's environment with ``IPFS_PATH``, and no monitoring or debug output."""
        return {**os.environ, "IPFS_PATH": str(self.repo), "IPFS_MONITORING": "", "DEBUG": ""}

    def init(self) -> None:
        """Create the repository (``init --profile test --empty-repo``) and write the loopback config.

        Raises:
            IpfsNodeError: init failed or took longer than a minute.
        """
        self.repo.mkdir(parents=True, exist_ok=True)
        run_command(
            [*self._cli(), "init", "--profile", "test", "--empty-repo"],
            cwd=self.repo,
            timeout=60,
            what=f"`ipfs init` in {self.repo}",
            error=IpfsNodeError,
            env=self.env(),
        )
        self.write_config()

    def config_settings(self) -> dict[str, Any]:
        """The settings written over ``init --profile test``'s config, dotted key to JSON value."""
        return {
            "Addresses.API": f"/ip4/127.0.0.1/tcp/{self.api_port}",
            "Addresses.Gateway": "",
            "Addresses.RPC": "",
            "Addresses.Swarm": [f"/ip4/127.0.0.1/tcp/{self.swarm_port}"],
            "Addresses.Announce": [],
            "Addresses.NoAnnounce": [],
            "Addresses.Delegates": [],
            "Bootstrap": [],
            "Discovery.MDNS": {"Enabled": False},
            "Discovery.webRTCStar": {"Enabled": False},
            "Routing": {"Type": "none"},
            "Swarm.DisableNatPortMap": True,
            "Pubsub": {"Router": "gossipsub", "Enabled": True},
        }

    def clear_stale_lock(self) -> None:
        """Remove ``repo.lock`` (js-ipfs would refuse to start for 20 s); only when no daemon runs."""
        if self.running:
            return
        lock = self.repo / "repo.lock"
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after ``timeout`` seconds) and clear its lock."""
        super().stop(timeout)
        self.clear_stale_lock()

    def kill(self) -> None:
        """Kill the daemon with SIGKILL, as a crash would, and clear the lock it leaves behind."""
        super().kill()
        self.clear_stale_lock()


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
