"""`quickscale check`: a pass/fail table of the machine and the project, with a fix per failure."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from quickscale.cli import app
from quickscale.runtime.base import ServiceState, ServiceStatus


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def docker(tmp_path_factory, monkeypatch):
    """Put a stand-in `docker` first on PATH; `docker.running = False` makes `info` fail."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "docker"

    class Docker:
        def set(self, *, installed: bool, running: bool = False) -> None:
            if not installed:
                script.unlink(missing_ok=True)
                return
            body = 'echo "27.3.1"; exit 0' if running else 'echo "Cannot connect" >&2; exit 1'
            script.write_text(f"#!/bin/sh\n{body}\n")
            script.chmod(script.stat().st_mode | stat.S_IEXEC)

    monkeypatch.setenv("PATH", str(bin_dir))
    stand_in = Docker()
    stand_in.set(installed=False)
    return stand_in


def table(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def row(output: str, name: str) -> list[str]:
    return next(cells for cells in table(output) if cells[0] == name)


def set_env(root: Path, **values: str) -> None:
    path = root / ".env"
    lines = [line for line in path.read_text().splitlines() if line.split("=")[0] not in values]
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def test_outside_a_project_the_project_rows_say_so(runner, docker):
    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Python")[1] == "pass"
    assert row(result.stdout, "uv")[1] == "pass"
    assert row(result.stdout, ".env")[1:3] == ["skip", "not in a project"]
    assert row(result.stdout, "Web port")[1:3] == ["skip", "not in a project"]


def test_missing_docker_is_only_a_warning_for_local_projects(runner, inside, docker):
    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    docker_row = row(result.stdout, "Docker")
    assert docker_row[1] == "warn"
    assert "not installed" in docker_row[2]


def test_a_stopped_docker_engine_is_a_warning_for_local_projects(runner, inside, docker):
    docker.set(installed=True, running=False)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0
    assert row(result.stdout, "Docker")[1:3] == ["warn", "not running (only for --docker)"]


def test_a_running_docker_engine_passes(runner, docker):
    docker.set(installed=True, running=True)

    result = runner.invoke(app, ["check"])

    assert row(result.stdout, "Docker")[1:3] == ["pass", "engine 27.3.1 running"]


def test_a_docker_project_fails_without_a_running_engine(runner, inside, docker):
    docker.set(installed=True, running=False)
    set_env(inside, QUICKSCALE_RUNTIME="docker")

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, "Docker")[1] == "fail"
    assert row(result.stdout, "Docker")[3] == "start the Docker engine"


def test_a_sound_project_passes(runner, inside, docker):
    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert row(result.stdout, ".env")[1] == "pass"
    assert row(result.stdout, "Web port")[1] == "pass"
    assert "is free" in row(result.stdout, "Web port")[2]


def test_a_missing_env_fails_with_a_fix(runner, inside, docker):
    (inside / ".env").unlink()

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, ".env")[1:] == [
        "fail",
        ".env is missing",
        "copy .env.example to .env and set SECRET_KEY",
    ]


def test_an_unparsable_env_line_fails_naming_the_line(runner, inside, docker):
    env = inside / ".env"
    line_count = len(env.read_text().splitlines())
    env.write_text(env.read_text() + "this line is not an assignment\n")

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    env_row = row(result.stdout, ".env")
    assert env_row[1] == "fail"
    assert env_row[2] == f".env line {line_count + 1} cannot be parsed"
    assert env_row[3]


@pytest.mark.parametrize("port", ["0", "65536", "eighty", ""])
def test_a_bad_port_fails(runner, inside, docker, port):
    set_env(inside, WEB_PORT=port)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert f"WEB_PORT='{port}' is not a port" in row(result.stdout, ".env")[2]


def test_a_missing_required_key_fails(runner, inside, docker):
    env = inside / ".env"
    env.write_text(
        "\n".join(x for x in env.read_text().splitlines() if not x.startswith("SECRET_KEY"))
    )

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, ".env")[2] == ".env lacks SECRET_KEY"


def test_the_placeholder_secret_key_fails(runner, inside, docker):
    set_env(inside, SECRET_KEY="!!!SET SECRET_KEY!!!")

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, ".env")[2] == ".env SECRET_KEY is still the placeholder"


