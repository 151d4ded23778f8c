"""Benchmarks, run by hand: ``python bench/run.py SUITE [--n N] [--json]`` (SUITE below).

Each suite prints a human-readable table, then (with ``--json``) one JSON object as its last line.
Figures that depend on the machine are reported next to the same-run raw Ed25519 sign/verify rates, and
as ratios to them, since absolute times drift between runs and machines.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUITES = {
    "oplog": 10_000,
    "stores": 100_000,
    "persist": 1_000_000,
    "kubo": 10_000,
    "replicate": 10_000,
    "sql": 100_000,
    "catchup": 10_000,
    "swarm": 1_000,
    "state": 1_000_000,
    "snapshot_open": 1_000_000,
    "startup": 15,
    "serve": 5_000,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--n", type=int, default=None, help="problem size (default depends on suite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else SUITES[args.suite]
    module = importlib.import_module(f"bench.{args.suite}")
    result: dict[str, Any] = module.run(n)
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
