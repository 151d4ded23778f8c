"""The README stays true: its Python examples run, and it documents every CLI subcommand."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbit.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def subcommands(parser: argparse.ArgumentParser, prefix: str = "orbit") -> Iterator[tuple[str, str | None]]:
    """Every subcommand, nested ones included, as ``("orbit id export", help)``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", helps.get(name)
                yield from subcommands(sub, f"{prefix} {name}")


def test_every_subcommand_has_help_text() -> None:
    found = list(subcommands(build_parser()))
    assert len(found) >= 20
    for command, help in found:
        assert help, command
        parser = build_parser()
        for name in command.split()[1:]:
            parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
                name
            ]
        for action in parser._actions:
            assert action.help, (command, action.dest)


def test_readme_documents_every_subcommand() -> None:
    for command, _ in subcommands(build_parser()):
        assert f"`{command}" in README, command


def test_readme_quick_start_commands() -> None:
    assert "pip install . && python -m orbit demo" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    assert (
        "pip install -e '.[test]' && python -m pytest"
        in (Path(__file__).resolve().parents[2] / ".ci/run").read_text()
    )
