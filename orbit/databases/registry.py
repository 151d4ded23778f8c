"""The database class of each store type, by the type's name (as a manifest names it).

Each database class registers itself (``@register``), so the facade opens every type the same way:
the four built in here, and ``table`` from :mod:`orbit.sql`. A built-in type's module is imported when
its class is first asked for (:data:`BUILT_IN`): a program that opens one keyvalue database loads no
other type.
"""

from __future__ import annotations

import importlib
from typing import Any, Final, TypeVar

from orbit.databases.base import Database
from orbit.errors import UnknownStoreTypeError

__all__ = ["BUILT_IN", "database_class", "database_types", "register"]

BUILT_IN: Final = {
    "counter": "orbit.databases.counter",
    "documents": "orbit.databases.documents",
    "eventlog": "orbit.databases.eventlog",
    "keyvalue": "orbit.databases.keyvalue",
}
"""The module of each type built in here, imported (and so registered) on first use."""

_TYPES: dict[str, type[Database[Any]]] = {}
_C = TypeVar("_C", bound=type[Database[Any]])


def register(cls: _C) -> _C:
    """Make ``cls`` the database class of its store type (``cls.STORE.TYPE``); a class decorator."""
    _TYPES[cls.STORE.TYPE] = cls
    return cls


def database_class(type_name: str) -> type[Database[Any]]:
    """Return the database class of a store type.

    Raises:
        UnknownStoreTypeError: no database class is registered for ``type_name``.
    """
    cls = _TYPES.get(type_name)
    if cls is None and type_name in BUILT_IN:
        importlib.import_module(BUILT_IN[type_name])  # registers it
        cls = _TYPES.get(type_name)
    if cls is None:
        raise UnknownStoreTypeError(type_name, database_types())
    return cls


def database_types() -> list[str]:
    """Return the names of the registered store types (the built-in ones first)."""
    for module in BUILT_IN.values():
        importlib.import_module(module)
    return list(_TYPES)
