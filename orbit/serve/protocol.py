"""What the daemon and its clients agree on: paths, limits, and a command line run inside the daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "API",
    "MAX_BODY",
    "MAX_COMMAND_BODY",
    "CommandRequest",
    "CommandResult",
    "CommandRunner",
]

API: Final = "/api/v1"
"""The prefix of every data endpoint."""
MAX_BODY: Final = 4 << 20
"""The largest request body a data endpoint reads (413 above)."""
MAX_COMMAND_BODY: Final = 96 << 20
"""The largest body of ``POST /api/v1/cli`` (it carries the command's standard input, base64)."""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """An ``orbit`` command line to run inside the daemon, against the daemon's open directory."""

    argv: tuple[str, ...]
    """The arguments after ``orbit``."""
    stdin: bytes | None = None
    """The command's standard input, read by the client (None: an empty one)."""
    cwd: str | None = None
    """The client's working directory: relative file arguments are taken from there."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command run inside the daemon printed, and its exit status."""

    status: int
    stdout: str
    stderr: str


CommandRunner = Callable[[CommandRequest], CommandResult]
"""Runs a command line against the daemon's directory (the command line layer provides it)."""
