"""`quickscale restart`: start the web server anew through the project's runtime."""

from __future__ import annotations

from quickscale.cli import app


def test_restart_restarts_through_the_runtime_and_prints_the_url(runner, inside, fake_runtime):
    result = runner.invoke(app, ["restart"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["restart"]
    assert result.stdout.startswith("Restarting demo...\n")
    assert "demo is running at http://localhost:8123" in result.stdout
    assert "It was not running; started it." in result.stdout


def test_restart_with_an_unusable_env_changes_nothing(runner, inside, fake_runtime):
    env = inside / ".env"
    env.write_text(env.read_text() + "WEB_PORT=99999\n")

    result = runner.invoke(app, ["restart"])

    assert result.exit_code == 1
    assert "WEB_PORT='99999' is not a port" in result.stderr
    assert fake_runtime.calls == []


def test_restart_outside_a_project_exits_2(runner, fake_runtime):
    result = runner.invoke(app, ["restart"])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake_runtime.calls == []
