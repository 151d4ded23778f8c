"""What the test IPFS daemons share: one process on loopback, its ports, its log, and bounded waits.

:class:`LoopbackDaemon` holds the life cycle of an IPFS daemon that serves the Kubo HTTP RPC API on
127.0.0.1 with its repository in a directory: init the repository if it has none, write its loopback
config, check that its ports are free, start it with its output in ``<repo>.log``, wait (bounded) for
``POST /api/v0/id`` to answer, then stop it (SIGTERM, then SIGKILL), kill it, or restart it on the same
ports. :class:`tests.kubo_node.KuboNode` (Kubo) and :class:`tests.ipfs_node.IpfsNode` (js-ipfs) say only
what differs: the command line, the environment, the config, what a stale repository lock is, and how the
process is spawned. Every failure raises the subclass's :class:`DaemonError`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Self

import httpx

__all__ = [
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "DaemonError",
    "LoopbackDaemon",
    "free_port",
    "port_in_use",
    "read_tail",
    "run_command",
]

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class DaemonError(RuntimeError):
    """A test daemon (or the command that prepares it) could not be built, started or stopped.

    Attributes:
        command: the command that failed, if one did.
        log_tail: the end of its output or of the daemon's log, if there is one.
    """

    def __init__(self, message: str, *, command: Sequence[str] | None = None, log_tail: str | None = None):
        self.command = list(command) if command is not None else None
        self.log_tail = log_tail
        parts = [message]
        if self.command is not None:
            parts.append(f"command: {' '.join(self.command)}")
        if log_tail:
            parts.append(f"log:\n{log_tail}")
        super().__init__("\n".join(parts))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_tail(path: Path, limit: int = 3000) -> str:
    """Return the last ``limit`` characters of the text file ``path``, or ``"(no log)"``."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    what: str,
    error: type[DaemonError],
    env: dict[str, str] | None = None,
) -> str:
    """Run a command to completion, bounded; return its stdout.

    Raises:
        error: the command took longer than ``timeout`` seconds or exited with a non-zero status (with
            the tail of its stderr, or of its stdout if stderr is empty).
    """
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise error(f"{what} took longer than {timeout:.0f} s", command=argv) from e
    if done.returncode != 0:
        raise error(
            f"{what} failed with status {done.returncode}",
            command=argv,
            log_tail=(done.stderr or done.stdout)[-4000:],
        )
    return done.stdout


