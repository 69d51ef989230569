"""`quickscale shell`: a shell with the project's environment."""

from __future__ import annotations

from quickscale.cli import app


def test_shell_opens_through_the_runtime(runner, inside, fake_runtime):
    result = runner.invoke(app, ["shell"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["shell"]


def test_the_shell_exit_code_passes_through(runner, inside, fake_runtime):
    fake_runtime.exit_code = 7

    assert runner.invoke(app, ["shell"]).exit_code == 7


def test_shell_outside_a_project_exits_2(runner, fake_runtime):
    result = runner.invoke(app, ["shell"])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
