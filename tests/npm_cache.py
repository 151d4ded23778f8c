"""Installs of the JS test helpers' npm packages, cached outside the repository (``~/.cache/orbit/``).

:mod:`tests.ipfs_node` (js-ipfs) and :mod:`tests.orbitdb_peer` (OrbitDB JS) install the same way: the
directory is keyed by a hash of package.json and package-lock.json, so changing either installs afresh;
an install is built in a temporary directory and renamed into place only once complete, so a killed one
is never used; a file lock makes concurrent pytest processes install once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PACKAGE_FILES", "cache_root", "file_lock", "install"]

PACKAGE_FILES = ("package.json", "package-lock.json")
_COMPLETE = ".installed"


def cache_root(override: str, name: str) -> Path:
    """The directory under which installs of ``name`` are cached (``$override`` if it is set)."""
    chosen = os.environ.get(override)
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orbit" / name


def _install_key(files: Path) -> str:
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update(name.encode() + b"\0" + (files / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, error: type[Exception]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting at most ``timeout`` seconds (else ``error``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise error(f"timed out after {timeout:.0f} s waiting for the lock {path}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def install(
    files: Path,
    root: Path,
    *,
    command: str,
    expect: str,
    needs: str,
    timeout: float,
    error: type[Exception],
) -> Path:
    """Run ``npm <command>`` on ``files``' package files into the cache under ``root``, once.

    Args:
        files: the directory holding package.json and package-lock.json.
        root: the cache directory (see :func:`cache_root`).
        command: ``install`` or ``ci``.
        expect: a path, relative to the install, that a good install has.
        needs: what the install needs, for the message when npm is missing (e.g. "the IPFS test node").
        timeout: the longest npm may take, in seconds.
        error: the exception to raise.

    Returns:
        The install directory.

    Raises:
        error: npm is missing, fails, takes longer than ``timeout``, or installs without ``expect``.
    """
    target = root / _install_key(files)
    if (target / _COMPLETE).exists():
        return target
    with file_lock(root / f"{target.name}.lock", timeout, error):
        if (target / _COMPLETE).exists():
            return target
        npm = shutil.which("npm")
        if npm is None:
            raise error(f"{needs} needs npm on PATH to install (Node 20 and npm 10+ were tested)")
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=root))
        try:
            for name in PACKAGE_FILES:
                shutil.copyfile(files / name, staging / name)
            argv = [npm, command, "--no-audit", "--no-fund", "--loglevel=error"]
            try:
                done = subprocess.run(
                    argv, cwd=staging, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired as e:
                raise error(f"`npm {command}` in {staging} took longer than {timeout:.0f} s") from e
            if done.returncode != 0:
                raise error(
                    f"`npm {command}` in {staging} failed with status {done.returncode}:\n"
                    f"{done.stderr[-4000:]}"
                )
            if not (staging / expect).exists():
                raise error(f"`npm {command}` in {staging} did not install {expect}")
            (staging / _COMPLETE).write_text(json.dumps({"installed": time.time()}))
            if target.exists():  # a partial install left by a killed process, without the marker
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target
