"""``orbit serve``: the daemon that owns the directory (see :mod:`orbit.serve`), and its command runner.

The daemon runs ``orbit`` command lines sent by clients (``POST /api/v1/cli``) in its request threads,
against its open OrbitDB (:func:`orbit.cli._session.hosting`). Each command's output is captured for
its request: commands print to the streams their :class:`~orbit.cli._output.Output` was given, and
what prints to ``sys.stdout``/``sys.stderr`` directly (argparse's help) or reads ``sys.stdin`` goes
through :class:`_ThreadStreams`, installed once when the daemon starts, which hands each thread the
streams of the request it runs (a context variable), and the process's own streams otherwise.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ipfs_log.errors import OrbitError
from orbit.cli._output import CliError, Output

if TYPE_CHECKING:
    from orbit.serve.protocol import CommandRequest, CommandResult

__all__ = ["add_serve", "cmd_serve", "install_streams", "run_hosted"]

MainFunction = Callable[[list[str], IO[str], IO[str]], int]
"""``main(argv, stdout, stderr) -> status`` (the command line's entry point, handed in by ``_main``)."""

_STREAMS: ContextVar[tuple[IO[str], IO[str], IO[str]] | None] = ContextVar(
    "orbit_serve_streams", default=None
)


class _ThreadStreams:
    """Stands for ``sys.stdin``/``stdout``/``stderr``: the current request's stream, else the process's."""

    def __init__(self, index: int, process: IO[str]) -> None:
        self._index = index
        self._process = process

    def _current(self) -> IO[str]:
        streams = _STREAMS.get()
        return self._process if streams is None else streams[self._index]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())


def install_streams() -> None:
    """Put the per-request dispatchers in place of ``sys.stdin``, ``stdout`` and ``stderr`` (idempotent)."""
    if not isinstance(sys.stdin, _ThreadStreams):
        sys.stdin = _ThreadStreams(0, sys.stdin)
    if not isinstance(sys.stdout, _ThreadStreams):
        sys.stdout = _ThreadStreams(1, sys.stdout)
    if not isinstance(sys.stderr, _ThreadStreams):
        sys.stderr = _ThreadStreams(2, sys.stderr)


def run_hosted(main: MainFunction, orbit: Any, node: str | None, request: CommandRequest) -> CommandResult:
    """Run one command line against the daemon's ``orbit``, its output captured for this request."""
    from orbit.cli._session import hosting

    stdout, stderr = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(request.stdin or b""), encoding="utf-8")
    token = _STREAMS.set((stdin, stdout, stderr))
    try:
        with hosting(orbit, node, Path(request.cwd) if request.cwd else None):
            status = main(list(request.argv), stdout, stderr)
    finally:
        _STREAMS.reset(token)
    from orbit.serve.protocol import CommandResult

    return CommandResult(status, stdout.getvalue(), stderr.getvalue())


def add_serve(add: Callable[..., argparse.ArgumentParser], main: MainFunction) -> None:
    """Add the ``serve`` subcommand with ``add`` (``_main``'s helper); commands sent to it run ``main``."""

    def command(args: argparse.Namespace, out: Output) -> int:
        return cmd_serve(args, out, main)

    p = add(
        "serve",
        "own the directory: replicate its databases, serve the HTTP API and the explorer",
        command,
        description="Runs until Ctrl-C (or SIGTERM): opens the directory and every database in it, "
        "replicates them through the IPFS node (--ipfs or IPFS_API) if one is given, and serves the HTTP "
        "API (OpenAPI at /openapi.json) and the explorer (/) on 127.0.0.1. Its address goes into the "
        "directory's `api` file; every request needs the token of `api.token` (mode 0600). While it runs, "
        "every orbit command on the directory goes through it.",
    )
    p.add_argument("--port", type=int, default=0, help="the TCP port (default 0: a free one, printed)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDR",
        help="the address to listen on (default 127.0.0.1; anything else is reachable from the network)",
    )
    p.add_argument(
        "--no-token",
        action="store_true",
        help="let requests in without the token (refused unless --host is a loopback address)",
    )


def cmd_serve(args: argparse.Namespace, out: Output, main: MainFunction) -> int:
    """``orbit serve``: serve the directory until Ctrl-C or SIGTERM."""
    from orbit.serve.daemon import Daemon

    try:
        daemon = Daemon(
            args.dir,
            host=args.host,
            port=args.port,
            ipfs=args.ipfs,
            token=not args.no_token,
            passphrase=os.environ.get("ORBIT_PASSPHRASE"),
            run_command=lambda request: _run(daemon, main, request),
        )
    except OrbitError as e:  # ServeError: a bad --host or --port
        raise CliError(str(e), 2 if "refusing" in str(e) or "port" in str(e) else 1) from None

    def ready(url: str, token: str | None) -> None:
        explorer = url + "/" + ("" if token is None else f"#token={token}")
        if out.json:
            out.document({"url": url, "directory": str(Path(args.dir).resolve()), "explorer": explorer})
        else:
            out.line(f"serving {args.dir} at {url}" + (f" through {args.ipfs}" if args.ipfs else ""))
            out.line(f"explorer: {explorer}")
            out.line("Ctrl-C stops")
        out.stdout.flush()

    install_streams()
    daemon.serve(ready)
    return 0


def _run(daemon: Any, main: MainFunction, request: CommandRequest) -> CommandResult:
    api = daemon.api
    if api is None:
        raise CliError("the daemon is not serving yet")
    return run_hosted(main, api.orbit, api.node, request)
