"""What a command reads besides its arguments: a file or standard input (``-``), a value argument."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ipfs_log.codec import IPLDKind
from ipfs_log.errors import OrbitError
from ipfs_log.identity import key_from_did
from orbit.address import parse_address
from orbit.cli._output import CliError, UsageError, parse_value

__all__ = ["check_address", "check_writer", "read_input", "value_arg"]


def seconds(text: str) -> float:
    """Parse a CLI argument as a number of seconds, 0 to one day (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 86_400:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 86400 seconds")
    return value


def check_address(text: str) -> None:
    """Refuse text that is not an ``/orbitdb/<cid>`` address (a usage error, exit status 2).

    Raises:
        UsageError: it is not one.
    """
    try:
        parse_address(text)
    except OrbitError:
        raise UsageError(f"not an /orbitdb/<cid> address: {text!r}") from None


def check_writer(text: str) -> None:
    """Refuse a ``--write`` key that is not a ``did:key`` (a usage error, exit status 2).

    Raises:
        UsageError: it is not one.
    """
    try:
        key_from_did(text)
    except (OrbitError, ValueError):
        raise UsageError(f"--write takes did:key identities (`orbit id` prints one), not {text!r}") from None


def read_input(path: str, what: str) -> bytes:
    """Return the bytes of the file ``path``, or of standard input for ``-``.

    Raises:
        CliError: the file cannot be read (``what`` names it in the message).
    """
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror or e}") from None


def value_arg(args: argparse.Namespace, text: str, what: str = "VALUE") -> IPLDKind:
    """A value given on the command line: JSON, plain text with ``--string``, ``-`` for standard input.

    Raises:
        CliError: the value is not JSON (and not ``--string``), or standard input cannot be read.
    """
    if text == "-":
        text = read_input("-", "standard input").decode("utf-8", "replace")
        if getattr(args, "string", False):
            return text.removesuffix("\n")
    if getattr(args, "string", False):
        return text
    return parse_value(text, what)
