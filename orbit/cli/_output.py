"""What the command line prints: values as JSON, aligned tables, colour on a terminal, progress bars.

Values cross the command line as JSON, with DAG-JSON's forms for what JSON lacks: ``{"/": "<cid>"}``
for a link and ``{"/": {"bytes": "<base64>"}}`` for bytes, both ways.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Final

from ipfs_log.cid import CID
from ipfs_log.codec import IPLDKind
from ipfs_log.errors import CodecError

__all__ = [
    "CliError",
    "Output",
    "UsageError",
    "entry_summary",
    "from_json",
    "human_bytes",
    "parse_value",
    "short_cid",
    "short_did",
    "text",
    "to_json",
]


class CliError(Exception):
    """A user's mistake or a missing thing: printed as one line, exit status 1 (or ``status``)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class UsageError(CliError):
    """The command line itself is wrong: exit status 2, as argparse gives."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


# ---------------------------------------------------------------------- values


def to_json(value: Any) -> Any:
    """Return an IPLD value as plain JSON data (links and bytes in DAG-JSON's forms).

    >>> to_json({"a": b"hi", "n": [1, None]})
    {'a': {'/': {'bytes': 'aGk'}}, 'n': [1, None]}
    """
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode().rstrip("=")}}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> IPLDKind:
    """Return JSON data as an IPLD value, reading DAG-JSON's link and bytes forms.

    >>> from_json({"/": {"bytes": "aGk"}}), from_json([1, {"x": "y"}])
    (b'hi', [1, {'x': 'y'}])

    Raises:
        CliError: a ``{"/": …}`` object is neither a well-formed link nor bytes.
    """
    if isinstance(value, dict):
        if "/" in value and len(value) == 1:
            inner = value["/"]
            try:
                if isinstance(inner, str):
                    return CID.parse(inner)
                if isinstance(inner, dict) and list(inner) == ["bytes"] and isinstance(inner["bytes"], str):
                    text = inner["bytes"]
                    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (CodecError, ValueError) as e:
                raise CliError(f"bad DAG-JSON link or bytes {json.dumps(value)}: {e}") from None
            raise CliError(f'a {{"/": …}} object is a link or bytes, not {json.dumps(value)}')
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value  # type: ignore[no-any-return]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_value(text: str, what: str = "VALUE", *, lenient: bool = False) -> IPLDKind:
    """Parse a value given on the command line as JSON.

    Args:
        text: the argument.
        what: how the error names it.
        lenient: if the text is not JSON, take it as a plain string (for query conditions).

    Raises:
        UsageError: the text is not JSON (and not ``lenient``).

    >>> parse_value('{"a": [1, 2.5]}'), parse_value("London", lenient=True)
    ({'a': [1, 2.5]}, 'London')
    """
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as e:
        if lenient:
            return text
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(
            f"{what} is not valid JSON: {shown!r} ({e}); quote a string as '\"text\"' or pass --string"
        ) from None
    return from_json(data)


def short_cid(cid: str, full: bool = False) -> str:
    """A CID shortened for a table: its first 4 and last 8 characters.

    >>> short_cid("bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje")
    'bafy…qme5yje'
    """
    return cid if full or len(cid) <= 16 else f"{cid[:4]}…{cid[-7:]}"


def short_did(did: str, full: bool = False) -> str:
    """A ``did:key`` shortened for a table.

    >>> short_did("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")
    'z6Mk…2doK'
    """
    key = did.removeprefix("did:key:")
    return did if full or len(key) <= 12 else f"{key[:4]}…{key[-4:]}"


def text(value: Any) -> str:
    """A value as one line of JSON, for a table cell.

    >>> text({"b": b"hi", "a": 1})
    '{"a": 1, "b": {"/": {"bytes": "aGk"}}}'
    """
    return json.dumps(to_json(value), ensure_ascii=False, sort_keys=True)


def entry_summary(payload: Any, limit: int = 60) -> str:
    """A log entry's operation in one short line (``orbit log``, ``orbit follow``).

    >>> entry_summary({"op": "PUT", "key": "k", "value": [1]}), entry_summary({"op": "INC", "value": 2})
    ('PUT k = [1]', 'INC +2')
    """
    if isinstance(payload, dict):
        op = payload.get("op")
        if op == "ADD":
            line = f"ADD {text(payload.get('value'))}"
        elif op == "PUT":
            line = f"PUT {payload.get('key')} = {text(payload.get('value'))}"
        elif op == "DEL":
            line = f"DEL {payload.get('key')}"
        elif op == "INC":
            amount = payload.get("value")
            line = f"INC {'+' if isinstance(amount, int) and amount >= 0 else ''}{amount}"
        elif op == "PUTALL":
            docs = payload.get("docs")
            line = f"PUTALL {len(docs) if isinstance(docs, list) else '?'} documents"
        else:
            line = text(payload)
    else:
        line = text(payload)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def human_bytes(n: int) -> str:
    """A size for people.

    >>> human_bytes(531), human_bytes(1394), human_bytes(3 << 30)
    ('531 B', '1.4 KiB', '3.0 GiB')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


# ---------------------------------------------------------------------- output

_RESET: Final = "\x1b[0m"
_STYLES: Final = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "cyan": "\x1b[36m",
}


