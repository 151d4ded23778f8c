"""Talking to a running daemon: find it from its directory, send requests with its token, read events.

The command line uses :func:`find_daemon` before it opens a directory: if a daemon serves it, the
command goes through the daemon (:meth:`DaemonClient.run`). A stale ``api`` file (its daemon died: the
port refuses connections) is ignored, and the command opens the directory itself.

The client is the standard library's ``http.client``: a command line that goes through the daemon
starts faster without an HTTP library to import, and it makes one request.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode, urlsplit

from orbit.errors import ServeError
from orbit.serve.files import load_token, read_api
from orbit.serve.protocol import API, CommandRequest, CommandResult

if TYPE_CHECKING:
    from orbit.state import RangeProof, ReadProof

__all__ = ["COMMAND_TIMEOUT", "DaemonClient", "DaemonGoneError", "find_daemon"]

COMMAND_TIMEOUT: Final = 900.0
"""Seconds a command line may run inside the daemon (an import of a large CAR file takes a while)."""
CONNECT_TIMEOUT: Final = 2.0
STREAM_TIMEOUT: Final = 30.0
"""Seconds an event stream may stay silent (the daemon sends a status every 2 s)."""
MAX_RESPONSE: Final = 512 << 20
"""The largest answer read (a command's whole output)."""
MAX_LINE: Final = 1 << 20
"""The longest server-sent event line read."""


class DaemonGoneError(ServeError):
    """No daemon of this directory answers at its ``api`` file's address: the file is stale.

    The daemon died, and nobody (or something else, or another directory's daemon) listens there now.
    """


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"expected base64 text, not {type(text).__name__}")
    return base64.b64decode(text, validate=True)


