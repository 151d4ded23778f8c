"""The README stays true: its Python examples run, and it documents every CLI subcommand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orbit.cli import _parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_documents_every_subcommand() -> None:
    choices = next(a for a in _parser()._actions if a.choices and isinstance(a.choices, dict)).choices
    assert choices
    for name in choices:
        assert f"`orbit {name}" in README, name


def test_readme_quick_start_commands() -> None:
    assert "pip install . && python -m orbit demo" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    assert (
        "pip install -e '.[test]' && python -m pytest"
        in (Path(__file__).resolve().parents[2] / ".ci/run").read_text()
    )