def _colour_allowed(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Output:
    """Prints for people (aligned tables, colour only on a terminal) or for scripts (``--json``).

    Args:
        json_mode: print JSON: one document per command, or one JSON object per line for streams.
        stdout: where results go.
        stderr: where progress and messages go.
    """

    def __init__(self, json_mode: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.json = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.colour = not json_mode and _colour_allowed(self.stdout)

    def style(self, text: str, style: str) -> str:
        """``text`` in a terminal style (``bold``, ``dim``, ``red``, ``green``, ``cyan``) if colour is on."""
        return f"{_STYLES[style]}{text}{_RESET}" if self.colour else text

    def line(self, text: str = "") -> None:
        """Print a line for people."""
        print(text, file=self.stdout)

    def document(self, value: Any) -> None:
        """Print one JSON document."""
        print(json.dumps(to_json(value), ensure_ascii=False, sort_keys=True), file=self.stdout)

    def value(self, value: Any) -> None:
        """Print a value: JSON in both modes (a person reads JSON values too)."""
        print(json.dumps(to_json(value), ensure_ascii=False, sort_keys=True), file=self.stdout)

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        styles: Sequence[str | None] | None = None,
    ) -> None:
        """Print an aligned table (the last column is not padded); headers in bold on a terminal.

        An empty table prints its headers and ``(none)``; in ``--json`` mode nothing is printed (the
        command prints its JSON documents itself).
        """
        if self.json:
            return
        if not rows:
            self.line(self.style("  ".join(headers), "bold"))
            self.line("(none)")
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        last = len(headers) - 1

        def fmt(cells: Sequence[str], header: bool) -> str:
            out = []
            for i, cell in enumerate(cells):
                padded = cell if i == last else cell.ljust(widths[i])
                style = "bold" if header else (styles[i] if styles else None)
                out.append(self.style(padded, style) if style else padded)
            return "  ".join(out).rstrip()

        self.line(fmt(headers, True))
        for row in rows:
            self.line(fmt(row, False))

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Print ``name  value`` lines, names aligned (``info``)."""
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            self.line(f"{self.style(key.ljust(width), 'bold')}  {value}")

    def error(self, text: str) -> None:
        """Print an error that does not end the command, as one line on stderr (``orbit: error: …``)."""
        print("orbit: error: " + " ".join(text.split()), file=self.stderr)

    def note(self, text: str) -> None:
        """Print a hint for a person on stderr: only on a terminal, never in --json mode."""
        isatty = getattr(self.stderr, "isatty", None)
        if not self.json and isatty and isatty():
            print(text, file=self.stderr)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr while the block runs, if stderr is a terminal; yields ``update(done)``.

        The bar disappears when the block ends. Off the terminal (pipes, files, CI) nothing is drawn.
        """
        isatty = getattr(self.stderr, "isatty", None)
        if not (isatty and isatty()) or os.environ.get("TERM") == "dumb":
            yield _ignore
            return
        # rich draws the bar (and a spinner when the total is unknown); imported only on a terminal.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stderr),
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)

            def update(done: int) -> None:
                bar.update(task, completed=done)

            yield update


def _ignore(done: int) -> None:
    pass
