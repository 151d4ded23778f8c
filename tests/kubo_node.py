"""A real Kubo node for tests and benchmarks, built from the project's own Go module and started on loopback.

Kubo (``github.com/ipfs/kubo``) is the IPFS daemon users run. It is built from source with the machine's
Go client, never downloaded as a binary:

- ``kubo/`` at the repository root is a tiny wrapper Go module (``go.mod`` + ``go.sum``) that requires the
  pinned Kubo release (``go install …@VERSION`` refuses Kubo's own ``go.mod``, which has ``exclude`` and
  ``replace`` lines; the wrapper repeats what it needs of them). :func:`build` runs ``go build
  github.com/ipfs/kubo/cmd/ipfs`` inside it into ``~/.cache/orbit/kubo-<version>/ipfs``
  (``$ORBIT_KUBO_CACHE`` overrides ``~/.cache/orbit``), once, under a file lock so that concurrent pytest
  processes build once. A stamp beside the binary records the wrapper it was built from: a change of
  ``kubo/go.mod`` or ``kubo/go.sum`` rebuilds it.
- ``KUBO_VERSION=vX.Y.Z`` selects another release for an optional run: its wrapper module is generated in
  the cache (``go mod init``, Kubo's own ``exclude``/``replace`` directives copied, ``go mod tidy``).
- :class:`KuboNode` (a :class:`tests.daemon.LoopbackDaemon`, like :class:`tests.ipfs_node.IpfsNode`)
  inits a repository (``ipfs init --profile test``), configures it to stay on loopback (free ports, TCP
  only, no gateway, bootstrap, mDNS, routing, relays or AutoTLS; pubsub and stream mounting on), starts
  ``ipfs daemon`` and waits, bounded, for ``POST /api/v0/id`` to answer. It can stop, restart and kill
  it. A node dies with the Python process that started it (Linux: ``PR_SET_PDEATHSIG``).

Every failure raises :class:`KuboNodeError` with the command and the tail of the node's log: a test
fixture built on this fails, it never skips.

By hand: ``python -m tests.kubo_node path`` (prints the binary, building it if missing), ``... build``,
``... run [REPO]`` (a node in the foreground; prints its API URL; Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from tests.daemon import DaemonError, LoopbackDaemon, free_port, run_command
from tests.npm_cache import file_lock

__all__ = [
    "MODULE",
    "KuboNode",
    "KuboNodeError",
    "binary_path",
    "build",
    "cache_root",
    "free_port",
    "pinned_version",
    "version",
]

MODULE = Path(__file__).resolve().parent.parent / "kubo"
"""The wrapper Go module that pins the Kubo release (go.mod, go.sum, tools.go)."""

KUBO_PACKAGE = "github.com/ipfs/kubo"
BUILD_TIMEOUT_S = 3600.0  # a cold build with module downloads takes minutes on 2 cores
COMMAND_TIMEOUT_S = 60.0
_STAMP = "ipfs.built"
_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


class KuboNodeError(DaemonError):
    """Kubo could not be built, or a node could not be initialised, started or stopped.

    Attributes:
        command: the command that failed, if one did.
        log_tail: the end of its output or of the node's log, if there is one.
    """


# --- building ----------------------------------------------------------------------------------------------


def pinned_version(module: Path = MODULE) -> str:
    """Return the Kubo release the wrapper module requires (e.g. ``v0.43.1``)."""
    text = (module / "go.mod").read_text()
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(KUBO_PACKAGE)}\s+(v\S+)", text, re.MULTILINE)
    if found is None:
        raise KuboNodeError(f"{module / 'go.mod'} does not require {KUBO_PACKAGE}")
    return found.group(1)


def version() -> str:
    """Return the Kubo release to use: ``$KUBO_VERSION`` if set, else the pinned one."""
    chosen = os.environ.get("KUBO_VERSION", "").strip()
    if not chosen:
        return pinned_version()
    if not chosen.startswith("v"):
        chosen = "v" + chosen
    if not _VERSION_RE.match(chosen):
        raise KuboNodeError(f"KUBO_VERSION={chosen!r} is not a release version such as v0.43.1")
    return chosen


def cache_root() -> Path:
    """Return the directory under which Kubo builds are cached (outside the repository)."""
    chosen = os.environ.get("ORBIT_KUBO_CACHE")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orbit"


def binary_path(kubo_version: str | None = None, root: Path | None = None) -> Path:
    """Return where the ``ipfs`` binary of ``kubo_version`` is (or will be) cached."""
    return (root or cache_root()) / f"kubo-{kubo_version or version()}" / "ipfs"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise KuboNodeError(
            "building Kubo needs Go on PATH (Go 1.26 was tested; Debian's Go 1.19 is too old)"
        )
    return go


def _run(
    argv: Sequence[str], *, cwd: Path, timeout: float, what: str, env: dict[str, str] | None = None
) -> str:
    """Run a command to completion, bounded; return its stdout or raise :class:`KuboNodeError`."""
    return run_command(argv, cwd=cwd, timeout=timeout, what=what, error=KuboNodeError, env=env)


def _module_digest(module: Path) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update(name.encode() + b"\0" + (module / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _binary_version(binary: Path) -> str:
    """The version a built binary reports (``ipfs version --number``), e.g. ``0.43.1``."""
    return _run(
        [str(binary), "version", "--number"],
        cwd=binary.parent,
        timeout=COMMAND_TIMEOUT_S,
        what=f"`{binary} version`",
        env={**os.environ, "IPFS_PATH": str(binary.parent / "no-repo")},
    ).strip()


def _is_built(binary: Path, kubo_version: str, digest: str) -> bool:
    """Whether ``binary`` is a complete build of ``kubo_version`` from the wrapper with ``digest``.

    A binary without a stamp (built by hand into the cache) is adopted if it reports the right version.
    """
    if not binary.is_file():
        return False
    stamp = binary.with_name(_STAMP)
    try:
        record: dict[str, Any] = json.loads(stamp.read_text())
    except (OSError, ValueError):
        record = {}
    if record:
        return record.get("version") == kubo_version and record.get("module") == digest
    try:
        reported = _binary_version(binary)
    except KuboNodeError:
        return False
    if reported != kubo_version.removeprefix("v"):
        return False
    stamp.write_text(json.dumps({"version": kubo_version, "module": digest, "adopted": time.time()}))
    return True


def _generated_module(kubo_version: str, directory: Path, timeout: float) -> Path:
    """Write a wrapper module for a Kubo release other than the pinned one into ``directory``.

    Kubo's own ``exclude`` and ``replace`` directives are copied into it (a dependency's do not apply to
    the main module, and Kubo's build needs them).
    """
    go = _go()
    module = directory / "module"
    if (module / "go.sum").exists() and pinned_version(module) == kubo_version:
        return module
    if module.exists():
        shutil.rmtree(module)
    module.mkdir(parents=True)
    deadline = time.monotonic() + timeout

    def run(*args: str) -> str:
        return _run(
            [go, *args], cwd=module, timeout=max(1.0, deadline - time.monotonic()), what=f"`go {args[0]}`"
        )

    run("mod", "init", "orbit.local/kubo")
    (module / "tools.go").write_text(
        '//go:build tools\n\npackage kubo\n\nimport _ "github.com/ipfs/kubo/cmd/ipfs"\n'
    )
    info = json.loads(run("mod", "download", "-json", f"{KUBO_PACKAGE}@{kubo_version}"))
    kubo_mod = json.loads(run("mod", "edit", "-json", str(info["GoMod"])))
    edits = [f"-require={KUBO_PACKAGE}@{kubo_version}"]
    for excluded in kubo_mod.get("Exclude") or ():
        edits.append(f"-exclude={excluded['Path']}@{excluded['Version']}")
    for replaced in kubo_mod.get("Replace") or ():
        old, new = replaced["Old"], replaced["New"]
        if not new.get("Version"):
            raise KuboNodeError(
                f"Kubo {kubo_version} replaces {old['Path']} with a local directory ({new['Path']}): "
                "it cannot be built from its module"
            )
        left = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        edits.append(f"-replace={left}={new['Path']}@{new['Version']}")
    run("mod", "edit", *edits)
    run("mod", "tidy")
    return module


def build(
    kubo_version: str | None = None, root: Path | None = None, timeout: float = BUILD_TIMEOUT_S
) -> Path:
    """Build Kubo's ``ipfs`` into the cache, once; return the binary's path.

    Args:
        kubo_version: the release (default: :func:`version`, i.e. ``$KUBO_VERSION`` or the pinned one).
        root: the cache root (default: :func:`cache_root`).
        timeout: the longest the whole build may take, in seconds.

    Raises:
        KuboNodeError: Go is missing, the build fails or takes longer than ``timeout``.
    """
    kubo_version = kubo_version or version()
    binary = binary_path(kubo_version, root)
    pinned = kubo_version == pinned_version()
    if pinned and _is_built(binary, kubo_version, _module_digest(MODULE)):
        return binary
    with file_lock(binary.parent.with_name(f"{binary.parent.name}.lock"), timeout, KuboNodeError):
        started = time.monotonic()
        module = MODULE if pinned else _generated_module(kubo_version, binary.parent, timeout)
        digest = _module_digest(module)
        if _is_built(binary, kubo_version, digest):
            return binary
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(f"ipfs.partial-{os.getpid()}")
        argv = [_go(), "build", "-trimpath", "-o", str(partial), f"{KUBO_PACKAGE}/cmd/ipfs"]
        try:
            _run(
                argv,
                cwd=module,
                timeout=max(1.0, timeout - (time.monotonic() - started)),
                what=f"building Kubo {kubo_version}",
            )
            reported = _binary_version(partial)
            if reported != kubo_version.removeprefix("v"):
                raise KuboNodeError(f"the build of Kubo {kubo_version} reports version {reported}")
            partial.replace(binary)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        binary.with_name(_STAMP).write_text(
            json.dumps(
                {
                    "version": kubo_version,
                    "module": digest,
                    "build_s": round(time.monotonic() - started, 1),
                    "size": binary.stat().st_size,
                    "built": time.time(),
                }
            )
        )
    return binary


# --- processes ---------------------------------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubo-spawner")
"""Daemons are forked from this one long-lived thread: ``PR_SET_PDEATHSIG`` fires when the *thread* that
forked a child ends, so forking from a short-lived test thread would kill its node with that thread."""


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _spawn(argv: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it; we stop it
            preexec_fn=_die_with_parent(),
        )

    return _spawner.submit(spawn).result(timeout=COMMAND_TIMEOUT_S)


# --- the node ----------------------------------------------------------------------------------------------


class KuboNode(LoopbackDaemon):
    """One Kubo daemon on loopback with its repository in ``repo``.

    Args:
        repo: the node's repository directory (created and initialised by :meth:`start` if empty).
        binary: the ``ipfs`` binary (default: :func:`build`).
        api_port: the RPC API port (default: a free one, kept across restarts).
        swarm_port: the libp2p TCP port (default: a free one, kept across restarts).
        gateway_port: serve the HTTP gateway on this port (default: no gateway).
        config: extra ``ipfs config --json`` settings, dotted key to value, applied after the defaults.
        auth: the ``Authorization`` header value the node's own readiness check sends, for a node whose
            config sets ``API.Authorizations`` (e.g. ``"Bearer <token>"``).
    """

    error = KuboNodeError
    kind = "Kubo"

    def __init__(
        self,
        repo: Path,
        *,
        binary: Path | None = None,
        api_port: int | None = None,
        swarm_port: int | None = None,
        gateway_port: int | None = None,
        config: dict[str, Any] | None = None,
        auth: str | None = None,
    ) -> None:
        super().__init__(repo, api_port=api_port, swarm_port=swarm_port)
        self._binary = binary
        self.gateway_port = gateway_port
        self.extra_config = dict(config or {})
        self.auth = auth

    @property
    def binary(self) -> Path:
        """The ``ipfs`` binary this node runs (built on first use)."""
        if self._binary is None:
            self._binary = build()
        return self._binary

    def daemon_argv(self) -> list[str]:
        """``ipfs daemon``."""
        return [str(self.binary), "daemon"]

    def env(self) -> dict[str, str]:
        """This process's environment without ``IPFS_*``/``LIBP2P_*``, with ``IPFS_PATH`` and no telemetry."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("IPFS_", "LIBP2P_"))}
        # IPFS_TELEMETRY=off: no usage reports (Kubo 0.36+ sends them by default; the host has no internet).
        return {**env, "IPFS_PATH": str(self.repo), "IPFS_TELEMETRY": "off"}

    def listen_ports(self) -> list[int]:
        """The API and swarm ports, and the gateway's if it has one."""
        return [port for port in (self.api_port, self.swarm_port, self.gateway_port) if port]

    def request_headers(self) -> dict[str, str]:
        """``Authorization: <auth>`` if the node was given ``auth``."""
        return {"Authorization": self.auth} if self.auth else {}

    def config_settings(self) -> dict[str, Any]:
        """The settings written over ``ipfs init --profile test``'s config, dotted key to JSON value."""
        gateway = [f"/ip4/127.0.0.1/tcp/{self.gateway_port}"] if self.gateway_port else []
        settings: dict[str, Any] = {
            "Addresses.API": f"/ip4/127.0.0.1/tcp/{self.api_port}",
            "Addresses.Gateway": gateway,
            "Addresses.Swarm": [f"/ip4/127.0.0.1/tcp/{self.swarm_port}"],
            "Addresses.Announce": [],
            "Addresses.AppendAnnounce": [],
            "Addresses.NoAnnounce": [],
            "Bootstrap": [],
            "Discovery.MDNS.Enabled": False,
            "Routing.Type": "none",
            "Pubsub.Enabled": True,
            "Pubsub.Router": "gossipsub",
            "Experimental.Libp2pStreamMounting": True,
            "AutoTLS.Enabled": False,
            "AutoConf.Enabled": False,
            "Swarm.DisableNatPortMap": True,
            "Swarm.EnableHolePunching": False,
            "Swarm.RelayClient.Enabled": False,
            "Swarm.RelayService.Enabled": False,
            "Swarm.Transports.Network.QUIC": False,
            "Swarm.Transports.Network.WebTransport": False,
            "Swarm.Transports.Network.WebRTCDirect": False,
            "Swarm.Transports.Network.Websocket": False,
            "Swarm.Transports.Network.Relay": False,
        }
        settings.update(self.extra_config)
        return settings

    def init(self) -> None:
        """Create the repository (``ipfs init --profile test``) and write the loopback config.

        Raises:
            KuboNodeError: init failed or took longer than a minute.
        """
        self.repo.mkdir(parents=True, exist_ok=True)
        _run(
            [str(self.binary), "init", "--profile", "test"],
            cwd=self.repo,
            timeout=COMMAND_TIMEOUT_S,
            what=f"`ipfs init` in {self.repo}",
            env=self.env(),
        )
        self.write_config()

    def spawn(self, argv: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Write a header line to the log, then fork the daemon from the long-lived spawner thread.

        The daemon gets SIGKILL when this Python process dies (Linux: ``PR_SET_PDEATHSIG``).
        """
        log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        return _spawn(argv, self.env(), log)

    def clear_stale_lock(self) -> None:
        """Remove a ``repo.lock`` that has content and that no process holds.

        Kubo locks an empty ``repo.lock`` with ``fcntl(F_SETLK)`` and refuses a non-empty one ("has non-zero
        size"). A SIGKILLed daemon leaves the empty file and no lock, which is harmless; a file with content
        (what js-ipfs leaves, and what tests simulate) would stop the node for good. A lock held by a
        running daemon is left alone: starting then fails and says why.
        """
        lock = self.repo / "repo.lock"
        try:
            handle = open(lock, "rb+")  # noqa: SIM115 (closed below; must stay open while locked)
        except FileNotFoundError:
            return
        with handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return
            if os.fstat(handle.fileno()).st_size:
                lock.unlink()

    def kill(self) -> None:
        """Kill the daemon with SIGKILL, as a crash would (Kubo's repo lock is an flock: nothing stale)."""
        super().kill()


# --- command line ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``path``: print the binary (building it if missing); ``build``: build it; ``run``: start a node."""
    parser = argparse.ArgumentParser(prog="python -m tests.kubo_node", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("path", help="print the ipfs binary's path, building it first if missing")
    commands.add_parser("build", help="build the ipfs binary into the cache (once)")
    run = commands.add_parser("run", help="start a node in the foreground until Ctrl-C")
    run.add_argument("repo", nargs="?", type=Path, help="its repository (default: a temporary one)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    binary = build()
    if args.command == "path":
        print(binary)
        return 0
    took = time.monotonic() - started
    print(
        f"Kubo {version()}: {binary} ({took:.1f} s)", file=sys.stderr if args.command == "run" else sys.stdout
    )
    if args.command == "run":
        with contextlib.ExitStack() as stack:
            repo = (
                args.repo
                or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orbit-kubo-"))) / "repo"
            )
            node = stack.enter_context(KuboNode(repo, binary=binary))
            print(node.api_url, flush=True)
            print(
                f"peer {node.peer_id}, {node.agent_version}, started in {node.startup_s:.1f} s; "
                f"log {node.log_path}; Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            assert node.process is not None
            with contextlib.suppress(KeyboardInterrupt):
                node.process.wait()  # until Ctrl-C, or the daemon exits by itself
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
