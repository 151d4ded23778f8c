"""The subcommands: each a few lines over :class:`orbit.OrbitDB` and the directory's registry."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final, TypeVar

from ipfs_log.blockstore import MemoryBlockStore
from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind, encode
from ipfs_log.entry import Entry
from ipfs_log.errors import CodecError, OrbitError
from ipfs_log.identity import key_to_did
from orbit.address import Manifest, is_address
from orbit.car import car_bytes, read_car
from orbit.cli import _ipfs
from orbit.cli._graph import graph_rows
from orbit.cli._output import (
    CliError,
    Output,
    UsageError,
    from_json,
    parse_value,
    short_cid,
    short_did,
    to_json,
)
from orbit.databases import (
    CounterDatabase,
    Database,
    DocumentsDatabase,
    EventLogDatabase,
    KeyValueDatabase,
)
from orbit.errors import CarError, DatabaseError, UnknownAddressError
from orbit.facade import OrbitDB
from orbit.files import write_atomically
from orbit.keystore import export_identity, import_identity
from orbit.registry import Registry, RegistryEntry
from stores.errors import UnindexedFieldError

__all__ = ["Session", "shielded"]

TYPES: Final = ("eventlog", "keyvalue", "counter", "documents")
ALL_TYPES: Final = (*TYPES, "table")
"""What ``info``, ``log``, ``export`` and the node commands work on (``orbit sql`` reads tables)."""
_TIMEOUT: Final = 30.0
_MISSING: Any = object()
_D = TypeVar("_D", bound=Database[Any])
_PROGRESS_EVERY: Final = 1024


# ---------------------------------------------------------------------- interrupts


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


# ---------------------------------------------------------------------- a directory


class Session:
    """An OrbitDB directory opened for one command: the OrbitDB (and its lock) and the registry."""

    def __init__(self, args: argparse.Namespace, out: Output, *, create: bool = False) -> None:
        self.args = args
        self.out = out
        self.directory = Path(args.dir)
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
        with shielded():
            self.orbit.close()

    def register(self, entry: RegistryEntry) -> None:
        """Add ``entry`` to the registry (shielded from Ctrl-C)."""
        with shielded():
            self.registry.add(entry)

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
                    f"(`orbit open {target}`) {_ipfs.NEEDS_NODE}"
                ) from None
            return RegistryEntry(manifest.name, manifest.address, manifest.type)
        raise CliError(
            f"unknown database {target!r} in {self.directory}: `orbit ls` lists them, "
            f"`orbit create {target} --type T` creates one"
        )

    def open(
        self, target: str, command: str, types: tuple[str, ...], create_type: str | None = None
    ) -> tuple[Database[Any], RegistryEntry]:
        """Open a database by name or address for ``command``, which works on ``types``.

        Args:
            target: a name or an ``/orbitdb/`` address.
            command: the subcommand, for messages.
            types: the store types the command works on.
            create_type: create the database with this type if the name is unknown (a write's ``--type``).

        Raises:
            CliError: the database is unknown, or of a type the command does not work on.
        """
        if create_type is not None and create_type not in types:
            raise UsageError(f"`orbit {command}` works on {_either(types)} databases, not {create_type}")
        if create_type is not None and not is_address(target) and self.registry.get(target) is None:
            _check_name(target)
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
        return self.orbit.open(entry.address, **entry.options), entry


def _either(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]


def _check_name(name: str) -> None:
    if not name or not name.isprintable() or name.startswith("-"):
        raise UsageError(f"a database name is printable text not starting with '-': {name!r}")


def _as(db: Database[Any], cls: type[_D]) -> _D:
    """``db`` as the database class of its type (the registry said which; the manifest agrees)."""
    if not isinstance(db, cls):
        raise CliError(f"{db.address} is a {db.store_type} database")
    return db


# ---------------------------------------------------------------------- identity


def cmd_id(args: argparse.Namespace, out: Output) -> int:
    """``orbit id``: show this directory's identity (created on first use)."""
    with Session(args, out, create=True) as s:
        identity = s.orbit.identity
        if out.json:
            out.document({"did": identity.did, "public_key": identity.public_key.hex()})
        else:
            out.line(identity.did)
    return 0


def _passphrase(path: str | None) -> bytes | None:
    if path is None:
        return None
    data = _read_input(path, "passphrase file")
    return data.rstrip(b"\r\n")


def cmd_id_export(args: argparse.Namespace, out: Output) -> int:
    """``orbit id export [FILE]``: write the identity's keystore record (its secret key)."""
    with Session(args, out) as s:
        record = export_identity(s.orbit.identity, _passphrase(args.passphrase_file))
        did = s.orbit.identity.did
    if args.file in (None, "-"):
        out.stdout.write(record.decode())
        out.stdout.flush()
    else:
        _write_file(args.file, record, mode=0o600)
        if out.json:
            out.document({"did": did, "file": args.file, "encrypted": args.passphrase_file is not None})
        else:
            out.line(f"wrote the identity {did} to {args.file} (it holds the secret key: keep it safe)")
    return 0


def cmd_id_import(args: argparse.Namespace, out: Output) -> int:
    """``orbit id import FILE``: make a keystore record this directory's identity."""
    data = _read_input(args.file, "identity file")
    identity = import_identity(data, _passphrase(args.passphrase_file), where=args.file)
    directory = Path(args.dir)
    passphrase = os.environ.get("ORBIT_PASSPHRASE")
    if (directory / "keystore").exists():
        with Session(args, out) as s:
            current = s.orbit.identity
            if current.public_key != identity.public_key:
                if not args.force:
                    raise CliError(
                        f"{directory} already has the identity {current.did}; --force replaces it "
                        f"(databases only it may write become read-only here)"
                    )
                with shielded():
                    s.orbit.keystore.save(identity, passphrase)
    else:
        with shielded(), OrbitDB(directory, identity=identity, passphrase=passphrase):
            pass
    if out.json:
        out.document({"did": identity.did, "public_key": identity.public_key.hex()})
    else:
        out.line(f"identity of {directory} is now {identity.did}")
    return 0


# ---------------------------------------------------------------------- databases


def cmd_create(args: argparse.Namespace, out: Output) -> int:
    """``orbit create NAME --type T``: create a database and remember its name."""
    name = args.name
    _check_name(name)
    if is_address(name):
        raise UsageError(
            f"a name, not an address: {name!r} (`orbit open ADDRESS` adds a database by address)"
        )
    options: dict[str, Any] = {}
    if args.type == "documents":
        if args.index_by != "_id":
            options["index_by"] = args.index_by
        if args.index:
            options["indexes"] = list(dict.fromkeys(args.index))
    elif args.index or args.index_by != "_id":
        raise UsageError("--index and --index-by are options of documents databases")
    if args.type == "table":
        if not args.schema:
            raise UsageError("a table database needs --schema 'CREATE TABLE …'")
        options["schema"] = args.schema
    elif args.schema:
        raise UsageError("--schema is an option of table databases")
    with Session(args, out, create=True) as s:
        old = s.registry.get(name)
        if old is not None:
            raise CliError(
                f"database {name!r} already exists ({old.type}, {old.address}); `orbit drop {name}` first"
            )
        write: list[str] | str
        if "*" in args.write:
            if len(args.write) != 1:
                raise UsageError("--write takes '*' (anyone) or keys, not both")
            write = "*"
        else:
            write = [s.orbit.identity.did, *args.write]
        db = s.orbit.open(name, type=args.type, write=write, **options)
        options.pop("schema", None)  # in the manifest: the address carries it
        entry = RegistryEntry(name, db.address, args.type, options)
        s.register(entry)
        writers = db.manifest.writers
    if out.json:
        out.document({"name": name, "address": entry.address, "type": entry.type, "writers": writers})
    else:
        out.line(entry.address)
    return 0


def cmd_open(args: argparse.Namespace, out: Output) -> int:
    """``orbit open ADDRESS``: remember a database by its address."""
    address = args.address
    if not is_address(address):
        raise UsageError(f"not an /orbitdb/<cid> address: {address!r}")
    with Session(args, out, create=True) as s:
        entry = s.registry.by_address(address)
        if entry is None:
            try:
                manifest = s.orbit.resolve(address)
            except UnknownAddressError:
                replication = _ipfs.connect(args.ipfs, "opening a database that is not in this directory")
                try:
                    db = replication.open_remote(s.orbit, address, _TIMEOUT)
                    manifest = db.manifest
                finally:
                    replication.close()
            name = args.as_name or manifest.name
            _check_name(name)
            options = (
                {"index_by": args.index_by} if manifest.type == "documents" and args.index_by != "_id" else {}
            )
            entry = RegistryEntry(name, manifest.address, manifest.type, options)
            taken = s.registry.get(name)
            if taken is not None:
                raise CliError(f"the name {name!r} is taken by {taken.address}; add this one with --as OTHER")
            s.orbit.open(entry.address, **entry.options)
            s.register(entry)
    if out.json:
        out.document({"name": entry.name, "address": entry.address, "type": entry.type})
    else:
        out.line(f"{entry.name}  {entry.type}  {entry.address}")
    return 0


def cmd_ls(args: argparse.Namespace, out: Output) -> int:
    """``orbit ls``: the databases this directory knows, by name."""
    if not (Path(args.dir) / "keystore").exists():
        entries: list[RegistryEntry] = []
    else:
        with Session(args, out) as s:
            entries = list(s.registry)
    if out.json:
        for e in entries:
            out.document({"name": e.name, "type": e.type, "address": e.address})
    elif entries:
        out.table(["NAME", "TYPE", "ADDRESS"], [[e.name, e.type, e.address] for e in entries])
    else:
        out.note(f"no databases in {args.dir} yet: `orbit create NAME --type T` creates one")
    return 0


def _dir_size(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def _items(db: Database[Any]) -> tuple[str, Any]:
    if isinstance(db, CounterDatabase):
        return "value", db.value
    if isinstance(db, KeyValueDatabase | EventLogDatabase | DocumentsDatabase):
        return {"eventlog": "events", "keyvalue": "keys", "documents": "documents"}[db.store_type], len(db)
    return "rows", {t.name: db.store.count(t.name) for t in db.store.schema.tables}


def cmd_info(args: argparse.Namespace, out: Output) -> int:
    """``orbit info NAME|ADDRESS``: address, type, writers, heads, entries, size."""
    with Session(args, out) as s:
        db, entry = s.open(args.target, "info", ALL_TYPES)
        log = db.log
        total = db.entry_count()
        size = len(db.manifest.block)
        with out.progress("measuring", total) as update:
            for i, e in enumerate(log, 1):
                size += len(e.block)
                if i % _PROGRESS_EVERY == 0:
                    update(i)
        label, count = _items(db)
        facts: dict[str, Any] = {
            "name": entry.name,
            "address": db.address,
            "type": entry.type,
            "writers": db.manifest.writers,
            "heads": [str(c) for c in db.heads()],
            "entries": total,
            label: count,
            "size_bytes": size,
            "directory": str(s.directory),
            "directory_bytes": _dir_size(s.directory),
        }
        if entry.options:
            facts["options"] = dict(entry.options)
        me = s.orbit.identity.did
    if out.json:
        out.document(facts)
        return 0
    writers = [w + (" (you)" if w == me else "") for w in facts["writers"]]
    pairs = [
        ("name", entry.name),
        ("address", facts["address"]),
        ("type", entry.type),
        ("writers", ", ".join(writers)),
        ("heads", ", ".join(facts["heads"]) or "(none)"),
        ("entries", str(total)),
        (label, ", ".join(f"{k} {v}" for k, v in count.items()) if isinstance(count, dict) else str(count)),
        ("size", f"{_bytes(size)} of blocks ({size} bytes)"),
        ("directory", f"{s.directory} ({_bytes(facts['directory_bytes'])} on disk, every database)"),
    ]
    if entry.options:
        pairs.append(("options", ", ".join(f"{k}={v}" for k, v in sorted(entry.options.items()))))
    out.fields(pairs)
    return 0


def cmd_drop(args: argparse.Namespace, out: Output) -> int:
    """``orbit drop NAME|ADDRESS``: delete a database's log and forget its name."""
    with Session(args, out) as s:
        entry = s.lookup(args.target)
        with shielded():
            s.orbit.drop(entry.address)
            registered = s.registry.by_address(entry.address)
            if registered is not None:
                s.registry.remove(registered.name)
    if out.json:
        out.document({"dropped": entry.name, "address": entry.address})
    else:
        out.line(f"dropped {entry.name} ({entry.address})")
    return 0


# ---------------------------------------------------------------------- values from the command line


def _read_input(path: str, what: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`orbit.files.write_atomically`)."""
    try:
        write_atomically(path, data, mode=mode)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None


def _value_arg(args: argparse.Namespace, text: str, what: str = "VALUE") -> IPLDKind:
    if text == "-":
        text = _read_input("-", "standard input").decode("utf-8", "replace")
        if getattr(args, "string", False):
            return text.removesuffix("\n")
    if getattr(args, "string", False):
        return text
    return parse_value(text, what)


# ---------------------------------------------------------------------- per store type


def cmd_add(args: argparse.Namespace, out: Output) -> int:
    """``orbit add NAME VALUE``: append an event."""
    with Session(args, out, create=args.type is not None) as s:
        db = _as(s.open(args.name, "add", ("eventlog",), args.type)[0], EventLogDatabase)
        value = _value_arg(args, args.value)
        cid = db.add(value)
    if out.json:
        out.document({"cid": str(cid)})
    else:
        out.line(str(cid))
    return 0


def cmd_put(args: argparse.Namespace, out: Output) -> int:
    """``orbit put NAME KEY VALUE`` (keyvalue) or ``orbit put NAME DOC`` (documents)."""
    with Session(args, out, create=args.type is not None) as s:
        db, _ = s.open(args.name, "put", ("keyvalue", "documents"), args.type)
        if isinstance(db, KeyValueDatabase):
            if args.value is None:
                raise UsageError(
                    "usage: orbit put NAME KEY VALUE (a keyvalue database takes a key and a value)"
                )
            key = args.key_or_doc
            cid = db.put(key, _value_arg(args, args.value))
            facts: dict[str, Any] = {"key": key, "cid": str(cid)}
        else:
            if args.value is not None:
                raise UsageError("usage: orbit put NAME DOC (a documents database takes one JSON object)")
            docs = _as(db, DocumentsDatabase)
            doc = _value_arg(args, args.key_or_doc, "DOC")
            if isinstance(doc, list):
                many = docs.put_many(doc)  # type: ignore[arg-type]  # the store checks each document
                facts = {"documents": len(doc), "cid": None if many is None else str(many)}
            else:
                cid = docs.put(doc)  # type: ignore[arg-type]  # the store checks it is a map
                facts = {
                    "key": doc.get(docs.options.index_by) if isinstance(doc, dict) else None,
                    "cid": str(cid),
                }
    if out.json:
        out.document(facts)
    else:
        out.line(str(facts["cid"]))
    return 0


def _missing(args: argparse.Namespace, out: Output, what: str) -> int:
    if args.default is not None:
        out.value(parse_value(args.default, "--default"))
        return 0
    raise CliError(f"{what} (--default VALUE prints a value instead)")


def _find_event(db: EventLogDatabase, text: str) -> CID | None:
    try:
        cid = CID.parse(text)
    except CodecError:
        cid = None
    if cid is not None:
        return cid if db.get(cid, _MISSING) is not _MISSING else None
    if len(text) < 6:
        raise UsageError(f"give a whole CID or at least its last 6 characters, not {text!r}")
    found = [e.cid for e in db.iter() if str(e.cid).endswith(text)]
    if len(found) > 1:
        raise CliError(f"{text!r} ends {len(found)} event CIDs; give more characters")
    return found[0] if found else None


def cmd_get(args: argparse.Namespace, out: Output) -> int:
    """``orbit get NAME KEY``: a key's value, a document, or an event by CID."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "get", ("keyvalue", "documents", "eventlog"))
        if isinstance(db, EventLogDatabase):
            cid = _find_event(db, args.key)
            if cid is None:
                return _missing(args, out, f"no event {args.key} in {entry.name}")
            value = db.get(cid)
        else:
            assert isinstance(db, KeyValueDatabase | DocumentsDatabase)
            value = db.get(args.key, _MISSING)
            if value is _MISSING:
                kind = "key" if entry.type == "keyvalue" else "document"
                return _missing(args, out, f"no {kind} {args.key!r} in {entry.name}")
    out.value(value)
    return 0


def cmd_del(args: argparse.Namespace, out: Output) -> int:
    """``orbit del NAME KEY``: delete a key or a document."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "del", ("keyvalue", "documents"))
        assert isinstance(db, KeyValueDatabase | DocumentsDatabase)
        if args.key not in db:
            kind = "key" if entry.type == "keyvalue" else "document"
            raise CliError(f"no {kind} {args.key!r} in {entry.name}")
        cid = db.delete(args.key)
    if out.json:
        out.document({"key": args.key, "cid": str(cid)})
    else:
        out.line(str(cid))
    return 0


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    """``orbit list NAME``: every event, key, document, or each writer's count."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "list", TYPES)
        rows: list[list[str]] = []
        full = args.full
        if isinstance(db, EventLogDatabase):
            for cid, value in db.iter(amount=args.limit, reverse=args.reverse):
                if out.json:
                    out.document({"cid": str(cid), "value": value})
                else:
                    rows.append([short_cid(str(cid), full), _text(value)])
            out.table(["CID", "VALUE"], rows, ["dim", None])
        elif isinstance(db, CounterDatabase):
            totals = sorted(db.totals.items())
            for writer, total in totals:
                did = key_to_did(writer)
                if out.json:
                    out.document({"writer": did, "total": total})
                else:
                    rows.append([short_did(did, full), str(total)])
            if not out.json:
                out.table(["WRITER", "TOTAL"], rows)
                out.line(f"value {db.value}")
        else:
            assert isinstance(db, KeyValueDatabase | DocumentsDatabase)
            items: list[tuple[str, Any]] = sorted(db.items())
            if args.reverse:
                items.reverse()
            if args.limit is not None:
                items = items[: max(args.limit, 0)]
            for key, value in items:
                if out.json:
                    out.document({"key": key, "value": value})
                else:
                    rows.append([key, _text(value)])
            out.table(["KEY", "VALUE" if entry.type == "keyvalue" else "DOCUMENT"], rows)
    return 0


def _text(value: Any) -> str:
    """A value as one line of JSON, for a table cell."""
    return json.dumps(to_json(value), ensure_ascii=False, sort_keys=True)


def _counter(args: argparse.Namespace, out: Output, command: str) -> int:
    if args.amount < 0:
        raise UsageError(f"{command} takes a positive amount, not {args.amount}")
    with Session(args, out, create=args.type is not None) as s:
        db = _as(s.open(args.name, command, ("counter",), args.type)[0], CounterDatabase)
        cid = db.inc(args.amount) if command == "inc" else db.dec(args.amount)
        value = db.value
    if out.json:
        out.document({"value": value, "cid": str(cid)})
    else:
        out.line(str(value))
    return 0


def cmd_inc(args: argparse.Namespace, out: Output) -> int:
    """``orbit inc NAME [N]``: add to a counter."""
    return _counter(args, out, "inc")


def cmd_dec(args: argparse.Namespace, out: Output) -> int:
    """``orbit dec NAME [N]``: subtract from a counter."""
    return _counter(args, out, "dec")


def cmd_value(args: argparse.Namespace, out: Output) -> int:
    """``orbit value NAME``: a counter's value."""
    with Session(args, out) as s:
        db = _as(s.open(args.name, "value", ("counter",))[0], CounterDatabase)
        value = db.value
    if out.json:
        out.document({"value": value})
    else:
        out.line(str(value))
    return 0


_OPS: Final = ("!=", "<=", ">=", "=", "<", ">", "~")


def _condition(text: str) -> tuple[str, str, IPLDKind]:
    """``FIELD OP VALUE`` → (field, op, value); the value is JSON, or else a plain string."""
    best: tuple[int, str] | None = None
    for op in _OPS:
        at = text.find(op)
        if at > 0 and (best is None or at < best[0] or (at == best[0] and len(op) > len(best[1]))):
            best = (at, op)
    if best is None:
        raise UsageError(f"a condition is FIELD=VALUE (or != < <= > >= ~), not {text!r}")
    at, op = best
    return text[:at], op, parse_value(text[at + len(op) :], lenient=True)


def _matches(doc: dict[str, Any], field: str, op: str, value: IPLDKind) -> bool:
    if field not in doc:
        return op == "!="
    have = doc[field]
    try:
        if op == "=":
            return encode(have) == encode(value)
        if op == "!=":
            return encode(have) != encode(value)
        if op == "~":
            if isinstance(have, str) and isinstance(value, str):
                return value in have
            return isinstance(have, list) and any(encode(v) == encode(value) for v in have)
        if isinstance(have, bool) or isinstance(value, bool):
            return False
        if not (isinstance(have, int | float) and isinstance(value, int | float)) and not (
            isinstance(have, str) and isinstance(value, str)
        ):
            return False
        return {"<": have < value, "<=": have <= value, ">": have > value, ">=": have >= value}[op]  # type: ignore[operator]
    except CodecError:
        return False


def _print_docs(out: Output, docs: list[Any], index_by: str) -> None:
    if out.json:
        for doc in docs:
            out.document(doc)
        return
    out.table(["KEY", "DOCUMENT"], [[str(d.get(index_by)), _text(d)] for d in docs])


def cmd_find(args: argparse.Namespace, out: Output) -> int:
    """``orbit find NAME FIELD=VALUE…``: documents whose fields equal these values."""
    conditions = [_condition(c) for c in args.conditions]
    if any(op != "=" for _, op, _ in conditions):
        raise UsageError("find takes FIELD=VALUE conditions; `orbit query` takes != < <= > >= ~")
    with Session(args, out) as s:
        db = _as(s.open(args.name, "find", ("documents",))[0], DocumentsDatabase)
        fields = {f: v for f, _, v in conditions}
        try:
            docs = db.find(**fields)
        except UnindexedFieldError:  # no index on these fields: scan
            docs = db.query(lambda d: all(_matches(d, f, "=", v) for f, v in fields.items()))
        _print_docs(out, docs, db.options.index_by)
    return 0


def cmd_query(args: argparse.Namespace, out: Output) -> int:
    """``orbit query NAME COND…``: documents matching every condition (a scan)."""
    conditions = [_condition(c) for c in args.conditions]
    with Session(args, out) as s:
        db = _as(s.open(args.name, "query", ("documents",))[0], DocumentsDatabase)
        docs = db.query(lambda d: all(_matches(d, f, op, v) for f, op, v in conditions))
        if args.limit is not None:
            docs = docs[: max(args.limit, 0)]
        _print_docs(out, docs, db.options.index_by)
    return 0


# ---------------------------------------------------------------------- the log


# ---------------------------------------------------------------------- table databases


def _sql_param(text: str) -> Any:
    """A ``--param``: JSON (a number, "text", null, or DAG-JSON bytes), or else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and list(value) == ["/"]:
        value = from_json(value)
    if isinstance(value, dict | list | CID):
        raise UsageError(f"a --param is a number, text, null or bytes, not {text!r}")
    return value


def cmd_sql(args: argparse.Namespace, out: Output) -> int:
    """``orbit sql NAME "SELECT …"``: run SQL on a table database (``--write``: a signed write).

    Without SQL, statements come from standard input, each ended by ``;``: every one runs, an error is
    reported and the next one runs; the exit status is 1 if any failed.
    """
    from orbit.sql import run_sql_command

    params = [_sql_param(p) for p in args.param]
    if args.statement is None and params:
        raise UsageError("--param goes with a statement given on the command line")
    with Session(args, out) as s:
        target = args.name
        entry = s.registry.by_address(target) if is_address(target) else s.registry.get(target)
        if entry is not None:
            if entry.type != "table":
                raise CliError(
                    f"{entry.name!r} is a {entry.type} database; `orbit sql` works on table databases"
                )
            target = entry.address
        if args.statement is not None:
            text = run_sql_command(
                s.orbit, target, args.statement, params, as_json=out.json, write=args.write
            )
            out.line(text)
            return 0
        failed = False
        prompt = out.stderr if sys.stdin.isatty() and not out.json else None
        for statement in _statements(sys.stdin, prompt):
            try:
                text = run_sql_command(s.orbit, target, statement, (), as_json=out.json, write=args.write)
            except OrbitError as e:
                failed = True
                out.error(str(e))
                continue
            out.line(text)
        return 1 if failed else 0


def _statements(lines: Iterable[str], prompt: IO[str] | None) -> Iterator[str]:
    """The statements in ``lines``: text up to each ``;`` that ends a line (the rest, at the end).

    ``.quit`` or ``.exit`` on a line of its own ends the input; with a ``prompt`` stream, ``orbit> ``
    (or ``  ...> `` inside a statement) is written to it before each line.
    """
    pending: list[str] = []
    source = iter(lines)
    while True:
        if prompt is not None:
            prompt.write("  ...> " if pending else "orbit> ")
            prompt.flush()
        line = next(source, None)
        if line is None:
            break
        if not pending and line.strip() in (".quit", ".exit"):
            return
        pending.append(line)
        if line.rstrip().endswith(";"):
            statement = "".join(pending).strip()
            pending = []
            if statement.strip(";").strip():
                yield statement
    rest = "".join(pending).strip()
    if rest:
        yield rest


def _summary(payload: Any, limit: int = 60) -> str:
    if isinstance(payload, dict):
        op = payload.get("op")
        if op == "ADD":
            text = f"ADD {_text(payload.get('value'))}"
        elif op == "PUT":
            text = f"PUT {payload.get('key')} = {_text(payload.get('value'))}"
        elif op == "DEL":
            text = f"DEL {payload.get('key')}"
        elif op == "INC":
            amount = payload.get("value")
            text = f"INC {'+' if isinstance(amount, int) and amount >= 0 else ''}{amount}"
        elif op == "PUTALL":
            docs = payload.get("docs")
            text = f"PUTALL {len(docs) if isinstance(docs, list) else '?'} documents"
        else:
            text = _text(payload)
    else:
        text = _text(payload)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cmd_log(args: argparse.Namespace, out: Output) -> int:
    """``orbit log NAME``: the newest entries, their writer, clock and CID, and the DAG's shape."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "log", ALL_TYPES)
        log = db.log
        entries: list[Entry] = list(log.iter(reverse=True, amount=args.limit))
        me = s.orbit.identity.public_key
        if out.json:
            for e in entries:
                out.document(
                    {
                        "cid": str(e.cid),
                        "time": e.time,
                        "writer": key_to_did(e.key),
                        "next": [str(c) for c in e.next],
                        "payload": e.payload,
                    }
                )
            return 0
        if not entries:
            out.note(f"{entry.name} has no entries yet")
            return 0
        full = args.full
        for graph, i in graph_rows((e.cid, e.next) for e in entries):
            if i is None:
                out.line(out.style(graph.rstrip(), "cyan"))
                continue
            e = entries[i]
            did = key_to_did(e.key)
            writer = short_did(did, full) + (" (you)" if e.key == me else "")
            graph_text = out.style(graph, "cyan")
            cid = out.style(short_cid(str(e.cid), full), "dim")
            out.line(f"{graph_text}  {cid}  {e.time:>4}  {writer:<16}  {_summary(e.payload)}".rstrip())
    return 0


# ---------------------------------------------------------------------- CAR files


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    """``orbit export NAME FILE.car``: the manifest and every entry, as a CARv1 file."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "export", ALL_TYPES)
        log = db.log
        manifest: Manifest = db.manifest
        blocks = [(manifest.cid, manifest.block)]
        with out.progress("exporting", len(log)) as update:
            for i, e in enumerate(log, 1):
                blocks.append((e.cid, e.block))
                if i % _PROGRESS_EVERY == 0:
                    update(i)
        data = car_bytes(db.heads(), blocks)
    _write_file(args.file, data)
    facts = {"name": entry.name, "address": entry.address, "file": args.file, "blocks": len(blocks)}
    facts["entries"] = len(blocks) - 1
    facts["bytes"] = len(data)
    if out.json:
        out.document(facts)
    else:
        entries = _count(len(blocks) - 1, "entry", "entries")
        out.line(f"exported {entries} of {entry.name} to {args.file} ({_bytes(len(data))})")
    return 0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _manifest_of(blocks: dict[CID, bytes], where: str) -> Manifest:
    for cid, block in blocks.items():
        try:
            return Manifest.from_block(cid, block)
        except DatabaseError:
            continue
    raise CliError(f"{where} holds no database manifest: was it written by `orbit export`?")


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    """``orbit import FILE.car``: verify and merge a CAR file's entries into its database."""
    data = _read_input(args.file, "CAR file")
    try:
        roots, blocks = read_car(data)
    except CarError as e:
        raise CliError(f"{args.file} is not a well-formed CAR file: {e}") from None
    manifest = _manifest_of(blocks, args.file)
    with Session(args, out, create=True) as s:
        entry = s.registry.by_address(manifest.address)
        if entry is None:
            name = args.as_name or manifest.name
            _check_name(name)
            taken = s.registry.get(name)
            if taken is not None:
                raise CliError(f"the name {name!r} is taken by {taken.address}; import with --as OTHER")
            options = (
                {"index_by": args.index_by} if manifest.type == "documents" and args.index_by != "_id" else {}
            )
            entry = RegistryEntry(name, manifest.address, manifest.type, options)
        elif args.as_name and args.as_name != entry.name:
            raise CliError(f"{manifest.address} is already here as {entry.name!r}")
        s.orbit.blocks.put(manifest.cid, manifest.block)  # verified by _manifest_of: opened by address
        db = s.orbit.open(manifest.address, **entry.options)
        s.register(entry)
        source = MemoryBlockStore()
        source.put_many(blocks.items())
        heads = [r for r in roots if r != manifest.cid]
        with out.progress("verifying", len(blocks) - 1) as update:
            admitted = db.join_heads(heads, source=source, progress=update)
        total = db.entry_count()
    if out.json:
        out.document(
            {"name": entry.name, "address": entry.address, "admitted": len(admitted), "entries": total}
        )
    else:
        out.line(
            f"imported {_count(len(admitted), 'new entry', 'new entries')} into {entry.name} "
            f"({total} in all, {entry.address})"
        )
    return 0


# ---------------------------------------------------------------------- with an IPFS node


def cmd_follow(args: argparse.Namespace, out: Output) -> int:
    """``orbit follow NAME``: replicate and print updates as they come, until Ctrl-C."""
    with Session(args, out) as s:
        db, _ = s.open(args.name, "follow", ALL_TYPES)
        replication = _ipfs.connect(args.ipfs, "follow")
        try:

            def show(entries: list[Any], local: bool) -> None:
                for e in entries:
                    if out.json:
                        out.document(
                            {
                                "cid": str(e.cid),
                                "time": e.time,
                                "writer": key_to_did(e.key),
                                "payload": e.payload,
                            }
                        )
                    else:
                        out.line(
                            f"{short_cid(str(e.cid))}  {e.time:>4}  {short_did(key_to_did(e.key))}  "
                            f"{_summary(e.payload)}"
                        )
                out.stdout.flush()

            replication.follow(db, show, None)
        finally:
            replication.close()
    return 0


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    """``orbit status NAME``: replication state through the IPFS node."""
    with Session(args, out) as s:
        db, _ = s.open(args.name, "status", ALL_TYPES)
        replication = _ipfs.connect(args.ipfs, "status")
        try:
            state = replication.status(db, _TIMEOUT)
        finally:
            replication.close()
    if out.json:
        out.document(state)
    else:
        out.fields([(k, _text(v)) for k, v in sorted(state.items())])
    return 0
