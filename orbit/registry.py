"""The databases an OrbitDB directory knows by name: name → address, store type and open options.

A database's address says what it is (its manifest holds the name, type and writers), but a person
types a short name. The registry is a small JSON file, ``databases.json``, in the OrbitDB directory;
the command line keeps it, so ``orbit list events`` finds that ``events`` is an eventlog instead of
opening a new, empty database of a guessed type. Names are unique in a directory; one address may be
registered under one name only.

The file is replaced atomically (written to a temporary file, flushed with fsync, renamed over the
old one, and the directory fsynced), so a crash or a kill leaves either the old registry or the new one,
never a torn file. Callers hold the directory's :class:`~orbit.OrbitDB` lock while they change it.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     registry = Registry(d)
...     registry.add(RegistryEntry("events", "/orbitdb/zdpu…", "eventlog"))
...     Registry(d).get("events").type, registry.get("other")
('eventlog', None)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ipfs_log.frozen import Frozen, frozen_init
from orbit.errors import DatabaseError
from orbit.files import write_atomically

__all__ = ["REGISTRY_FILE", "Registry", "RegistryEntry", "RegistryError"]

REGISTRY_FILE: Final = "databases.json"
_VERSION: Final = 1
_MAX_FILE: Final = 64 * 1024 * 1024


class RegistryError(DatabaseError):
    """The registry file cannot be read or written, or a name or address is already taken.

    Attributes:
        path: the registry file.
    """

    def __init__(self, message: str, path: object = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}")


class RegistryEntry(Frozen):
    """One database a directory knows by name."""

    __match_args__ = ("name", "address", "type", "options")
    __slots__ = __match_args__
    name: str
    """The name a person types."""
    address: str
    """The database's ``/orbitdb/<cid>`` address."""
    type: str
    """Its store type (from its manifest)."""
    options: Mapping[str, Any]
    """Open options of the store type (e.g. a documents store's ``index_by`` and ``indexes``)."""

    def __init__(self, name: str, address: str, type: str, options: Mapping[str, Any] | None = None) -> None:
        frozen_init(self, name, address, type, {} if options is None else options)

    def to_json(self) -> dict[str, Any]:
        """Return the entry as a JSON object."""
        return {"address": self.address, "type": self.type, "options": dict(self.options)}


class Registry:
    """The ``databases.json`` file of an OrbitDB directory.

    Args:
        directory: the OrbitDB directory.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / REGISTRY_FILE

    def __iter__(self) -> Iterator[RegistryEntry]:
        """Iterate over the entries, sorted by name.

        Raises:
            RegistryError: the file cannot be read or is malformed.
        """
        return iter(sorted(self._read().values(), key=lambda e: e.name))

    def get(self, name: str) -> RegistryEntry | None:
        """Return the entry named ``name``, or None.

        Raises:
            RegistryError: the file cannot be read or is malformed.
        """
        return self._read().get(name)

    def by_address(self, address: str) -> RegistryEntry | None:
        """Return the entry for ``address`` (compared without a trailing ``/name``), or None.

        Raises:
            RegistryError: the file cannot be read or is malformed.
        """
        base = _base(address)
        return next((e for e in self._read().values() if _base(e.address) == base), None)

    def add(self, entry: RegistryEntry) -> None:
        """Register ``entry``; registering the same entry again changes nothing.

        Raises:
            RegistryError: the name is registered for another address, the address under another
                name, or the file cannot be read or written.
        """
        entries = self._read()
        old = entries.get(entry.name)
        if old is not None and _base(old.address) != _base(entry.address):
            raise RegistryError(f"the name {entry.name!r} is taken by {old.address}", self.path)
        other = next(
            (
                e
                for e in entries.values()
                if _base(e.address) == _base(entry.address) and e.name != entry.name
            ),
            None,
        )
        if other is not None:
            raise RegistryError(f"{entry.address} is already registered as {other.name!r}", self.path)
        if old == entry:
            return
        entries[entry.name] = entry
        self._write(entries)

    def remove(self, name: str) -> bool:
        """Forget the entry named ``name``; return whether there was one.

        Raises:
            RegistryError: the file cannot be read or written.
        """
        entries = self._read()
        if entries.pop(name, None) is None:
            return False
        self._write(entries)
        return True

    # ------------------------------------------------------------------ file

    def _read(self) -> dict[str, RegistryEntry]:
        try:
            with self.path.open("rb") as f:
                data = f.read(_MAX_FILE + 1)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise RegistryError(f"cannot read the registry: {e.strerror or e}", self.path) from e
        if len(data) > _MAX_FILE:
            raise RegistryError("the registry file is too large", self.path)
        try:
            record = json.loads(data)
            if not isinstance(record, dict) or record.get("v") != _VERSION:
                raise ValueError(f"not a version-{_VERSION} registry")
            databases = record["databases"]
            if not isinstance(databases, dict):
                raise ValueError("databases is not an object")
            entries = {}
            for name, item in databases.items():
                if not isinstance(item, dict):
                    raise ValueError(f"entry {name!r} is not an object")
                address, type_, options = item["address"], item["type"], item.get("options", {})
                if not (isinstance(address, str) and isinstance(type_, str) and isinstance(options, dict)):
                    raise ValueError(f"entry {name!r} has the wrong field types")
                entries[name] = RegistryEntry(name, address, type_, options)
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"malformed registry ({e}); restore it or delete it", self.path) from e
        return entries

    def _write(self, entries: Mapping[str, RegistryEntry]) -> None:
        record = {"v": _VERSION, "databases": {n: e.to_json() for n, e in sorted(entries.items())}}
        data = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
        try:
            write_atomically(self.path, data)
        except OSError as e:
            raise RegistryError(f"cannot write the registry: {e.strerror or e}", self.path) from e


def _base(address: str) -> str:
    """``/orbitdb/<cid>`` without a trailing ``/name``."""
    parts = address.split("/")
    return "/".join(parts[:3])