@pytest.fixture
def listener(inside):
    """Another program listening on the project's WEB_PORT."""
    port = int(
        next(
            x for x in (inside / ".env").read_text().splitlines() if x.startswith("WEB_PORT=")
        ).split("=")[1]
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def test_a_web_port_used_by_another_program_fails(runner, inside, listener, docker, fake_runtime):
    fake_runtime.statuses = []

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    port_row = row(result.stdout, "Web port")
    assert port_row[1:3] == ["fail", f"{listener} is in use by another program"]
    assert "WEB_PORT" in port_row[3]


def test_a_busy_port_with_fallback_enabled_is_a_warning(
    runner, inside, listener, docker, fake_runtime
):
    fake_runtime.statuses = []
    set_env(inside, WEB_PORT_ALTERNATIVE_FALLBACK="yes")

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0
    assert row(result.stdout, "Web port")[1] == "warn"


def test_a_web_port_used_by_this_project_passes(runner, inside, listener, docker, fake_runtime):
    fake_runtime.statuses = [ServiceStatus("web", ServiceState.RUNNING, port=listener, pid=99)]

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Web port")[1:3] == [
        "pass",
        f"{listener} is used by this project (pid 99)",
    ]


def test_the_web_port_checked_is_the_environments_when_set_there(
    runner, inside, listener, docker, fake_runtime, monkeypatch
):
    # .env names a busy port; the environment names a free one, which up would use.
    fake_runtime.statuses = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    monkeypatch.setenv("WEB_PORT", str(free))

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert row(result.stdout, "Web port")[1:3] == ["pass", f"{free} is free"]


def test_a_missing_uv_fails(runner, docker, monkeypatch):
    import uv

    def missing() -> str:
        raise FileNotFoundError("uv")

    monkeypatch.setattr(uv, "find_uv_bin", missing)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, "uv")[1:] == [
        "fail",
        "not found",
        "reinstall QuickScale: pip install .",
    ]


def test_a_docker_project_checks_its_database_port_too(
    runner, inside, listener, docker, fake_runtime
):
    fake_runtime.statuses = []
    set_env(inside, QUICKSCALE_RUNTIME="docker", WEB_PORT="1", DB_PORT_EXTERNAL=str(listener))
    docker.set(installed=True, running=True)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 1
    assert row(result.stdout, "DB port") == [
        "DB port",
        "fail",
        f"{listener} is in use by another program",
        "stop it, set DB_PORT_EXTERNAL in .env to a free port, "
        "or DB_PORT_EXTERNAL_ALTERNATIVE_FALLBACK=yes",
    ]
    set_env(inside, DB_PORT_EXTERNAL_ALTERNATIVE_FALLBACK="true")
    assert row(runner.invoke(app, ["check"]).stdout, "DB port")[1] == "warn"
    fake_runtime.statuses = [ServiceStatus("db", ServiceState.RUNNING, port=listener, pid=7)]
    set_env(inside, DB_PORT_EXTERNAL_ALTERNATIVE_FALLBACK="no")
    assert row(runner.invoke(app, ["check"]).stdout, "DB port")[1:3] == [
        "pass",
        f"{listener} is used by this project (pid 7)",
    ]


def test_a_local_project_has_no_database_port_row(runner, inside, docker, fake_runtime):
    result = runner.invoke(app, ["check"])

    assert "DB port" not in [cells[0] for cells in table(result.stdout)]


# --------------------------------------------------------------------------- --stripe


@pytest.mark.parametrize(("stripe_code", "exit_code"), [(0, 0), (1, 1)], ids=["ready", "findings"])
def test_stripe_runs_the_projects_stripe_check_and_takes_its_outcome(
    runner, inside, docker, fake_runtime, stripe_code, exit_code
):
    fake_runtime.exit_code = stripe_code

    result = runner.invoke(app, ["check", "--stripe"])

    assert result.exit_code == exit_code, result.output
    assert fake_runtime.calls == [("manage", ("stripe_check",))]
    assert row(result.stdout, ".env")[1] == "pass"  # the machine table is still shown


def test_without_stripe_the_account_is_not_checked(runner, inside, docker, fake_runtime):
    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.calls == []


def test_stripe_outside_a_project_exits_2_with_one_line(runner, docker, fake_runtime):
    result = runner.invoke(app, ["check", "--stripe"])

    assert result.exit_code == 2
    assert "'quickscale check --stripe' must run inside a QuickScale project" in result.stderr
    assert fake_runtime.calls == []
