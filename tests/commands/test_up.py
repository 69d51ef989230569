"""`quickscale up`: start the project through its runtime; bad setups fail with one clear line."""

from __future__ import annotations

from quickscale.cli import app
from quickscale.errors import QuickScaleError


def test_up_starts_the_project_and_prints_its_url(runner, inside, fake_runtime):
    result = runner.invoke(app, ["up"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["up"]
    assert result.stdout.startswith("Starting demo (installing its packages first)...\n")
    assert "demo is running at http://localhost:8123" in result.stdout
    assert "user@test.com / userpasswd" in result.stdout


def test_up_with_installed_packages_just_says_starting(runner, inside, fake_runtime):
    from quickscale.runtime import venv

    venv.venv_python(inside).parent.mkdir(parents=True)
    venv.venv_python(inside).touch()
    venv.hash_path(inside).parent.mkdir(parents=True, exist_ok=True)
    venv.hash_path(inside).write_text(venv.requirements_hash(inside) + "\n")

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Starting demo...\n")


def test_up_outside_a_project_exits_2_with_one_line(runner, fake_runtime):
    result = runner.invoke(app, ["up"])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "inside a QuickScale project" in result.stderr
    assert fake_runtime.calls == []


def test_up_works_from_a_subfolder_of_the_project(runner, project_dir, monkeypatch, fake_runtime):
    monkeypatch.chdir(project_dir / "core")

    assert runner.invoke(app, ["up"]).exit_code == 0
    assert fake_runtime.names() == ["up"]


def test_up_with_a_missing_env_says_how_to_fix_it(runner, inside, fake_runtime):
    (inside / ".env").unlink()

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert ".env is missing" in result.stderr
    assert ".env.example" in result.stderr
    assert fake_runtime.calls == []


def test_up_with_an_unparsable_env_line_names_the_line(runner, inside, fake_runtime):
    env = inside / ".env"
    env.write_text(env.read_text() + 'BROKEN="never closed\n')

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot be parsed" in result.stderr
    assert fake_runtime.calls == []


def test_up_with_a_bad_port_refuses_to_start(runner, inside, fake_runtime):
    env = inside / ".env"
    env.write_text(env.read_text() + "WEB_PORT=99999\n")

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert "WEB_PORT='99999' is not a port" in result.stderr
    assert fake_runtime.calls == []


def test_up_with_an_unreadable_env_says_so(runner, inside, fake_runtime):
    (inside / ".env").write_bytes(b"\xff\xfe\x00garbage")

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert "cannot be read" in result.stderr


def test_a_runtime_error_is_one_line_with_its_exit_code(runner, inside, fake_runtime):
    fake_runtime.up_error = QuickScaleError("Port 8000 is busy. Stop it first.", exit_code=3)

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 3
    assert result.stderr.strip() == "Error: Port 8000 is busy. Stop it first."


def test_verbose_adds_the_traceback(runner, inside, fake_runtime):
    fake_runtime.up_error = QuickScaleError("Port 8000 is busy. Stop it first.")

    result = runner.invoke(app, ["--verbose", "up"])

    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().endswith("Error: Port 8000 is busy. Stop it first.")


def test_ctrl_c_exits_130_with_one_line(runner, inside, fake_runtime):
    fake_runtime.up_error = KeyboardInterrupt()

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 130
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Interrupted" in result.stderr


def test_an_unexpected_error_is_one_line_without_traceback(runner, inside, fake_runtime):
    fake_runtime.up_error = RuntimeError("boom")

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "boom" in result.stderr and "--verbose" in result.stderr


def test_verbose_can_come_from_the_environment(runner, inside, fake_runtime, monkeypatch):
    monkeypatch.setenv("QUICKSCALE_VERBOSE", "1")
    fake_runtime.up_error = QuickScaleError("Port 8000 is busy. Stop it first.")

    result = runner.invoke(app, ["up"])

    assert "Traceback" in result.stderr
