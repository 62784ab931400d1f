"""Every command of the `mmaudit` group, found by walking it recursively, has help text and
answers --help with exit status 0."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli.main import cli


def walk(group: click.Command, path: tuple[str, ...] = ()):
    yield path, group
    if isinstance(group, click.Group):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            yield from walk(group.get_command(ctx, name), path + (name,))


COMMANDS = list(walk(cli))


def test_the_walk_finds_the_journal_commands():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"journal", "journal info", "journal tail", "journal dump", "journal verify", "journal demo",
            "journal salvage"} <= names


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "mmaudit" for p, _ in COMMANDS])
def test_every_command_has_help(path, command):
    assert (command.help or "").strip(), f"{' '.join(path) or 'mmaudit'} has no help text"
    assert (command.get_short_help_str() or "").strip()
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and command.help.strip().splitlines()[0] in " ".join(result.output.split())
