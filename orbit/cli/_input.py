"""What a command reads besides its arguments: a file or standard input (``-``), a value argument."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ipfs_log.codec import IPLDKind
from orbit.cli._output import CliError, parse_value

__all__ = ["read_input", "value_arg"]


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
