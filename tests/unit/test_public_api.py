"""Each package's public API is its ``__all__``: complete (no public class or function left out) and real."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PACKAGES = ["ipfs_log", "stores", "orbit"]
OURS = tuple(PACKAGES)


def public_definitions(package: ModuleType) -> set[str]:
    """Public names bound in the package to a class or function defined in one of our packages."""
    names = set()
    for name, value in vars(package).items():
        if name.startswith("_"):
            continue
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", "").split(".")[0] in OURS:
            names.add(name)
    return names


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def test_all_is_a_list_of_unique_strings(package: ModuleType) -> None:
    exported = package.__all__
    assert isinstance(exported, list)
    assert all(isinstance(name, str) for name in exported)
    assert len(set(exported)) == len(exported)


def test_every_public_class_and_function_is_exported(package: ModuleType) -> None:
    missing = public_definitions(package) - set(package.__all__)
    assert not missing, f"{package.__name__}: public names missing from __all__: {sorted(missing)}"


def test_every_exported_name_exists(package: ModuleType) -> None:
    absent = [name for name in package.__all__ if not hasattr(package, name)]
    assert not absent, f"{package.__name__}.__all__ names what the package lacks: {absent}"


def test_star_import(package: ModuleType) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package.__name__} import *", namespace)
    assert set(package.__all__) <= namespace.keys()


def test_ipfs_log_exports_the_core() -> None:
    import ipfs_log

    for name in ["Log", "Entry", "CID", "Identity", "MemoryBlockStore", "WriteList", "OrbitError"]:
        assert name in ipfs_log.__all__


def test_errors_share_one_root() -> None:
    import ipfs_log

    errors = [
        getattr(ipfs_log, n)
        for n in ipfs_log.__all__
        if n.endswith("Error") and inspect.isclass(getattr(ipfs_log, n))
    ]
    assert len(errors) > 10
    assert all(issubclass(e, ipfs_log.OrbitError) for e in errors)
