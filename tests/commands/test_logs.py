"""`quickscale logs [web|worker|db|mail] [-f] [-n N]`."""

from __future__ import annotations

import pytest

from quickscale.cli import app


def test_logs_defaults_to_the_web_log(runner, inside, fake_runtime):
    result = runner.invoke(app, ["logs"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == [("logs", ("web", False, 50))]
    assert "web log line" in result.stdout


@pytest.mark.parametrize("service", ["web", "worker", "db", "mail"])
def test_logs_follow_and_lines_reach_the_runtime(runner, inside, fake_runtime, service):
    result = runner.invoke(app, ["logs", service, "-f", "-n", "7"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == [("logs", (service, True, 7))]


def test_long_options_work_too(runner, inside, fake_runtime):
    assert runner.invoke(app, ["logs", "mail", "--follow", "--lines", "3"]).exit_code == 0
    assert fake_runtime.calls == [("logs", ("mail", True, 3))]


def test_an_unknown_service_is_a_usage_error(runner, inside, fake_runtime):
    result = runner.invoke(app, ["logs", "redis"])

    assert result.exit_code == 2
    assert fake_runtime.calls == []


def test_a_negative_line_count_is_a_usage_error(runner, inside, fake_runtime):
    result = runner.invoke(app, ["logs", "-n", "-1"])

    assert result.exit_code == 2
    assert fake_runtime.calls == []


def test_the_runtime_exit_code_passes_through(runner, inside, fake_runtime):
    fake_runtime.exit_code = 4

    assert runner.invoke(app, ["logs", "db"]).exit_code == 4


def test_logs_outside_a_project_exits_2(runner, fake_runtime):
    assert runner.invoke(app, ["logs"]).exit_code == 2
