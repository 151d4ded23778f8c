"""The on-disk format of an orbit directory, stamped in a ``FORMAT`` file beside the store.

The file holds one line, ``orbit-directory <n>``. Format 1 is the layout of :mod:`orbit.storage.layout`;
format 2 adds the write-behind journal (:mod:`orbit.storage.journal`), whose records a reader of format
1 would not apply. A directory without the file (new, or written before the stamp existed: format 1)
or of format 1 is stamped with the current format when it is opened; a directory of an unknown or
newer format raises :class:`~orbit.errors.UnsupportedFormatError` before anything is read from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from orbit.errors import BlockStoreError, UnsupportedFormatError
from orbit.files import write_atomically

__all__ = ["FORMAT", "check_format", "stamp_format"]

FORMAT: Final = 2
READS: Final = frozenset({1, 2})
"""The formats this version opens (and stamps as :data:`FORMAT`)."""
_NAME: Final = "FORMAT"
_PREFIX: Final = "orbit-directory "
_MAX_BYTES: Final = 64


def check_format(directory: Path) -> bool:
    """Check the directory's format stamp without changing anything.

    Returns:
        Whether the directory is stamped with :data:`FORMAT` (False: to be stamped: new, written before
        the stamp existed, or of an older format this version reads).

    Raises:
        UnsupportedFormatError: the stamp names another format, or is not an orbit stamp.
        BlockStoreError: the stamp cannot be read.
    """
    path = directory / _NAME
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise BlockStoreError(f"cannot read the format stamp: {e}", path) from e
    text = raw.decode("ascii", "replace").strip()
    version = text[len(_PREFIX) :] if text.startswith(_PREFIX) and len(raw) <= _MAX_BYTES else ""
    if not version.isdigit():
        raise UnsupportedFormatError(f"not an orbit format stamp: {text[:40]!r}", path)
    if int(version) not in READS:
        raise UnsupportedFormatError(
            f"directory format {int(version)} is not supported by this version of orbit (it reads "
            f"formats {', '.join(map(str, sorted(READS)))}); open it with the version that wrote it",
            path,
        )
    return int(version) == FORMAT


def stamp_format(directory: Path) -> None:
    """Write the current format's stamp (atomically).

    Raises:
        BlockStoreError: the stamp cannot be written.
    """
    path = directory / _NAME
    try:
        write_atomically(path, f"{_PREFIX}{FORMAT}\n".encode())
    except OSError as e:
        raise BlockStoreError(f"cannot write the format stamp: {e}", path) from e
