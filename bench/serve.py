"""``orbit serve`` through HTTP: puts and gets per request (keep-alive), a batch request against the library
in the same run, and a whole ``orbit get`` process with and without a daemon.

- ``serve_put_per_s``: one client, one ``PUT /api/v1/dbs/kv/keys/K`` per request, on one kept-alive
  connection (each put is one signed entry, durable when the answer comes). The client is the standard
  library's ``http.client``: httpx costs another 0.4 ms a request on this machine, which would measure
  the client.
- ``serve_batch_ratio``: puts/s through ``POST …/ops`` (batches of up to 10,000) ÷ puts/s of the library's
  ``kv.put`` loop, in this process, same run; ``serve_batch_vs_library_batch`` divides by the library's own
  ``kv.batch()`` instead.
- ``serve_get_ms``: the median of single-key GETs (p90 beside it).
- ``cli_get_ms``: the median wall time of a whole ``python -m orbit get`` process on the directory without a
  daemon; ``cli_get_daemon_ms`` the same while the daemon serves it (the command goes through it). Bytecode
  is cached, as an installed package has it (see ``bench/startup.py``).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.startup import cached_bytecode_env, median_ms
from orbit import OrbitDB
from tests.serve_process import ServeProcess, orbit_cli

CLI_RUNS = 15


def _cli_get_ms(directory: Path, cache: Path) -> float:
    """A whole ``orbit get`` process, bytecode cached (as an installed package has it; one warm-up run)."""
    argv = [sys.executable, "-m", "orbit", "--dir", str(directory), "get", "kv", "k0"]
    env = cached_bytecode_env(cache)
    median_ms(argv, env, 1)
    return median_ms(argv, env, CLI_RUNS)


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with OrbitDB(root / "lib") as orbit:
            kv = orbit.open("kv", type="keyvalue")
            t = time.perf_counter()
            for i in range(n):
                kv.put(f"k{i}", {"i": i, "text": "value"})
            library_put = n / (time.perf_counter() - t)
            t = time.perf_counter()
            with kv.batch() as batch:
                for i in range(n):
                    batch.put(f"b{i}", {"i": i, "text": "value"})
            library_batch = n / (time.perf_counter() - t)

        directory = root / "served"
        assert orbit_cli(directory, "create", "kv", "--type", "keyvalue").returncode == 0
        with ServeProcess(directory) as daemon, daemon.client() as c:
            host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {"Authorization": f"Bearer {daemon.token}", "Content-Type": "application/json"}

            def request(method: str, path: str, body: Any = None) -> Any:
                conn.request(method, path, None if body is None else json.dumps(body), headers)
                response = conn.getresponse()
                data = response.read()
                assert response.status == 200, data
                return data

            request("GET", "/api/v1/dbs/kv")  # the connection is up, the database looked up
            t = time.perf_counter()
            for i in range(n):
                request("PUT", f"/api/v1/dbs/kv/keys/k{i}", {"value": {"i": i, "text": "value"}})
            serve_put = n / (time.perf_counter() - t)

            t = time.perf_counter()
            for start in range(0, n, 10_000):
                ops = [
                    {"op": "put", "key": f"b{i}", "value": {"i": i, "text": "value"}}
                    for i in range(start, min(n, start + 10_000))
                ]
                r = c.post("/api/v1/dbs/kv/ops", json={"ops": ops})
                assert r.status_code == 200, r.text
            serve_batch = n / (time.perf_counter() - t)

            gets = []
            for i in range(min(n, 2000)):
                t = time.perf_counter()
                request("GET", f"/api/v1/dbs/kv/keys/k{i}")
                gets.append((time.perf_counter() - t) * 1000)
            gets.sort()
            conn.close()
            cli_daemon = _cli_get_ms(directory, root)
        cli = _cli_get_ms(directory, root)
    return {
        "n": n,
        "library_put_per_s": round(library_put),
        "library_batch_put_per_s": round(library_batch),
        "serve_put_per_s": round(serve_put),
        "serve_batch_put_per_s": round(serve_batch),
        "serve_batch_ratio": round(serve_batch / library_put, 3),
        "serve_batch_vs_library_batch": round(serve_batch / library_batch, 3),
        "serve_get_ms": round(statistics.median(gets), 3),
        "serve_get_p90_ms": round(gets[int(len(gets) * 0.9)], 3),
        "cli_get_ms": round(cli, 1),
        "cli_get_daemon_ms": round(cli_daemon, 1),
    }
