"""`quickscale down`: stop the project, keep its data."""

from __future__ import annotations

from quickscale.cli import app


def test_down_stops_the_project(runner, inside, fake_runtime):
    result = runner.invoke(app, ["down"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["down"]
    assert "Stopped demo" in result.stdout
    assert (inside / "manage.py").is_file()


def test_down_outside_a_project_exits_2(runner, fake_runtime):
    result = runner.invoke(app, ["down"])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake_runtime.calls == []
