"""`quickscale build --docker` and the Docker runtime through the command line."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML  # ships with check-jsonschema

from quickscale.cli import app
from quickscale.project import read_env_file

STANDIN = Path(__file__).resolve().parents[1] / "runtime" / "docker_standin.py"
TEMPLATE = Path(__file__).resolve().parents[2] / "quickscale" / "project_templates"


@pytest.fixture
def docker(tmp_path_factory, monkeypatch):
    """The recording stand-in `docker` (tests/runtime/docker_standin.py) first on PATH."""
    directory = tmp_path_factory.mktemp("docker")
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f"#!{sys.executable}\n" + STANDIN.read_text())
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_STANDIN_LOG", str(directory / "calls.jsonl"))
    monkeypatch.setenv("DOCKER_STANDIN_STATE", str(directory / "state.json"))
    for knob in ("ENGINE", "FAIL", "STDERR", "RC", "HEALTH", "EXEC_RC"):
        monkeypatch.delenv(f"DOCKER_STANDIN_{knob}", raising=False)
    return directory


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_build_docker_records_the_docker_runtime(runner, in_tmp):
    result = runner.invoke(app, ["build", "shop", "--docker", "--no-start"])

    assert result.exit_code == 0, result.output
    assert read_env_file(in_tmp / "shop" / ".env")["QUICKSCALE_RUNTIME"] == "docker"
    assert "(docker runtime)" in result.stdout


def test_build_without_docker_records_the_local_runtime(runner, in_tmp):
    result = runner.invoke(app, ["build", "shop", "--no-start"])

    assert result.exit_code == 0, result.output
    assert read_env_file(in_tmp / "shop" / ".env")["QUICKSCALE_RUNTIME"] == "local"


def test_build_docker_without_engine_keeps_the_project_and_says_how_to_start(
    runner, in_tmp, docker, monkeypatch
):
    monkeypatch.setenv("DOCKER_STANDIN_ENGINE", "down")

    result = runner.invoke(app, ["build", "shop", "--docker"])

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "Docker is not running (Cannot connect to the Docker daemon" in message
    assert "Start Docker, or use the local runtime" in message
    assert "cd shop && quickscale up" in message
    assert "Traceback" not in result.output
    assert (in_tmp / "shop" / ".quickscale" / "manifest.json").is_file()
    assert not (docker / "state.json").exists()  # no compose call changed anything


def test_up_shows_the_engines_message_on_one_line_without_traceback(
    runner, in_tmp, docker, monkeypatch
):
    runner.invoke(app, ["build", "shop", "--docker", "--no-start"])
    project = in_tmp / "shop"
    (project / "docker-compose.yml").write_text((TEMPLATE / "docker-compose.yml").read_text())
    with (project / ".env").open("a") as env:
        env.write(f"WEB_PORT={free_port()}\nDB_PORT_EXTERNAL={free_port()}\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("DOCKER_STANDIN_FAIL", "up")
    monkeypatch.setenv(
        "DOCKER_STANDIN_STDERR", "Error response from daemon: no space left on device"
    )

    result = runner.invoke(app, ["up"])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert "docker compose up failed: Error response from daemon: no space left" in error_lines[0]


def test_settings_set_in_the_environment_reach_the_docker_containers(
    runner, in_tmp, docker, monkeypatch
):
    # DEBUG=False quickscale manage check, .env saying DEBUG=True: the compose call
    # takes the override file, which gives web and worker the environment's DEBUG.
    runner.invoke(app, ["build", "shop", "--docker", "--no-start"])
    project = in_tmp / "shop"
    (project / "docker-compose.yml").write_text((TEMPLATE / "docker-compose.yml").read_text())
    with (project / ".env").open("a") as env:
        env.write(f"WEB_PORT={free_port()}\nDB_PORT_EXTERNAL={free_port()}\n")
    assert read_env_file(project / ".env")["DEBUG"] == "True"
    monkeypatch.chdir(project)
    monkeypatch.setenv("DEBUG", "False")

    result = runner.invoke(app, ["manage", "check"])

    assert result.exit_code == 0, result.output
    calls = [json.loads(line)["argv"] for line in (docker / "calls.jsonl").read_text().splitlines()]
    override = ".quickscale/compose.env.yml"
    [run] = [call for call in calls if "run" in call]
    assert run[: run.index("run")] == [
        "compose", "-p", "shop", "-f", "docker-compose.yml", "-f", override
    ]  # fmt: skip
    written = YAML(typ="safe").load((project / override).read_text())
    debug = {"environment": {"DEBUG": "False"}}
    assert written == {"services": {"web": debug, "worker": debug}}
