"""The README stays true: its Python examples run, its CLI transcript is real output, and it names
every subcommand."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipfs_log import Identity
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


# ---------------------------------------------------------------------- the CLI transcript

TRANSCRIPT = re.compile(r"<!-- transcript -->\n```console\n(.*?)```", re.S)
SEEDS = {"alice": b"readme alice".ljust(32, b"\0"), "bob": b"readme bob".ljust(32, b"\0")}


def transcript_commands(block: str) -> list[tuple[str, str]]:
    """``(command, output)`` pairs of a console block: ``$ command`` lines, each followed by its output."""
    pairs: list[tuple[str, str]] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            pairs.append((line[2:].rstrip("\n"), ""))
        else:
            assert pairs, f"output before the first command: {line!r}"
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + line)
    return pairs


def run_transcript(commands: list[str], directory: Path) -> list[str]:
    """Run the commands in one shell in ``directory`` (alice's and bob's identities fixed); return outputs."""
    from orbit import OrbitDB

    for name, seed in SEEDS.items():
        with OrbitDB(directory / name, identity=Identity.from_seed(seed)):
            pass
    script = ["set -u"]
    for i, command in enumerate(commands):
        script += [f"printf '\\036%d\\n' {i}", f"{command} 2>&1"]
    script.append("true")  # the last command may fail on purpose
    env = {k: v for k, v in os.environ.items() if k not in ("IPFS_API", "ORBIT_PASSPHRASE")}
    env |= {
        "ORBIT_DIR": "alice",
        "NO_COLOR": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    parts = done.stdout.split("\036")[1:]
    return [part.split("\n", 1)[1] for part in parts]


def _steady(text: str) -> str:
    """Output with what differs between machines (sizes on disk) blanked."""
    return re.sub(r"\d+(\.\d+)? (B|KiB|MiB|GiB) on disk", "N on disk", text)


def test_readme_transcript_is_real_output(tmp_path: Path) -> None:
    assert (Path(sys.executable).parent / "orbit").exists(), (
        "pip install -e '.[test]' installs the orbit script"
    )
    blocks = TRANSCRIPT.findall(README)
    assert len(blocks) == 1
    pairs = transcript_commands(blocks[0])
    assert len(pairs) >= 20
    outputs = run_transcript([c for c, _ in pairs], tmp_path)
    for (command, expected), got in zip(pairs, outputs, strict=True):
        assert _steady(got) == _steady(expected), command


if __name__ == "__main__":  # print the transcript block anew: python -m tests.unit.test_docs
    import tempfile

    pairs = transcript_commands(TRANSCRIPT.findall(README)[0])
    with tempfile.TemporaryDirectory() as tmp:
        outputs = run_transcript([c for c, _ in pairs], Path(tmp))
    print("".join(f"$ {c}\n{o}" for (c, _), o in zip(pairs, outputs, strict=True)), end="")