class LoopbackDaemon:
    """One IPFS daemon on loopback with its repository in ``repo``; subclasses say which daemon.

    A subclass sets :attr:`error` and :attr:`kind` and provides :meth:`daemon_argv`, :meth:`env`,
    :meth:`init` and :meth:`config_settings`; it may override :meth:`listen_ports`,
    :meth:`clear_stale_lock`, :meth:`request_headers` and :meth:`spawn`.

    Args:
        repo: the daemon's repository directory (created and initialised by :meth:`start` if empty).
        api_port: the RPC API port (default: a free one, kept across restarts).
        swarm_port: the libp2p TCP port (default: a free one, kept across restarts).

    Attributes:
        process: the running daemon, or None.
        peer_id, agent_version: from ``POST /api/v0/id`` once started.
        log_path: where the daemon's output goes (``<repo>.log`` beside the repository).
        startup_s: how long the last start took, in seconds.
    """

    error: ClassVar[type[DaemonError]] = DaemonError
    """The exception every failure raises."""
    kind: ClassVar[str] = "IPFS"
    """The daemon's name in messages ("the <kind> node in …")."""

    def __init__(self, repo: Path, *, api_port: int | None = None, swarm_port: int | None = None) -> None:
        self.repo = Path(repo)
        self.api_port = api_port or free_port()
        self.swarm_port = swarm_port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.peer_id: str | None = None
        self.agent_version: str | None = None
        self.log_path = self.repo.parent / f"{self.repo.name}.log"
        self.startup_s: float | None = None
        self._lock = threading.Lock()

    # --- what a subclass provides ----------------------------------------------------------------------

    def daemon_argv(self) -> list[str]:
        """The command line that runs the daemon in the foreground."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """The environment of every command run on the repository (``IPFS_PATH`` points at it)."""
        raise NotImplementedError

    def init(self) -> None:
        """Create the repository and write the loopback config (:meth:`write_config`)."""
        raise NotImplementedError

    def config_settings(self) -> dict[str, Any]:
        """The settings written over the initialised config, dotted key to JSON value."""
        raise NotImplementedError

    def listen_ports(self) -> list[int]:
        """The ports the daemon listens on, which must be free before it starts."""
        return [self.api_port, self.swarm_port]

    def clear_stale_lock(self) -> None:
        """Remove a repository lock a dead daemon left behind, if it would stop a start (default: none)."""

    def request_headers(self) -> dict[str, str]:
        """Headers the readiness check sends (default: none)."""
        return {}

    def spawn(self, argv: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a session of its own with its output in ``log``."""
        return subprocess.Popen(
            argv,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it; we stop it
        )

    # --- addresses and state ---------------------------------------------------------------------------

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
            raise self.error("the node has not started yet: its peer id is unknown")
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, limit: int = 3000) -> str:
        """The last ``limit`` characters of the daemon's log."""
        return read_tail(self.log_path, limit)

    # --- life cycle ------------------------------------------------------------------------------------

    def write_config(self) -> None:
        """Apply :meth:`config_settings` to the repository's config file (one write, no daemon running)."""
        path = self.repo / "config"
        config: dict[str, Any] = json.loads(path.read_text())
        for dotted, value in self.config_settings().items():
            *parents, last = dotted.split(".")
            section = config
            for key in parents:
                child = section.get(key)
                if not isinstance(child, dict):
                    child = section[key] = {}
                section = child
            section[last] = value
        path.write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the daemon (initialising the repository first if needed); return once the API answers.

        Raises:
            DaemonError: (the subclass's) a port is taken, the daemon exits, or ``POST /api/v0/id`` does
                not answer 200 within ``timeout`` seconds. The error carries the command and the log's tail.
        """
        with self._lock:
            if self.running:
                return
            for port in self.listen_ports():
                if port_in_use(port):
                    raise self.error(
                        f"port {port} on 127.0.0.1 is taken: cannot start the node in {self.repo}"
                    )
            if not (self.repo / "config").exists():
                self.init()
            self.clear_stale_lock()
            argv = self.daemon_argv()
            started = time.monotonic()
            with open(self.log_path, "ab") as log:
                self.process = self.spawn(argv, log)
            self._wait_ready(argv, started + timeout, timeout)
            self.startup_s = time.monotonic() - started

    def _wait_ready(self, argv: list[str], deadline: float, timeout: float) -> None:
        process = self.process
        assert process is not None
        with httpx.Client(timeout=2.0, headers=self.request_headers()) as client:
            while True:
                if process.poll() is not None:
                    self.process = None
                    raise self.error(
                        f"the {self.kind} node in {self.repo} exited with status {process.returncode} "
                        "while starting",
                        command=argv,
                        log_tail=self.log_tail(),
                    )
                try:
                    answer = client.post(f"{self.api_url}/api/v0/id")
                    if answer.status_code == 200:
                        record = answer.json()
                        self.peer_id = str(record["ID"])
                        self.agent_version = str(record.get("AgentVersion", ""))
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self._terminate(signal.SIGKILL)
                    raise self.error(
                        f"the {self.kind} node in {self.repo} did not answer POST {self.api_url}/api/v0/id "
                        f"within {timeout:.0f} s",
                        command=argv,
                        log_tail=self.log_tail(),
                    )
                time.sleep(0.05)

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
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired as e:
                    raise self.error(
                        f"the {self.kind} node in {self.repo} (pid {process.pid}) survived SIGKILL "
                        f"for {timeout:.0f} s",
                        log_tail=self.log_tail(),
                    ) from e
        self.process = None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        with self._lock:
            self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the daemon with SIGKILL, as a crash would."""
        with self._lock:
            self._terminate(signal.SIGKILL)

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        """Stop the daemon and start it again on the same ports with the same repository.

        Raises:
            DaemonError: (the subclass's) it does not come back within ``timeout`` seconds.
        """
        self.stop()
        self._wait_ports_free(timeout)
        self.start(timeout)

    def _wait_ports_free(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while port_in_use(self.api_port) or port_in_use(self.swarm_port):
            if time.monotonic() > deadline:
                raise self.error(
                    f"ports {self.api_port}/{self.swarm_port} still in use after {timeout:.0f} s"
                )
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api_url}, repo={str(self.repo)!r}, running={self.running})"
