"""``orbit create``, ``open``, ``ls``, ``info``, ``drop``: the databases a directory knows by name."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any, Final

from orbit.address import is_address, parse_address
from orbit.cli._input import check_address, check_writer
from orbit.cli._output import CliError, Output, UsageError, human_bytes
from orbit.cli._session import ALL_TYPES, TIMEOUT, Session, check_name, shielded
from orbit.databases import (
    CounterDatabase,
    Database,
    DocumentsDatabase,
    EventLogDatabase,
    KeyValueDatabase,
    OpenReport,
)
from orbit.errors import ReplicationTimeoutError, UnknownAddressError
from orbit.registry import RegistryEntry

__all__ = ["cmd_create", "cmd_drop", "cmd_info", "cmd_ls", "cmd_open", "register_as"]

_PROGRESS_EVERY: Final = 1024


def cmd_create(args: argparse.Namespace, out: Output) -> int:
    """``orbit create NAME --type T``: create a database and remember its name."""
    name = args.name
    check_name(name)
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
        keys = [k.strip() for given in args.write for k in given.split(",") if k.strip()]
        write: list[str] | str
        if "*" in keys:
            if len(keys) != 1:
                raise UsageError("--write takes '*' (anyone) or keys, not both")
            write = "*"
        else:
            for key in keys:
                check_writer(key)
            write = [s.orbit.identity.did, *keys]
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
    """``orbit open ADDRESS``: remember a database by its address (fetched from an IPFS node if new here)."""
    address = args.address
    check_address(address)
    reached: OpenReport | None = None
    with Session(args, out, create=True) as s:
        entry = s.registry.by_address(address)
        if entry is None:
            remote = False
            try:
                manifest = s.orbit.resolve(address)
            except UnknownAddressError:
                s.connect("opening a database that is not in this directory")
                remote = True
                try:
                    manifest = s.orbit.resolve(address)  # from the node now
                except UnknownAddressError:
                    raise CliError(
                        f"the IPFS node at {s.node} did not find the manifest of {address}"
                    ) from None
            entry = s.new_entry(manifest, args.as_name, args.index_by, "add this one")
            options = dict(entry.options)
            if args.trust == "writer":  # the state from the node's newest commit, the log from there on
                options.update(snapshot=newest_commit(s, address), trust="writer")
                remote = True
            # From the node: its log too, replicated (waiting for peers if the node records nothing).
            db = s.orbit.open(entry.address, wait=args.wait if remote else 0, **options)
            if remote:
                with contextlib.suppress(ReplicationTimeoutError):  # catch up from whoever is on the topic
                    db.wait_synced(min(TIMEOUT, 10.0))
                reached = db.reached
            register_as(s, entry)
    if out.json:
        document: dict[str, object] = {"name": entry.name, "address": entry.address, "type": entry.type}
        if reached is not None:
            document["reached"] = {
                "entries": reached.entries,
                "peers": reached.peers,
                "synced": reached.synced,
            }
        out.document(document)
    else:
        out.line(f"{entry.name}  {entry.type}  {entry.address}")
        if reached is not None:
            peers = f"{reached.peers} peer{'' if reached.peers == 1 else 's'}"
            more = "" if reached.synced else "; the rest keeps coming while the database is replicated"
            entries = f"{reached.entries} entr{'y' if reached.entries == 1 else 'ies'}"
            out.line(f"reached {entries} (from the node's record and {peers}){more}")
    return 0


def newest_commit(s: Session, address: str) -> bytes:
    """The newest commit the IPFS node keeps of ``address`` (its block, unchecked: the open checks it).

    Raises:
        CliError: no node is linked, or it keeps no commit of the database.
    """
    s.connect("opening a database from a commit (--trust writer)")
    assert s.orbit.ipfs is not None
    block = s.orbit.ipfs.commit_of(parse_address(address))
    if block is None:
        raise CliError(
            f"the IPFS node at {s.node} keeps no commit of {address} (a writer linked to it puts one "
            f"there with each commit: `orbit compact`, or db.commit()); open it without --trust writer"
        )
    return block


def register_as(s: Session, entry: RegistryEntry) -> None:
    """Register ``entry``, replacing the name opening it registered (its manifest's) if it differs (``--as``).

    Raises:
        RegistryError: the registry cannot be read or written, or the name is taken.
    """
    known = s.registry.by_address(entry.address)
    if known is not None and known.name != entry.name:
        with shielded():
            s.registry.remove(known.name)
    s.register(entry)


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
    else:
        out.table(["NAME", "TYPE", "ADDRESS"], [[e.name, e.type, e.address] for e in entries])
        if not entries:
            out.note(f"no databases in {args.dir} yet: `orbit create NAME --type T` creates one")
    return 0


def _dir_size(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


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
        if db.store_type == "table":  # then orbit.sql is loaded (the database is one of its)
            from orbit.sql import TableDatabase

            assert isinstance(db, TableDatabase)
            facts["schema"] = list(db.schema.sql)
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
        ("size", f"{human_bytes(size)} of blocks ({size} bytes)"),
        ("directory", f"{s.directory} ({human_bytes(facts['directory_bytes'])} on disk, every database)"),
    ]
    if entry.options:
        pairs.append(("options", ", ".join(f"{k}={_option(v)}" for k, v in sorted(entry.options.items()))))
    for i, statement in enumerate(facts.get("schema", ())):
        pairs.append(("schema" if i == 0 else "", statement + ";"))
    out.fields(pairs)
    return 0


def _option(value: Any) -> str:
    """An option's value for people: a list as ``a,b``, anything else as text (never a Python repr)."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


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
