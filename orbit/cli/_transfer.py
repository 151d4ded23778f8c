"""``orbit export`` and ``orbit import``: a database as a CAR file, and back, verified.

Both stream through the library: :meth:`Database.export_car` writes one entry at a time, and an import
reads the file's manifest (:class:`orbit.car.CarReader`), opens its database
(:meth:`OrbitDB.open_car`) and merges the entries with :meth:`Database.import_car`, which verifies
every one.
"""

from __future__ import annotations

import argparse
import collections
import os
from collections.abc import Callable
from typing import Final

from ipfs_log.errors import BlockNotFoundError
from orbit.address import Manifest
from orbit.car import CarReader
from orbit.cli._databases import register_as
from orbit.cli._input import read_input
from orbit.cli._output import CliError, Output, human_bytes
from orbit.cli._session import ALL_TYPES, Session, shielded
from orbit.errors import BlockStoreError, CarError

__all__ = ["cmd_export", "cmd_import"]

_PROGRESS_EVERY: Final = 1024


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _os_reason(error: BaseException) -> str | None:
    """Why the operating system refused a file, if that is what ``error`` comes from."""
    cause = error.__cause__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    return None if cause is None else cause.strerror or str(cause)


def _every(update: Callable[[int], None], step: int) -> Callable[[int], None]:
    """``update``, called for every ``step``-th count only (a progress bar need not redraw each time)."""

    def report(done: int) -> None:
        if done % step == 0:
            update(done)

    return report


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    """``orbit export NAME FILE.car``: the manifest and every entry, as a CARv1 file."""
    with Session(args, out) as s:
        db, entry = s.open(args.name, "export", ALL_TYPES)
        with out.progress("exporting", db.entry_count()) as update:
            try:
                blocks = db.export_car(args.file, progress=_every(update, _PROGRESS_EVERY))
            except BlockStoreError as e:
                reason = _os_reason(e)
                if reason is None:
                    raise
                raise CliError(f"cannot write {args.file}: {reason}") from None
    size = os.path.getsize(args.file)
    if out.json:
        out.document(
            {
                "name": entry.name,
                "address": entry.address,
                "file": args.file,
                "blocks": blocks,
                "entries": blocks - 1,
                "bytes": size,
            }
        )
    else:
        entries = _count(blocks - 1, "entry", "entries")
        out.line(f"exported {entries} of {entry.name} to {args.file} ({human_bytes(size)})")
    return 0


def _read_manifest(car: str | bytes, where: str) -> tuple[Manifest, int]:
    """The manifest a CAR file holds and how many blocks it has; every block is checked on the way.

    Raises:
        CliError: the file cannot be read, is malformed, or holds no manifest.
    """
    try:
        with CarReader(car) as reader:
            manifest = reader.first(Manifest.from_block)
            collections.deque(reader, maxlen=0)  # the rest: each block must hash to its CID
            blocks = reader.sections
    except CarError as e:
        reason = _os_reason(e)
        if reason is not None:
            raise CliError(f"cannot read CAR file {where}: {reason}") from None
        raise CliError(f"{where} is not a well-formed CAR file: {e}") from None
    if manifest is None:
        raise CliError(f"{where} holds no database manifest: was it written by `orbit export`?")
    return manifest, blocks


def _incomplete(file: str, name: str, kept: int, new_here: bool) -> str:
    """The message of an import whose file lacks blocks its entries need."""
    if kept == 0 and new_here:
        done = "nothing was imported (no database was added)"
    else:
        done = f"{name} holds {_count(kept, 'entry', 'entries')}, every one verified, and keeps them"
    return (
        f"{file} lacks blocks its entries need (an interrupted or partial export?): {done}; "
        "import a complete file, or this one again once it is complete, to continue"
    )


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    """``orbit import FILE.car``: verify and merge a CAR file's entries into its database."""
    car: str | bytes = read_input("-", "CAR file") if args.file == "-" else args.file
    manifest, blocks = _read_manifest(car, args.file)
    with Session(args, out, create=True) as s:
        entry = known = s.registry.by_address(manifest.address)
        if entry is None:
            entry = s.new_entry(manifest, args.as_name, args.index_by, "import")
        elif args.as_name and args.as_name != entry.name:
            raise CliError(f"{manifest.address} is already here as {entry.name!r}")
        db = s.orbit.open_car(car, **entry.options)
        new_here = known is None and db.entry_count() == 0
        register_as(s, entry)
        try:
            with out.progress("verifying", blocks - 1) as update:
                admitted = db.import_car(car, progress=update)
        except BaseException as e:  # failed or interrupted: what was admitted stays; an empty new one goes
            kept = db.entry_count()
            if new_here and kept == 0:
                with shielded():
                    s.orbit.drop(db.address)  # forgets its name too
            if isinstance(e, BlockNotFoundError):
                raise CliError(_incomplete(args.file, entry.name, kept, new_here)) from None
            if isinstance(e, KeyboardInterrupt) and kept:
                out.error(f"{kept} entries of {entry.name} are kept; run the same import again to continue")
            raise
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
