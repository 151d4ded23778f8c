"""The daemon's two files in an orbit directory: ``api`` (where it listens) and ``api.token`` (its secret).

Like Kubo's ``api`` file, ``api`` holds one line, the daemon's base URL (``http://127.0.0.1:PORT``); the
daemon writes it once it listens and removes it on a clean exit. A file left by a daemon that died is
*stale*: the client finds nobody answering there (or someone answering for another directory) and ignores
it. ``api.token`` holds the bearer token every request must carry; it is created once, mode 0600, and
kept across restarts so that a browser tab or a script keeps working.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

from orbit.errors import ServeError
from orbit.files import write_atomically

__all__ = ["API_FILE", "MAX_TOKEN", "TOKEN_FILE", "load_token", "read_api", "remove_api", "write_api"]

API_FILE: Final = "api"
TOKEN_FILE: Final = "api.token"
MAX_TOKEN: Final = 256
"""A token file longer than this is not one of ours."""
_MAX_API: Final = 512


def read_api(directory: Path) -> str | None:
    """The base URL in ``directory``'s ``api`` file, or None if there is none (or it is not a URL)."""
    try:
        with open(directory / API_FILE, "rb") as f:
            data = f.read(_MAX_API + 1)
    except OSError:
        return None
    try:
        url = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if len(data) > _MAX_API or not url.startswith(("http://127.", "http://[::1]", "http://localhost")):
        return None  # a client only follows a file to a loopback daemon
    return url


def write_api(directory: Path, url: str) -> None:
    """Write ``url`` into ``directory``'s ``api`` file (atomically).

    Raises:
        ServeError: the file cannot be written.
    """
    try:
        write_atomically(directory / API_FILE, (url + "\n").encode())
    except OSError as e:
        raise ServeError(f"cannot write {directory / API_FILE}: {e}") from e


def remove_api(directory: Path, url: str) -> None:
    """Remove ``directory``'s ``api`` file if it still names ``url`` (another daemon may have replaced it)."""
    if read_api(directory) == url:
        with contextlib.suppress(OSError):
            (directory / API_FILE).unlink()


def load_token(directory: Path, *, create: bool = False) -> str | None:
    """The token in ``directory``'s ``api.token``; with ``create``, made (mode 0600) if there is none.

    Returns:
        The token, or None if there is no file and ``create`` is false.

    Raises:
        ServeError: the file cannot be read or written, is readable by others, or is not a token.
    """
    path = directory / TOKEN_FILE
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        if not create:
            return None
        import secrets  # here: it loads `random`, which a command that reads never needs

        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (token + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except FileExistsError:  # another daemon made it in the meantime: use theirs
            return load_token(directory)
        except OSError as e:
            raise ServeError(f"cannot create the token file {path}: {e}") from e
        return token
    except OSError as e:
        raise ServeError(f"cannot read the token file {path}: {e}") from e
    try:
        mode = os.fstat(fd).st_mode
        data = os.read(fd, MAX_TOKEN + 1)
    except OSError as e:
        raise ServeError(f"cannot read the token file {path}: {e}") from e
    finally:
        os.close(fd)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServeError(
            f"the token file {path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 it"
        )
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""
    if len(data) > MAX_TOKEN or len(token) < 16 or not token.isprintable() or " " in token:
        raise ServeError(f"the token file {path} does not hold a token; delete it to make a new one")
    return token
