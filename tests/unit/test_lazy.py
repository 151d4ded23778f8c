"""Names and loggers imported on first use (ipfs_log.lazy)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ipfs_log.lazy import lazy_attributes, lazy_logger


def test_a_lazy_attribute_is_imported_once_then_kept() -> None:
    namespace: dict[str, object] = {}
    getattr_ = lazy_attributes("pkg", {"dumps": "json"}, namespace)
    import json

    assert getattr_("dumps") is json.dumps
    assert namespace == {"dumps": json.dumps}
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_a_lazy_logger_logs_through_the_named_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = lazy_logger("orbit.test-lazy")
    with caplog.at_level(logging.INFO, logger="orbit.test-lazy"):
        log.info("hello %s", "there")
        log.debug("not shown")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("orbit.test-lazy", "INFO", "hello there")
    ]


def test_reading_a_key_from_the_command_line_loads_no_logging(tmp_path: Path) -> None:
    from orbit.cli import main

    assert main(["--dir", str(tmp_path), "create", "kv", "--type", "keyvalue"]) == 0
    code = (
        "import sys\n"
        "from orbit.cli import main\n"
        f"assert main(['--dir', {str(tmp_path)!r}, 'get', 'kv', 'x', '--default', '0']) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.splitlines()[-1].split())
    assert "stores.keyvalue" in loaded
    assert "logging" not in loaded