class DaemonClient:
    """Requests to one daemon, each with its token.

    Args:
        url: the daemon's base URL (``http://127.0.0.1:PORT``).
        token: its token (None if it runs without one).
        timeout: seconds a request may take at most.

    Raises:
        ServeError: ``url`` is not an ``http://HOST:PORT`` URL.
    """

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or port is None:
            raise ServeError(f"a daemon's address is http://HOST:PORT, not {url!r}", url)
        self.url = url
        self._host, self._port = parts.hostname, port
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Nothing to release: each request has its own connection."""

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, method: str, path: str, body: bytes | None, timeout: float) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT)
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            raise DaemonGoneError(f"no daemon answers at {self.url}: {e.strerror or e}", self.url) from e
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        try:
            conn.request(method, path, body, self._headers)
        except OSError as e:
            conn.close()
            raise ServeError(f"the daemon at {self.url} failed {method} {path}: {e}", self.url) from e
        return conn

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """Send a request (``path`` under ``/api/v1``) and return its JSON answer.

        Raises:
            DaemonGoneError: nobody answers at the daemon's address.
            ServeError: the daemon answered with an error (its message), not in time, or not with JSON.
        """
        data = None if body is None else json.dumps(body).encode()
        conn = self._open(method, API + path, data, self.timeout if timeout is None else timeout)
        try:
            response = conn.getresponse()
            raw = response.read(MAX_RESPONSE + 1)
        except TimeoutError as e:
            raise ServeError(
                f"the daemon at {self.url} did not answer {method} {path} in time", self.url
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise ServeError(f"the daemon at {self.url} failed {method} {path}: {e}", self.url) from e
        finally:
            conn.close()
        if len(raw) > MAX_RESPONSE:
            raise ServeError(
                f"the daemon at {self.url} answered {method} {path} with over {MAX_RESPONSE} bytes"
            )
        if response.status == 401:  # another directory's daemon took the port of a dead one
            raise DaemonGoneError(f"the daemon at {self.url} does not take this directory's token", self.url)
        try:
            answer = json.loads(raw)
        except ValueError:  # something else listens there now
            raise DaemonGoneError(
                f"{self.url} answered {method} {path} with {response.status}, not JSON: not an orbit daemon",
                self.url,
            ) from None
        if response.status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise ServeError(f"the daemon at {self.url}: {message or response.status}", self.url)
        return answer

    def prove(self, db: str, key: str) -> ReadProof:
        """Read ``key`` of a keyvalue or documents database with its proof (not checked here).

        The daemon is not trusted: check the answer with :meth:`~orbit.state.ReadProof.verify` and the
        write list you trust (the value returned is the one the proof must show).

        Raises:
            ServeError: the daemon refused the request, or its answer is malformed.
        """
        from orbit.serve.values import BadValue, from_json
        from orbit.state import ReadProof

        answer = self.request("GET", f"/dbs/{quote(db, safe='')}/proofs/keys/{quote(key, safe='')}")
        try:
            return ReadProof(
                key.encode(), bool(answer["present"]), from_json(answer["value"]),
                _unb64(answer["proof"]), _unb64(answer["commit"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, BadValue) as e:
            raise ServeError(f"a malformed proof from the daemon: {e}") from e

    def prove_sql(self, db: str, sql: str, params: Sequence[Any] = ()) -> RangeProof:
        """Run a primary-key query of a table database with its proof (not checked here).

        Check the answer with :meth:`~orbit.state.RangeProof.verify`, and that its ``lo``/``hi`` are
        what :func:`orbit.sql.proofs.provable_range` gives for ``sql`` (the range you asked for).

        Raises:
            ServeError: the daemon refused the request, or its answer is malformed.
        """
        from orbit.serve.values import BadValue, from_json, to_json
        from orbit.state import RangeProof

        body = {"sql": sql, "params": [to_json(p) for p in params]}
        answer = self.request("POST", f"/dbs/{quote(db, safe='')}/proofs/sql", body)
        try:
            items = tuple((_unb64(k), from_json(v)) for k, v in answer["items"])
            lo, hi = (None if answer[b] is None else _unb64(answer[b]) for b in ("lo", "hi"))
            return RangeProof(lo, hi, items, _unb64(answer["proof"]), _unb64(answer["commit"]))
        except (KeyError, TypeError, ValueError, BadValue) as e:
            raise ServeError(f"a malformed proof from the daemon: {e}") from e

    def run(self, request: CommandRequest) -> CommandResult:
        """Run a command line inside the daemon; its output and exit status.

        Raises:
            DaemonGoneError: nobody answers at the daemon's address (nothing ran).
            ServeError: the daemon refused the request.
        """
        body: dict[str, Any] = {"argv": list(request.argv)}
        if request.stdin is not None:
            body["stdin"] = base64.b64encode(request.stdin).decode()
        if request.cwd is not None:
            body["cwd"] = request.cwd
        data = self.request("POST", "/cli", body, timeout=COMMAND_TIMEOUT)
        try:
            return CommandResult(int(data["status"]), str(data["stdout"]), str(data["stderr"]))
        except (KeyError, TypeError, ValueError):
            raise ServeError(f"the daemon at {self.url} answered a command with {data!r}", self.url) from None

    def events(self, db: str | None = None) -> Iterator[tuple[str, Any]]:
        """The daemon's server-sent events as ``(event, data)``, until the daemon ends the stream.

        Raises:
            DaemonGoneError: nobody answers at the daemon's address.
            ServeError: the daemon refused, went silent, or sent a line that is not an event.
        """
        path = f"{API}/events" + ("" if db is None else "?" + urlencode({"db": db}))
        conn = self._open("GET", path, None, STREAM_TIMEOUT)
        try:
            response = conn.getresponse()
            if response.status >= 400:
                try:
                    message = json.loads(response.read(MAX_LINE)).get("error")
                except (ValueError, AttributeError):
                    message = response.status
                raise ServeError(f"the daemon at {self.url}: {message}", self.url)
            event, data = "message", ""
            while True:
                raw = response.readline(MAX_LINE + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE:
                    raise ServeError(f"the daemon at {self.url} sent an event line too long", self.url)
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        try:
                            yield event, json.loads(data)
                        except ValueError:
                            raise ServeError(
                                f"the daemon sent an event that is not JSON: {data[:80]!r}"
                            ) from None
                    event, data = "message", ""
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
        except TimeoutError as e:
            raise ServeError(
                f"the event stream of {self.url} was silent for {STREAM_TIMEOUT:.0f} s", self.url
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise ServeError(f"the event stream of {self.url} failed: {e}", self.url) from e
        finally:
            conn.close()


def find_daemon(directory: str | Path) -> DaemonClient | None:
    """A client of the daemon serving ``directory``, if its ``api`` file names one (it may be stale).

    Raises:
        ServeError: the token file is unreadable, readable by others, or not a token.
    """
    directory = Path(directory)
    url = read_api(directory)
    if url is None:
        return None
    return DaemonClient(url, load_token(directory))
