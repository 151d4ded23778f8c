"""Names of a package imported on first use (PEP 562), so importing the package stays fast.

>>> __getattr__ = lazy_attributes("demo", {"dumps": "json"}, {})
>>> __getattr__("dumps")("x")
'"x"'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


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
