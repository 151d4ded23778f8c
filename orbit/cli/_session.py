"""One command's hold on an OrbitDB directory: the :class:`~orbit.OrbitDB`, its registry, an IPFS node.

A :class:`Session` opens the directory for one command and finds a database by the name or address a
person typed, through the directory's registry (:mod:`orbit.registry`). Commands that need an IPFS
node call :meth:`Session.connect`: the directory is then reopened as ``OrbitDB(directory, ipfs=…)``, so
the library links each database opened to the node and replicates it for as long as the command runs.
Closing the directory runs :func:`shielded` from Ctrl-C.

While ``orbit serve`` runs on the directory, :func:`route` sends each command line to it (the daemon
holds the directory's lock, so nothing else may open it): the daemon runs the command against its own,
already open OrbitDB (:func:`hosting`: a :class:`Session` then uses that one and never closes it), and
the client prints what it printed. A stale ``api`` file (the daemon died) is ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from orbit.address import Manifest, is_address
from orbit.cli._output import CliError, Output, UsageError
from orbit.databases import Database
from orbit.errors import IpfsError, UnknownAddressError
from orbit.facade import OrbitDB
from orbit.registry import Registry, RegistryEntry
from orbit.serve.files import API_FILE

if TYPE_CHECKING:
    from orbit.ipfs.client import KuboClient
    from orbit.serve.client import DaemonClient

__all__ = [
    "ALL_TYPES",
    "NEEDS_NODE",
    "TIMEOUT",
    "TYPES",
    "Session",
    "check_name",
    "hosting",
    "route",
    "shielded",
    "typed",
]

TYPES: Final = ("eventlog", "keyvalue", "counter", "documents")
ALL_TYPES: Final = (*TYPES, "table")
"""What ``info``, ``log``, ``export`` and the node commands work on (``orbit sql`` reads tables)."""
NEEDS_NODE: Final = "needs an IPFS node (--ipfs URL or IPFS_API)"
TIMEOUT: Final = 30.0
"""Seconds a command waits for the network at most."""
REPLICATION: Final = {"interval": 10.0}
"""Replicator options of a command: it runs for a short while, so it announces its heads more often."""


class _Hosted(NamedTuple):
    orbit: OrbitDB
    node: str | None
    cwd: Path | None


_HOSTED: ContextVar[_Hosted | None] = ContextVar("orbit_cli_hosted", default=None)
_NOT_THROUGH_DAEMON: Final = {
    "serve": "the directory is already served",
    "demo": "`orbit demo` makes its own directories",
    "follow": "`orbit follow` reads the daemon's event stream from the client",
}
_PATH_ARGS: Final = ("file", "passphrase_file")
_MAX_STDIN: Final = 64 << 20


@contextlib.contextmanager
def hosting(orbit: OrbitDB, node: str | None, cwd: Path | None) -> Iterator[None]:
    """Run commands in this context against ``orbit``, the daemon's open directory (``orbit serve``).

    A :class:`Session` made in the block uses ``orbit`` (and ``node``, its IPFS node) and leaves it open;
    relative file arguments are taken from ``cwd``, the client's working directory.
    """
    token = _HOSTED.set(_Hosted(orbit, node, cwd))
    try:
        yield
    finally:
        _HOSTED.reset(token)


def route(args: argparse.Namespace, argv: list[str], out: Output) -> int | None:
    """Send the command to the daemon serving ``args.dir``, if one runs; its exit status, else None.

    Inside the daemon (:func:`hosting`), refuse what cannot run there and resolve file arguments;
    return None so that the command runs.

    Raises:
        UsageError: the command cannot run inside the daemon.
        CliError: interactive SQL, or a standard input too large, through the daemon.
        ServeError: the daemon refused the command.
    """
    command = getattr(args, "command", None)
    hosted = _HOSTED.get()
    if hosted is not None:
        if command in _NOT_THROUGH_DAEMON:
            why = _NOT_THROUGH_DAEMON[command]
            raise UsageError(f"`orbit {command}` does not run inside the daemon: {why}")
        if command == "id" and getattr(args, "id_command", None) == "import":
            raise CliError(
                f"`orbit id import` replaces the identity the daemon writes with: stop `orbit serve` on "
                f"{hosted.orbit.directory} first"
            )
        for attr in _PATH_ARGS:
            value = getattr(args, attr, None)
            if isinstance(value, str) and value != "-" and hosted.cwd is not None:
                setattr(args, attr, str(hosted.cwd / value))
        return None
    if command in ("serve", "demo"):
        return None
    directory = Path(args.dir)
    if not (directory / API_FILE).exists():
        return None
    from orbit.serve.client import DaemonGoneError, find_daemon
    from orbit.serve.protocol import CommandRequest

    client = find_daemon(directory)
    if client is None:
        return None
    with client:
        if command == "follow":
            return _follow(client, args, out)
        try:
            result = client.run(CommandRequest(tuple(argv), _stdin_for(args), os.getcwd()))
        except DaemonGoneError:
            return None  # a stale api file: its daemon died; the command opens the directory itself
    out.stdout.write(result.stdout)
    out.stdout.flush()
    out.stderr.write(result.stderr)
    return result.status


def _stdin_for(args: argparse.Namespace) -> bytes | None:
    """Standard input, read here for a command that reads it (``-`` arguments, SQL statements)."""
    reads = any(getattr(args, a, None) == "-" for a in ("value", "key_or_doc", "file", "passphrase_file"))
    if args.command == "sql" and args.statement is None:
        if sys.stdin.isatty():
            raise CliError(
                "interactive `orbit sql` does not go through `orbit serve`: give the SQL as an argument, "
                "or pipe statements on standard input"
            )
        reads = True
    if not reads:
        return None
    data = sys.stdin.buffer.read(_MAX_STDIN + 1)
    if len(data) > _MAX_STDIN:
        raise CliError(f"standard input is over {_MAX_STDIN >> 20} MiB: too large to send to `orbit serve`")
    return data


def _follow(client: DaemonClient, args: argparse.Namespace, out: Output) -> int:
    """``orbit follow`` through the daemon: its event stream, printed as ``orbit follow`` prints."""
    from orbit.cli._output import entry_summary, short_cid, short_did

    out.note(f"following {args.name} through `orbit serve` at {client.url} (Ctrl-C stops)")
    for event, data in client.events(args.name):
        if event == "overflow":
            raise CliError("the daemon dropped this stream (it fell behind); run `orbit follow` again")
        if event != "update":
            continue
        for e in data.get("entries", []):
            if out.json:
                out.document({k: e.get(k) for k in ("cid", "time", "writer", "payload")})
            else:
                out.line(
                    f"{short_cid(str(e.get('cid')))}  {e.get('time'):>4}  {short_did(str(e.get('writer')))}  "
                    f"{entry_summary(e.get('payload'))}"
                )
        out.stdout.flush()
    return 0


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold off Ctrl-C (SIGINT) while the block runs; raise KeyboardInterrupt after it if one came.

    Closing a directory (checkpoints, the block store) and rewriting the registry run shielded, so an
    interrupt never stops them halfway. Off the main thread signals cannot be caught; the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def check_name(name: str) -> None:
    """Refuse a database name a person could not type back.

    Raises:
        UsageError: the name is empty, unprintable, or starts with '-'.
    """
    if not name or not name.isprintable() or name.startswith("-"):
        raise UsageError(f"a database name is printable text not starting with '-': {name!r}")


def typed(db: Database[Any], type_name: str) -> Any:
    """``db``, checked to be of ``type_name`` (the registry said which; the manifest must agree).

    By name, not class: a command imports only its database's type (the caller annotates the result).

    Raises:
        CliError: it is not.
    """
    if db.store_type != type_name:
        raise CliError(f"{db.address} is a {db.store_type} database")
    return db


def _either(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]


class Session:
    """An OrbitDB directory opened for one command: the OrbitDB (and its lock) and the registry.

    Args:
        args: the command line (``dir``, ``ipfs``).
        out: where the command prints.
        create: make the directory if there is none (else a missing directory is an error).

    Raises:
        CliError: there is no orbit directory and ``create`` is false.
    """

    def __init__(self, args: argparse.Namespace, out: Output, *, create: bool = False) -> None:
        self.args = args
        self.out = out
        hosted = _HOSTED.get()
        self._hosted = hosted is not None
        self.directory = Path(args.dir) if hosted is None else hosted.orbit.directory
        self.node: str | None = None if hosted is None else hosted.node
        """The IPFS node's RPC URL, once :meth:`connect` linked the directory to it (the daemon's node)."""
        self._client: KuboClient | None = None
        if hosted is not None:  # inside `orbit serve`: the daemon's open directory, left open
            self.orbit = hosted.orbit
            self.registry = Registry(self.directory)
            return
        if not create and not (self.directory / "keystore").exists():
            raise CliError(
                f"no orbit directory at {self.directory}: create a database first "
                f"(`orbit create NAME --type T`), or pass --dir / set ORBIT_DIR"
            )
        self.orbit = OrbitDB(self.directory, passphrase=os.environ.get("ORBIT_PASSPHRASE"))
        self.registry = Registry(self.directory)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hosted:
            return
        try:
            with shielded():
                self.orbit.close()
        finally:
            if self._client is not None:
                self._client.close()

    def connect(self, what: str) -> None:
        """Reopen the directory linked to the IPFS node of ``--ipfs`` (or ``IPFS_API``).

        Databases opened from then on are linked to the node and replicated by the library
        (``OrbitDB(directory, ipfs=…)``) until the command ends. Once linked, it does nothing.

        Args:
            what: the command, for the error message.

        Raises:
            CliError: no node was named, or it does not answer.
        """
        if self._hosted:
            if self.node is None:
                raise CliError(
                    f"{what} {NEEDS_NODE}: `orbit serve` runs on {self.directory} without one "
                    f"(restart it with --ipfs URL)"
                )
            return
        if self._client is not None:  # linked already
            return
        url = self.args.ipfs
        if not url:
            raise CliError(f"{what} {NEEDS_NODE}")
        from orbit.ipfs.client import KuboClient  # here: only node commands load httpx

        client = KuboClient(url)
        try:
            client.id()
            with shielded():
                self.orbit.close()
            self.orbit = OrbitDB(
                self.directory,
                passphrase=os.environ.get("ORBIT_PASSPHRASE"),
                ipfs=client,
                replication=REPLICATION,
            )
        except IpfsError as e:
            client.close()
            raise CliError(f"{what} {NEEDS_NODE}: the node at {url} does not answer ({e})") from e
        except BaseException:
            client.close()
            raise
        self._client = client
        self.node = url

    def register(self, entry: RegistryEntry) -> None:
        """Add ``entry`` to the registry (shielded from Ctrl-C)."""
        with shielded():
            self.registry.add(entry)

    def new_entry(self, manifest: Manifest, as_name: str | None, index_by: str, again: str) -> RegistryEntry:
        """The registry entry of a database new here: named ``as_name``, or as its manifest says.

        Args:
            manifest: the database's manifest.
            as_name: the name asked for (``--as``), if any.
            index_by: a documents database's key field (``--index-by``).
            again: what the message tells to do again with another name (e.g. ``"import"``).

        Raises:
            UsageError: the name is not one a person could type.
            CliError: the name is taken by another database.
        """
        name = as_name or manifest.name
        check_name(name)
        taken = self.registry.get(name)
        if taken is not None:
            raise CliError(f"the name {name!r} is taken by {taken.address}; {again} with --as OTHER")
        options = {"index_by": index_by} if manifest.type == "documents" and index_by != "_id" else {}
        return RegistryEntry(name, manifest.address, manifest.type, options)

    def lookup(self, target: str) -> RegistryEntry:
        """The registry entry of a name or address, or a registered-like entry for a local address.

        Raises:
            CliError: no such database here.
        """
        entry = self.registry.by_address(target) if is_address(target) else self.registry.get(target)
        if entry is not None:
            return entry
        if is_address(target):
            try:
                manifest = self.orbit.resolve(target)
            except UnknownAddressError:
                raise CliError(
                    f"database {target} is not in {self.directory}; fetching it from the network "
                    f"(`orbit open {target}`) {NEEDS_NODE}"
                ) from None
            return RegistryEntry(manifest.name, manifest.address, manifest.type)
        raise CliError(
            f"unknown database {target!r} in {self.directory}: `orbit ls` lists them, "
            f"`orbit create {target} --type T` creates one"
        )

    def open(
        self,
        target: str,
        command: str,
        types: tuple[str, ...],
        create_type: str | None = None,
        *,
        node: bool = False,
    ) -> tuple[Database[Any], RegistryEntry]:
        """Open a database by name or address for ``command``, which works on ``types``.

        Args:
            target: a name or an ``/orbitdb/`` address.
            command: the subcommand, for messages.
            types: the store types the command works on.
            create_type: create the database with this type if the name is unknown (a write's ``--type``).
            node: open it replicated through the IPFS node (see :meth:`connect`), once it was found here.

        Raises:
            CliError: the database is unknown, or of a type the command does not work on; with
                ``node``, no node answers.
        """
        if create_type is not None and create_type not in types:
            raise UsageError(f"`orbit {command}` works on {_either(types)} databases, not {create_type}")
        if create_type is not None and not is_address(target) and self.registry.get(target) is None:
            check_name(target)
            db = self.orbit.open(target, type=create_type)
            entry = RegistryEntry(target, db.address, create_type)
            self.register(entry)
            return db, entry
        entry = self.lookup(target)
        if entry.type not in types:
            works = f"`orbit {command}` works on {_either(types)} databases"
            raise CliError(f"{entry.name!r} is a {entry.type} database; {works}")
        if create_type is not None and create_type != entry.type:
            raise CliError(f"{entry.name!r} is a {entry.type} database, not {create_type}")
        if node:
            self.connect(command)
        return self.orbit.open(entry.address, **entry.options), entry
