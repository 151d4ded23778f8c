"""Small files written whole or not at all: the registry, the keystore, the format stamp, CLI output."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader, or a crash, sees the old file or the new, never half.

    The bytes go to a temporary file beside ``path`` (created with ``mode``), which is flushed to disk,
    renamed over ``path``, and the directory flushed too so the rename survives power loss. On failure
    the temporary file is removed and ``path`` is as it was.

    Raises:
        OSError: the file could not be written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
