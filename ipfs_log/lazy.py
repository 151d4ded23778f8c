"""Imported on first use: a package's names (PEP 562) and loggers, so importing a package stays fast.

>>> __getattr__ = lazy_attributes("demo", {"dumps": "json"}, {})
>>> __getattr__("dumps")("x")
'"x"'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import logging

__all__ = ["lazy_attributes", "lazy_logger"]


def lazy_attributes(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that imports ``where[name]`` when ``name`` is first read.

    The value is then kept in ``namespace`` (the package's ``globals()``), so later reads cost nothing.
    An unknown name raises :class:`AttributeError`, as for any module.
    """

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return getattr_


class _LazyLogger:
    """Stands for ``logging.getLogger(name)``; :mod:`logging` is imported at the first message."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import logging

        return getattr(logging.getLogger(self._name), attr)


def lazy_logger(name: str) -> logging.Logger:
    """Return the logger ``name``, importing :mod:`logging` only when something is logged.

    Modules on the path of a short command (``orbit get``) log only when something goes wrong: the
    import, a few milliseconds, is then paid only by the process that has something to say.
    """
    return cast("logging.Logger", _LazyLogger(name))
