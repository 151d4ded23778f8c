"""Talking to a running daemon: find it from its directory, send requests with its token, read events.

The command line uses :func:`find_daemon` before it opens a directory: if a daemon serves it, the
command goes through the daemon (:meth:`DaemonClient.run`). A stale ``api`` file (its daemon died: the
port refuses connections) is ignored, and the command opens the directory itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx

from orbit.errors import ServeError
from orbit.serve.files import load_token, read_api
from orbit.serve.protocol import API, CommandRequest, CommandResult

__all__ = ["COMMAND_TIMEOUT", "DaemonClient", "DaemonGoneError", "find_daemon"]

COMMAND_TIMEOUT: Final = 900.0
"""Seconds a command line may run inside the daemon (an import of a large CAR file takes a while)."""
CONNECT_TIMEOUT: Final = 2.0
MAX_LINE: Final = 1 << 20
"""The longest server-sent event line read."""


class DaemonGoneError(ServeError):
    """Nobody answers at the address of the ``api`` file (the daemon died, or is not up yet)."""


class DaemonClient:
    """Requests to one daemon, each with its token.

    Args:
        url: the daemon's base URL (``http://127.0.0.1:PORT``).
        token: its token (None if it runs without one).
        timeout: seconds a request may take at most (reads of a stream: between two lines).
    """

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """Send a request (``path`` under ``/api/v1``) and return its JSON answer.

        Raises:
            DaemonGoneError: nobody answers at the daemon's address.
            ServeError: the daemon answered with an error (its message), or not with JSON.
        """
        try:
            response = self._http.request(
                method,
                API + path,
                json=body,
                timeout=httpx.USE_CLIENT_DEFAULT
                if timeout is None
                else httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            )
        except httpx.ConnectError as e:
            raise DaemonGoneError(f"no daemon answers at {self.url}: {e}", self.url) from e
        except httpx.TimeoutException as e:
            raise ServeError(
                f"the daemon at {self.url} did not answer {method} {path} in time", self.url
            ) from e
        except httpx.HTTPError as e:
            raise ServeError(f"the daemon at {self.url} failed {method} {path}: {e}", self.url) from e
        try:
            data = response.json()
        except ValueError:
            raise ServeError(
                f"the daemon at {self.url} answered {method} {path} with {response.status_code}, not JSON",
                self.url,
            ) from None
        if response.status_code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise ServeError(f"the daemon at {self.url}: {message or response.status_code}", self.url)
        return data

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
            ServeError: the daemon refused, or a line is not an event.
        """
        params = {} if db is None else {"db": db}
        try:
            with self._http.stream("GET", f"{API}/events", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        message = response.json().get("error")
                    except ValueError:
                        message = response.status_code
                    raise ServeError(f"the daemon at {self.url}: {message}", self.url)
                event, data = "message", ""
                for line in response.iter_lines():
                    if len(line) > MAX_LINE:
                        raise ServeError(f"the daemon at {self.url} sent an event line too long", self.url)
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
        except httpx.ConnectError as e:
            raise DaemonGoneError(f"no daemon answers at {self.url}: {e}", self.url) from e
        except httpx.HTTPError as e:
            raise ServeError(f"the event stream of {self.url} failed: {e}", self.url) from e


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
