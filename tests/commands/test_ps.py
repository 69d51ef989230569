"""`quickscale ps`: one row per service with state, port and pid."""

from __future__ import annotations

from quickscale.cli import app


def test_ps_shows_each_service_with_port_and_pid(runner, inside, fake_runtime):
    result = runner.invoke(app, ["ps"])

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "running" in rows["web"] and "8123" in rows["web"] and "4242" in rows["web"]
    assert "running" in rows["db"] and "4343" in rows["db"]
    assert "crashed" in rows["worker"] and "exited by itself" in rows["worker"]
    assert "stopped" in rows["mail"]
    assert "local runtime" in result.stdout


def test_ps_outside_a_project_exits_2(runner, fake_runtime):
    result = runner.invoke(app, ["ps"])

    assert result.exit_code == 2
    assert fake_runtime.calls == []
