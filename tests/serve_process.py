"""``orbit serve`` as a real process for tests: started on a directory, port chosen free, stopped cleanly.

:class:`ServeProcess` starts ``python -m orbit --dir DIR serve --port 0`` (plus ``--ipfs URL`` if given),
waits (bounded) until the directory's ``api`` file names a daemon that answers ``/api/v1/ping`` with the
directory's token, and stops it with SIGTERM (SIGKILL after a bounded wait). Its output goes to
``<dir>.serve.log``, shown when it fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = ["ServeProcess", "orbit_cli", "wait_until"]

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Return ``condition()``'s first truthy value, polling; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def orbit_cli(
    directory: Path,
    *args: str,
    input: str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``orbit --dir DIRECTORY ARGS…`` as a process; its output and status."""
    return subprocess.run(
        [sys.executable, "-m", "orbit", "--dir", str(directory), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdin=None if input is not None else subprocess.DEVNULL,
    )


class ServeProcess:
    """One ``orbit serve`` process on a directory."""

    def __init__(self, directory: Path, *, ipfs: str | None = None, extra: Sequence[str] = ()) -> None:
        self.directory = directory
        self.ipfs = ipfs
        self.extra = list(extra)
        self.log_path = directory.with_name(directory.name + ".serve.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""
        self.token = ""

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "orbit",
            "--dir",
            str(self.directory),
            "serve",
            "--port",
            "0",
            *self.extra,
        ]
        if self.ipfs is not None:
            argv += ["--ipfs", self.ipfs]
        return argv

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT_S) -> ServeProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"orbit serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"orbit serve did not answer within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            url = (self.directory / "api").read_text().strip()
            token = (self.directory / "api.token").read_text().strip()
        except OSError:
            return False
        try:
            response = httpx.get(
                f"{url}/api/v1/ping", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        self.url, self.token = url, token
        return True

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the daemon that sends the token."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait (SIGKILL after ``timeout``); the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"orbit serve did not stop within {timeout} s:\n{self.log_tail()}"
                ) from None
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
