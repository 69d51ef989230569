"""`quickscale manage ARGS...`: everything after `manage` goes to manage.py."""

from __future__ import annotations

import pytest

from quickscale.cli import app


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["createsuperuser", "--email", "a@b.c", "--noinput"],
        ["--help"],
        ["showmigrations", "-v", "2", "--plan"],
        ["check", "--verbose"],
    ],
    ids=["plain", "options", "help-goes-to-django", "short-options", "clashing-option"],
)
def test_arguments_pass_through_unchanged(runner, inside, fake_runtime, args):
    result = runner.invoke(app, ["manage", *args])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == [("manage", tuple(args))]


def test_the_exit_code_of_manage_py_passes_through(runner, inside, fake_runtime):
    fake_runtime.exit_code = 3

    assert runner.invoke(app, ["manage", "check"]).exit_code == 3


def test_manage_outside_a_project_exits_2_with_one_line(runner, fake_runtime):
    result = runner.invoke(app, ["manage", "migrate"])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake_runtime.calls == []


def test_help_for_manage_itself_comes_from_quickscale_help(runner):
    result = runner.invoke(app, ["help", "manage"])

    assert result.exit_code == 0
    assert "manage.py" in result.stdout
