"""`quickscale help [COMMAND]`: every command with a one-line description and an example."""

from __future__ import annotations

import pytest
import typer

from quickscale.cli import app

COMMANDS = [
    "build",
    "up",
    "restart",
    "down",
    "ps",
    "logs",
    "shell",
    "django-shell",
    "manage",
    "generate-service",
    "check",
    "destroy",
    "help",
    "version",
]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def listed(output: str) -> dict[str, list[str]]:
    rows = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]
    return {cells[0]: cells[1:] for cells in rows}


def test_help_lists_every_command_with_a_description_and_example(runner):
    result = runner.invoke(app, ["help"])

    assert result.exit_code == 0
    rows = listed(result.stdout)
    assert list(rows) == COMMANDS
    for name, (description, example) in rows.items():
        assert description, name
        assert example.startswith(f"quickscale {name}"), name


def test_every_registered_command_is_listed(runner):
    group = typer.main.get_command(app)

    assert set(group.commands) == set(COMMANDS)


def test_no_arguments_prints_the_list(runner):
    result = runner.invoke(app, [])

    assert result.exit_code == 0
    assert list(listed(result.stdout)) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help_command_shows_that_commands_help_and_example(runner, command):
    result = runner.invoke(app, ["help", command])

    assert result.exit_code == 0, result.output
    assert f"Usage: quickscale {command}" in result.stdout
    assert "Example: quickscale " + command in result.stdout


def test_help_shows_options_of_a_command(runner):
    result = runner.invoke(app, ["help", "logs"])

    assert "--follow" in result.stdout and "--lines" in result.stdout


def test_help_for_an_unknown_command_exits_2(runner):
    result = runner.invoke(app, ["help", "generate-everything"])

    assert result.exit_code == 2
    assert "quickscale help" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
