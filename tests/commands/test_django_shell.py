"""`quickscale django-shell [ARGS...]`: Django's shell, arguments passed on."""

from __future__ import annotations

from quickscale.cli import app


def test_django_shell_runs_manage_shell(runner, inside, fake_runtime):
    result = runner.invoke(app, ["django-shell"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == [("manage", ("shell",))]


def test_arguments_and_options_pass_through(runner, inside, fake_runtime):
    result = runner.invoke(app, ["django-shell", "-c", "print(1)", "--no-imports"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == [("manage", ("shell", "-c", "print(1)", "--no-imports"))]


def test_the_exit_code_passes_through(runner, inside, fake_runtime):
    fake_runtime.exit_code = 1

    assert runner.invoke(app, ["django-shell", "-c", "raise SystemExit(1)"]).exit_code == 1


def test_django_shell_outside_a_project_exits_2(runner, fake_runtime):
    assert runner.invoke(app, ["django-shell"]).exit_code == 2
    assert fake_runtime.calls == []
