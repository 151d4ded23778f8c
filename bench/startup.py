"""``startup``: whole processes, as a person runs them: how long a command takes from exec to exit.

- ``python_ms``: ``python -c pass`` (the interpreter alone: the floor);
- ``import_orbit_ms``: ``python -c "import orbit"``;
- ``cli_help_ms``: ``orbit --help``;
- ``cli_get_ms``: ``orbit get kv x`` on a directory holding one keyvalue database (no daemon): the
  directory opened, the database found by name and opened from its checkpoint, the value printed;
- ``cli_get_ms_no_bytecode``: the same with ``PYTHONDONTWRITEBYTECODE`` and no cached bytecode (every
  module compiled at each start, as in an environment that forbids writing ``.pyc`` files).

Medians of ``n`` runs (default 15), each a new process. Bytecode is cached in a temporary directory
(``PYTHONPYCACHEPREFIX``) after one warm-up run, as an installed package has it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ORBIT = [sys.executable, "-m", "orbit"]


def cached_bytecode_env(tmp: Path) -> dict[str, str]:
    """This environment with bytecode cached under ``tmp`` (as an installed package has it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "IPFS_API")}
    return env | {"PYTHONPYCACHEPREFIX": str(tmp / "pycache")}


def median_ms(argv: list[str], env: dict[str, str], n: int) -> float:
    """The median wall time of ``n`` runs of ``argv``, in milliseconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{argv} failed: {done.stderr.decode(errors='replace')}")
    return statistics.median(times)


def run(n: int) -> dict[str, Any]:
    """Measure the start-up figures (see the module docstring) over ``n`` runs each."""
    n = min(n, 50)
    with tempfile.TemporaryDirectory(prefix="orbit-bench-startup-") as tmp:
        directory = Path(tmp) / "orbit"
        env = cached_bytecode_env(Path(tmp)) | {"ORBIT_DIR": str(directory)}
        for argv in ([*ORBIT, "create", "kv", "--type", "keyvalue"], [*ORBIT, "put", "kv", "x", "1"]):
            subprocess.run(argv, env=env, capture_output=True, timeout=60, check=True)
        commands = {
            "python_ms": [sys.executable, "-c", "pass"],
            "import_orbit_ms": [sys.executable, "-c", "import orbit"],
            "cli_help_ms": [*ORBIT, "--help"],
            "cli_get_ms": [*ORBIT, "get", "kv", "x"],
        }
        result: dict[str, Any] = {}
        for name, argv in commands.items():
            median_ms(argv, env, 1)  # warm-up: writes the bytecode cache
            result[name] = round(median_ms(argv, env, n), 1)
        cold = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"} | {"PYTHONDONTWRITEBYTECODE": "1"}
        result["cli_get_ms_no_bytecode"] = round(median_ms(commands["cli_get_ms"], cold, max(3, n // 3)), 1)
        result["runs"] = n
    return result
