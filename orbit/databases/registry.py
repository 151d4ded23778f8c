"""The database class of each store type, by the type's name (as a manifest names it).

Each database class registers itself (``@register``), so the facade opens every type the same way:
the four built in here, and ``table`` from :mod:`orbit.sql`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from orbit.databases.base import Database
from orbit.errors import UnknownStoreTypeError

__all__ = ["database_class", "database_types", "register"]

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
    try:
        return _TYPES[type_name]
    except KeyError:
        raise UnknownStoreTypeError(type_name, database_types()) from None


def database_types() -> list[str]:
    """Return the names of the registered store types."""
    return list(_TYPES)
