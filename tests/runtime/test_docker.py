"""The Docker runtime, against a stand-in `docker` executable (no engine runs here).

The stand-in (tests/runtime/docker_standin.py) records every call and answers
like compose does; these tests assert the exact compose calls each command
makes, and what the user sees when the engine or compose fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract import ContractSubject, RuntimeContract
from fixtures_project import free_port, reload_project, set_env_value
from ruamel.yaml import YAML  # ships with check-jsonschema

from quickscale.errors import QuickScaleError
from quickscale.project import Project
from quickscale.runtime.base import ServiceState
from quickscale.runtime.docker import (
    DockerRuntime,
    compose_project_name,
    parse_ps_output,
)

STANDIN = Path(__file__).with_name("docker_standin.py")
TEMPLATE = Path(__file__).resolve().parents[2] / "quickscale" / "project_templates"
COMPOSE = ["compose", "-p", "shop", "-f", "docker-compose.yml"]
INFO = ["info", "--format", "{{.ServerVersion}}"]
PS = [*COMPOSE, "ps", "--all", "--format", "json"]
MAIL_LOG = "/app/.quickscale/logs/mail.log"
OVERRIDE = ".quickscale/compose.env.yml"
RECREATE = ["up", "-d", "--build", "--force-recreate", "web", "worker"]
WITH_OVERRIDE = [*COMPOSE, "-f", OVERRIDE]


@dataclass
class Standin:
    """Handle on the stand-in `docker`: what it was called with, what it holds."""

    log: Path
    state_path: Path

    def calls(self) -> list[list[str]]:
        if not self.log.is_file():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]

    def envs(self) -> list[dict[str, str]]:
        return [json.loads(line)["env"] for line in self.log.read_text().splitlines()]

    def exec_envs(self) -> list[dict[str, str]]:
        """Per call, the values compose resolved for its `exec -e NAME` options."""
        return [json.loads(line)["exec_env"] for line in self.log.read_text().splitlines()]

    def compose_calls(self) -> list[list[str]]:
        """The calls after `-p NAME -f FILE`, skipping engine checks and `ps`."""
        return [
            call[len(COMPOSE) :]
            for call in self.calls()
            if call[: len(COMPOSE)] == COMPOSE and call != PS
        ]

    def state(self) -> dict:
        if not self.state_path.is_file():
            return {}
        return json.loads(self.state_path.read_text())

    def reset_log(self) -> None:
        self.log.unlink(missing_ok=True)


def install_standin(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Standin:
    """Put the stand-in `docker` first on PATH, logging and keeping state in `directory`."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n" + STANDIN.read_text())
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    standin = Standin(log=directory / "docker-calls.jsonl", state_path=directory / "docker.json")
    monkeypatch.setenv("DOCKER_STANDIN_LOG", str(standin.log))
    monkeypatch.setenv("DOCKER_STANDIN_STATE", str(standin.state_path))
    for knob in ("ENGINE", "FAIL", "STDERR", "RC", "HEALTH", "EXEC_RC"):
        monkeypatch.delenv(f"DOCKER_STANDIN_{knob}", raising=False)
    for key in ("WEB_PORT", "DB_PORT_EXTERNAL"):
        monkeypatch.delenv(key, raising=False)
    return standin


def stop_standin_server(standin: Standin) -> None:
    pid = standin.state().get("services", {}).get("web", {}).get("server_pid")
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture
def docker_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    standin = install_standin(tmp_path, monkeypatch)
    yield standin
    stop_standin_server(standin)


def make_project(tmp_path: Path, **env: str) -> Project:
    root = tmp_path / "shop"
    root.mkdir(exist_ok=True)
    shutil.copy(TEMPLATE / "docker-compose.yml", root / "docker-compose.yml")
    values = {
        "QUICKSCALE_RUNTIME": "docker",
        "WEB_PORT": str(free_port()),
        "DB_PORT_EXTERNAL": str(free_port()),
        "DB_PASSWORD": "pw",
        **env,
    }
    (root / ".env").write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return Project(root=root, env=values)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


@pytest.fixture
def runtime(project: Project, docker_standin: Standin) -> DockerRuntime:
    runtime = DockerRuntime(project)
    runtime.health_interval = 0.05
    runtime.health_timeout = 10.0
    return runtime


def started(runtime: DockerRuntime, standin: Standin) -> DockerRuntime:
    runtime.up()
    standin.reset_log()
    return runtime


def get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


# up


def test_up_checks_the_engine_builds_and_starts_with_the_chosen_ports(runtime, docker_standin):
    web_port = runtime.project.env["WEB_PORT"]
    db_port = runtime.project.env["DB_PORT_EXTERNAL"]

    result = runtime.up()

    assert docker_standin.calls() == [INFO, PS, [*COMPOSE, "up", "-d", "--build"]]
    assert docker_standin.envs()[-1] == {"WEB_PORT": web_port, "DB_PORT_EXTERNAL": db_port}
    assert result.url == f"http://localhost:{web_port}/"
    assert result.already_running is False
    assert get(f"{result.url}health/") == (200, {"status": "ok", "database": "ok"})


def test_ports_set_in_the_environment_win_over_env_file(runtime, docker_standin, monkeypatch):
    # Compose reads ${WEB_PORT} the same way: the environment first, then .env.
    web_port, db_port = str(free_port()), str(free_port())
    monkeypatch.setenv("WEB_PORT", web_port)
    monkeypatch.setenv("DB_PORT_EXTERNAL", db_port)
    assert web_port != runtime.project.env["WEB_PORT"]

    result = runtime.up()

    assert docker_standin.envs()[-1] == {"WEB_PORT": web_port, "DB_PORT_EXTERNAL": db_port}
    assert result.url == f"http://localhost:{web_port}/"


def test_up_when_running_keeps_the_published_ports(runtime, docker_standin):
    first = runtime.up()
    docker_standin.reset_log()

    again = runtime.up()

    assert again.already_running is True
    assert again.url == first.url
    assert docker_standin.compose_calls() == [["up", "-d", "--build"]]


def test_up_without_engine_says_so_and_changes_nothing(runtime, docker_standin, monkeypatch):
    monkeypatch.setenv("DOCKER_STANDIN_ENGINE", "down")

    with pytest.raises(QuickScaleError) as error:
        runtime.up()

    message = str(error.value)
    assert message.startswith("Docker is not running (Cannot connect to the Docker daemon")
    assert "Start Docker, or use the local runtime" in message
    assert error.value.exit_code != 0
    assert docker_standin.calls() == [INFO]
    assert docker_standin.state() == {}


def test_up_without_docker_installed_says_so(runtime, docker_standin, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(QuickScaleError, match=r"Docker is not installed"):
        runtime.up()


def test_up_shows_the_engines_own_message_when_compose_fails(runtime, docker_standin, monkeypatch):
    engine_says = (
        "Error response from daemon: pull access denied for postgres, repository does not exist"
    )
    monkeypatch.setenv("DOCKER_STANDIN_FAIL", "up")
    monkeypatch.setenv("DOCKER_STANDIN_STDERR", engine_says)

    with pytest.raises(QuickScaleError) as error:
        runtime.up()

    assert engine_says in str(error.value)
    assert "Traceback" not in str(error.value)
    assert "quickscale up" in str(error.value)


def test_up_reports_a_web_server_that_never_gets_healthy(runtime, docker_standin, monkeypatch):
    monkeypatch.setenv("DOCKER_STANDIN_HEALTH", "503")
    runtime.health_timeout = 0.5

    with pytest.raises(QuickScaleError) as error:
        runtime.up()

    message = str(error.value)
    assert "/health/ did not answer 200" in message
    assert "HTTP 503" in message
    assert "quickscale logs web" in message
    assert docker_standin.compose_calls()[-1] == ["logs", "--tail", "20", "web"]


@pytest.mark.parametrize("key", ["DB_PORT_EXTERNAL", "WEB_PORT"])
def test_up_with_a_busy_port_and_no_fallback_fails_before_compose(tmp_path, docker_standin, key):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runtime = DockerRuntime(make_project(tmp_path, **{key: str(port)}))

        with pytest.raises(QuickScaleError) as error:
            runtime.up()

    message = str(error.value)
    assert f"Port {port} ({key}) is already in use" in message
    assert f"{key}_ALTERNATIVE_FALLBACK=true" in message
    assert docker_standin.compose_calls() == []


@pytest.mark.parametrize("key", ["DB_PORT_EXTERNAL", "WEB_PORT"])
def test_up_with_a_busy_port_and_fallback_takes_the_next_free_one(tmp_path, docker_standin, key):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {key: str(port), f"{key}_ALTERNATIVE_FALLBACK": "yes"}
        runtime = DockerRuntime(make_project(tmp_path, **env))
        runtime.health_interval = 0.05

        result = runtime.up()

    chosen = int(docker_standin.envs()[-1][key])
    assert chosen > port
    assert any(f"Port {port} ({key}) is busy; using {chosen}" in note for note in result.notes)
    published = {row.name: row.port for row in runtime.status()}
    assert published["web" if key == "WEB_PORT" else "db"] == chosen


def test_up_after_a_switch_from_the_local_runtime_says_so_once(runtime, docker_standin):
    marker = runtime.project.state_dir / "last-runtime"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("local\n")

    first = runtime.up()
    again = runtime.up()

    [note] = [note for note in first.notes if note.startswith("Runtime switched")]
    assert "last ran with the local runtime and now runs with docker" in note
    assert "QUICKSCALE_RUNTIME=local" in note
    assert not [note for note in again.notes if note.startswith("Runtime switched")]
    assert marker.read_text() == "docker\n"


# restart


def test_restart_rebuilds_and_recreates_web_and_worker_on_their_ports(runtime, docker_standin):
    # A fresh build, so both containers run the code and .env as they are now.
    started(runtime, docker_standin)
    before = {row.name: row for row in runtime.status()}
    docker_standin.reset_log()

    result = runtime.restart()

    assert docker_standin.compose_calls() == [RECREATE]
    assert docker_standin.envs()[-1] == {
        "WEB_PORT": str(before["web"].port),
        "DB_PORT_EXTERNAL": str(before["db"].port),
    }
    after = {row.name: row for row in runtime.status()}
    assert after["web"].pid != before["web"].pid
    assert result.url == f"http://localhost:{before['web'].port}/"
    assert result.already_running is False
    assert result.notes == ()
    assert get(f"{result.url}health/")[0] == 200


def test_restart_of_a_stopped_project_starts_it_and_says_so(runtime, docker_standin):
    result = runtime.restart()

    assert docker_standin.compose_calls() == [RECREATE]
    assert result.notes == ("It was not running; started it.",)
    assert get(f"{result.url}health/")[0] == 200


def test_restart_reports_a_web_server_that_never_gets_healthy(runtime, docker_standin, monkeypatch):
    started(runtime, docker_standin)
    monkeypatch.setenv("DOCKER_STANDIN_HEALTH", "503")
    runtime.health_timeout = 0.5

    with pytest.raises(QuickScaleError, match="did not answer 200"):
        runtime.restart()


def test_the_docker_runtime_never_reloads_code(runtime, docker_standin):
    # Its image holds the code as built: a change needs `quickscale restart`.
    started(runtime, docker_standin)

    assert runtime.reloads_code() is False


# down, status


def test_down_stops_the_containers_and_keeps_the_volumes(runtime, docker_standin):
    started(runtime, docker_standin)

    runtime.down()

    assert docker_standin.calls() == [INFO, [*COMPOSE, "down"]]
    states = {row.name: row.state for row in runtime.status()}
    assert states == {
        "web": ServiceState.STOPPED,
        "worker": ServiceState.STOPPED,
        "db": ServiceState.STOPPED,
        "mail": ServiceState.STOPPED,
    }
    assert docker_standin.state()["volumes"] is True


def test_status_parses_compose_ps_into_rows(runtime, docker_standin):
    started(runtime, docker_standin)

    rows = {row.name: row for row in runtime.status()}

    containers = ["shop-web-id", "shop-worker-id", "shop-proxy-id", "shop-db-id"]
    assert docker_standin.calls() == [
        INFO,
        PS,
        ["inspect", "--format", "{{.State.Pid}}", *containers],
    ]
    assert rows["web"].state is ServiceState.RUNNING
    assert rows["web"].pid == docker_standin.state()["services"]["web"]["server_pid"]
    # The site's port, which the proxy in front of the web containers publishes.
    assert rows["web"].port == int(runtime.project.env["WEB_PORT"])
    assert rows["db"].port == int(runtime.project.env["DB_PORT_EXTERNAL"])
    assert rows["db"].detail == "Up 5 seconds"
    assert rows["worker"].state is ServiceState.RUNNING
    assert rows["worker"].port is None
    assert rows["worker"].pid == docker_standin.state()["services"]["worker"]["pid"]
    assert rows["mail"].state is ServiceState.RUNNING


def test_status_shows_a_worker_that_keeps_crashing(runtime, docker_standin, monkeypatch):
    # restart: unless-stopped brings it back after each exit; ps must not call it stopped.
    monkeypatch.setenv("DOCKER_STANDIN_CRASHED", "worker")
    started(runtime, docker_standin)

    rows = {row.name: row for row in runtime.status()}

    assert rows["worker"].state is ServiceState.CRASHED
    assert rows["worker"].detail == "Restarting (1) 3 seconds ago"
    assert rows["web"].state is ServiceState.RUNNING


def test_status_of_a_project_never_started(runtime, docker_standin):
    rows = runtime.status()

    assert [(row.name, row.state, row.port) for row in rows] == [
        ("web", ServiceState.STOPPED, None),
        ("worker", ServiceState.STOPPED, None),
        ("db", ServiceState.STOPPED, None),
        ("mail", ServiceState.STOPPED, None),
    ]


def test_status_of_a_project_whose_web_container_publishes_its_own_port(runtime):
    # A compose file from before the proxy service: web publishes WEB_PORT itself.
    containers = {
        "web": {
            "Service": "web",
            "State": "running",
            "Publishers": [{"TargetPort": 8000, "PublishedPort": 8123}],
        }
    }

    rows = {row.name: row for row in runtime._ps(containers)}

    assert rows["web"].port == 8123
    assert "proxy" not in rows["web"].detail


def test_a_running_web_container_without_its_proxy_has_no_address(runtime):
    web = {"Service": "web", "State": "running", "Status": "Up 5 seconds"}
    proxy = {"Service": "proxy", "State": "exited", "ExitCode": 1, "Status": "Exited (1)"}

    rows = {row.name: row for row in runtime._ps({"web": web, "proxy": proxy})}

    assert rows["web"].state is ServiceState.RUNNING
    assert rows["web"].port is None
    assert rows["web"].detail == "Up 5 seconds; proxy not running (crashed)"


def test_status_shows_the_engines_message_when_compose_fails(runtime, docker_standin, monkeypatch):
    monkeypatch.setenv("DOCKER_STANDIN_FAIL", "ps")
    monkeypatch.setenv("DOCKER_STANDIN_STDERR", "no configuration file provided: not found")

    with pytest.raises(QuickScaleError, match="no configuration file provided: not found"):
        runtime.status()


@pytest.mark.parametrize(
    "stdout",
    [
        '{"Service": "web", "State": "running"}\n{"Service": "db", "State": "exited"}\n',
        '[{"Service": "web", "State": "running"}, {"Service": "db", "State": "exited"}]',
    ],
    ids=["one-object-a-line", "json-array"],
)
def test_parse_ps_output_reads_both_compose_formats(stdout):
    assert [row["Service"] for row in parse_ps_output(stdout)] == ["web", "db"]
    assert parse_ps_output("") == []


# logs, shell, manage


@pytest.mark.parametrize("service", ["web", "worker", "db"])
def test_logs_of_a_container(runtime, docker_standin, capfd, service):
    assert runtime.logs(service, follow=False, lines=50) == 0
    assert runtime.logs(service, follow=True, lines=5) == 0

    assert docker_standin.compose_calls() == [
        ["logs", "--tail", "50", service],
        ["logs", "-f", "--tail", "5", service],
    ]
    assert f"a line of the {service} log" in capfd.readouterr().out


def test_logs_mail_reads_the_web_containers_log_volume(runtime, docker_standin):
    started(runtime, docker_standin)

    runtime.logs("mail", follow=False, lines=20)
    runtime.logs("mail", follow=True, lines=3)

    assert docker_standin.compose_calls() == [
        ["exec", "web", "tail", "-n", "20", MAIL_LOG],
        ["exec", "web", "tail", "-n", "3", "-F", MAIL_LOG],
    ]


def test_logs_mail_of_a_stopped_project_reads_the_volume_without_the_database(
    runtime, docker_standin
):
    runtime.logs("mail", follow=False, lines=20)

    assert docker_standin.compose_calls() == [
        ["run", "--rm", "--no-deps", "--entrypoint", "tail", "web", "-n", "20", MAIL_LOG],
    ]
    assert "db" not in docker_standin.state()["services"]


def test_shell_opens_bash_in_the_web_container(runtime, docker_standin):
    started(runtime, docker_standin)

    assert runtime.shell() == 0

    assert docker_standin.compose_calls() == [["exec", "web", "bash"]]


def test_manage_runs_in_the_running_web_container(runtime, docker_standin, monkeypatch):
    started(runtime, docker_standin)
    monkeypatch.setenv("DOCKER_STANDIN_EXEC_RC", "3")

    assert runtime.manage(["migrate", "--check"]) == 3
    assert runtime.django_shell(["-c", "print(1)"]) == 3

    assert docker_standin.compose_calls() == [
        ["exec", "web", "python", "manage.py", "migrate", "--check"],
        ["exec", "web", "python", "manage.py", "shell", "-c", "print(1)"],
    ]


def test_manage_on_a_stopped_project_starts_only_the_database(runtime, docker_standin):
    assert runtime.manage(["createsuperuser"]) == 0

    run = ["run", "--rm", "-e", "QUICKSCALE_SKIP_BOOTSTRAP=1", "web"]
    assert docker_standin.compose_calls() == [[*run, "python", "manage.py", "createsuperuser"]]
    assert docker_standin.envs()[-1]["DB_PORT_EXTERNAL"] == runtime.project.env["DB_PORT_EXTERNAL"]
    services = docker_standin.state()["services"]
    assert services["db"]["state"] == "running"
    assert "web" not in services


def test_manage_again_reuses_the_port_of_the_database_left_running(runtime, docker_standin):
    runtime.manage(["migrate"])
    db_port = int(docker_standin.envs()[-1]["DB_PORT_EXTERNAL"])

    with socket.socket() as published:  # the running db container holds its port
        published.bind(("127.0.0.1", db_port))
        published.listen()
        assert runtime.manage(["createsuperuser"]) == 0

    assert docker_standin.envs()[-1]["DB_PORT_EXTERNAL"] == str(db_port)


def test_shell_on_a_stopped_project_uses_a_one_off_container(runtime, docker_standin):
    runtime.shell()

    assert docker_standin.compose_calls() == [
        ["run", "--rm", "-e", "QUICKSCALE_SKIP_BOOTSTRAP=1", "web", "bash"]
    ]


# destroy


def test_destroy_removes_containers_and_volumes(runtime, docker_standin):
    started(runtime, docker_standin)

    runtime.destroy()

    assert docker_standin.calls() == [INFO, [*COMPOSE, "down", "-v", "--remove-orphans"]]
    assert docker_standin.state() == {"services": {}, "volumes": False}


def test_destroy_when_the_containers_are_already_gone(runtime, docker_standin):
    started(runtime, docker_standin)
    runtime.destroy()
    docker_standin.reset_log()

    runtime.destroy()

    assert docker_standin.calls() == [INFO, [*COMPOSE, "down", "-v", "--remove-orphans"]]


def test_destroy_without_engine_changes_nothing(runtime, docker_standin, monkeypatch):
    started(runtime, docker_standin)
    before = docker_standin.state()
    monkeypatch.setenv("DOCKER_STANDIN_ENGINE", "down")

    with pytest.raises(QuickScaleError, match="Docker is not running") as failure:
        runtime.destroy()

    assert "Start Docker and run quickscale destroy again" in str(failure.value)
    assert "QUICKSCALE_RUNTIME=local" not in str(failure.value)
    assert docker_standin.calls() == [INFO]
    assert docker_standin.state() == before


def test_destroy_shows_the_engines_message_when_compose_fails(runtime, docker_standin, monkeypatch):
    monkeypatch.setenv("DOCKER_STANDIN_FAIL", "down")
    monkeypatch.setenv("DOCKER_STANDIN_STDERR", "Error response from daemon: volume is in use")

    with pytest.raises(QuickScaleError, match="volume is in use"):
        runtime.destroy()


# settings from the process environment


def docker_project(tmp_path: Path, **env: str) -> DockerRuntime:
    """A docker project whose .env also holds `env`, with the template's .env.example."""
    project = make_project(tmp_path, **env)
    for name in (".env.example", ".gitignore"):
        shutil.copy(TEMPLATE / name, project.root / name)
    runtime = DockerRuntime(project)
    runtime.health_interval = 0.05
    runtime.health_timeout = 10.0
    return runtime


def override_file(runtime: DockerRuntime) -> dict:
    return YAML(typ="safe").load((runtime.project.root / OVERRIDE).read_text())


def compose_schema_problems(*files: Path) -> str:
    """What the compose specification's JSON schema says of each file ('' when all are valid)."""
    validator = Path(sys.executable).with_name("check-jsonschema")
    command = [str(validator), "--builtin-schema", "vendor.compose-spec", *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_settings_set_in_the_environment_win_over_env_file_in_the_containers(
    tmp_path, docker_standin, monkeypatch
):
    # DEBUG=False quickscale up: compose gives web .env through env_file, and its
    # `environment:` wins over env_file, so the override file carries the process's values.
    runtime = docker_project(tmp_path, DEBUG="True", SECRET_KEY="from-env-file")
    monkeypatch.setenv("DEBUG", "False")
    monkeypatch.setenv("SECRET_KEY", "pa$word-${HOME}")  # compose must not interpolate it
    monkeypatch.setenv("SITE_URL", "https://shop.example")  # documented, not in .env
    monkeypatch.setenv("DB_PASSWORD", "pw")  # as .env says: env_file gives it already
    monkeypatch.setenv("DATABASE_URL", "postgres://u@elsewhere/x")  # the container's own db
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "another.settings")
    monkeypatch.setenv("UNRELATED_SHELL_VARIABLE", "x")
    assert "HOME" in os.environ

    runtime.up()

    assert docker_standin.calls() == [
        INFO,
        [*WITH_OVERRIDE, "ps", "--all", "--format", "json"],
        [*WITH_OVERRIDE, "up", "-d", "--build"],
    ]
    path = runtime.project.root / OVERRIDE
    overridden = {
        "environment": {
            "DEBUG": "False",
            "SECRET_KEY": "pa$$word-$${HOME}",
            "SITE_URL": "https://shop.example",
        }
    }
    # The worker runs the same code with the same settings as the web server.
    assert override_file(runtime) == {"services": {"web": overridden, "worker": overridden}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert compose_schema_problems(runtime.project.root / "docker-compose.yml", path) == ""
    # It may hold secrets: the project's git never takes it.
    subprocess.run(["git", "init", "-q"], cwd=runtime.project.root, check=True)
    ignored = ["git", "check-ignore", "-q", OVERRIDE]
    assert subprocess.run(ignored, cwd=runtime.project.root, check=False).returncode == 0


def test_every_compose_call_takes_the_override(tmp_path, docker_standin, monkeypatch):
    runtime = started(docker_project(tmp_path, DEBUG="True"), docker_standin)
    monkeypatch.setenv("DEBUG", "False")

    runtime.status()
    runtime.logs("web", follow=False, lines=5)
    runtime.down()
    runtime.manage(["migrate"])  # stopped: a one-off container, created with the override
    runtime.destroy()

    compose_calls = [call for call in docker_standin.calls() if call[:1] == ["compose"]]
    assert len(compose_calls) >= 5
    assert all(call[: len(WITH_OVERRIDE)] == WITH_OVERRIDE for call in compose_calls)
    run = ["run", "--rm", "-e", "QUICKSCALE_SKIP_BOOTSTRAP=1", "web", "python", "manage.py"]
    assert [*WITH_OVERRIDE, *run, "migrate"] in compose_calls


def test_commands_in_the_running_container_get_the_environments_values(
    tmp_path, docker_standin, monkeypatch
):
    # The running container keeps the environment it was created with: each exec
    # names the overriding settings, whose values compose takes from its environment.
    runtime = started(docker_project(tmp_path, DEBUG="True", SECRET_KEY="s"), docker_standin)
    monkeypatch.setenv("DEBUG", "False")
    monkeypatch.setenv("SECRET_KEY", "not-on-the-command-line")

    runtime.manage(["check"])
    runtime.django_shell()
    runtime.shell()
    runtime.logs("mail", follow=False, lines=3)

    exec_calls = [call for call in docker_standin.calls() if "exec" in call]
    passed = ["-e", "DEBUG", "-e", "SECRET_KEY", "web"]
    assert exec_calls == [
        [*WITH_OVERRIDE, "exec", *passed, "python", "manage.py", "check"],
        [*WITH_OVERRIDE, "exec", *passed, "python", "manage.py", "shell"],
        [*WITH_OVERRIDE, "exec", *passed, "bash"],
        [*WITH_OVERRIDE, "exec", *passed, "tail", "-n", "3", MAIL_LOG],
    ]
    resolved = [
        env
        for call, env in zip(docker_standin.calls(), docker_standin.exec_envs(), strict=True)
        if "exec" in call
    ]
    assert resolved == [{"DEBUG": "False", "SECRET_KEY": "not-on-the-command-line"}] * 4


def test_without_overriding_settings_the_calls_are_as_before_and_no_override_is_left(
    tmp_path, docker_standin, monkeypatch
):
    runtime = docker_project(tmp_path, DEBUG="True")
    stale = runtime.project.root / OVERRIDE
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text('{"services": {"web": {"environment": {"SECRET_KEY": "old"}}}}')
    monkeypatch.setenv("DEBUG", "True")  # as .env says
    monkeypatch.setenv("UNRELATED_SHELL_VARIABLE", "x")

    runtime.up()
    runtime.manage(["check"])

    assert docker_standin.calls()[:3] == [INFO, PS, [*COMPOSE, "up", "-d", "--build"]]
    assert [*COMPOSE, "exec", "web", "python", "manage.py", "check"] in docker_standin.calls()
    assert not stale.exists()


def test_a_setting_that_is_not_text_is_refused_before_compose_runs(
    tmp_path, docker_standin, monkeypatch
):
    runtime = docker_project(tmp_path, DEBUG="True")
    monkeypatch.setenv("DEBUG", "\udcff")  # the byte 0xff: not UTF-8

    with pytest.raises(QuickScaleError, match="DEBUG in the environment is not valid UTF-8"):
        runtime.up()

    assert docker_standin.calls() == [INFO]
    assert docker_standin.state() == {}
    assert not (runtime.project.root / OVERRIDE).exists()


# project naming and files


@pytest.mark.parametrize(
    ("directory", "name"),
    [("shop", "shop"), ("My Shop", "myshop"), ("_x.y-z", "xy-z"), ("___", "quickscale")],
)
def test_compose_project_name_is_derived_from_the_directory(directory, name):
    assert compose_project_name(Path("/somewhere") / directory) == name


def test_a_missing_compose_file_is_a_clear_error(runtime, docker_standin):
    (runtime.project.root / "docker-compose.yml").unlink()

    with pytest.raises(QuickScaleError, match=r"docker-compose.yml is missing"):
        runtime.status()


# The runtime contract every runtime passes, against a project built with --docker.


@pytest.fixture(scope="class")
def contract_subject(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractSubject]:
    """A project built with --docker, its runtime, and the stand-in's volume as its data."""
    from quickscale.generator.generate import generate_project

    directory = tmp_path_factory.mktemp("docker-contract")
    with pytest.MonkeyPatch.context() as monkeypatch:
        standin = install_standin(directory, monkeypatch)
        root = generate_project(directory / "contract", runtime="docker")
        set_env_value(root / ".env", "WEB_PORT", str(free_port()))
        set_env_value(root / ".env", "DB_PORT_EXTERNAL", str(free_port()))
        runtime = DockerRuntime(reload_project(root))
        assert runtime.project.runtime_name == "docker"
        runtime.health_interval = 0.05
        yield ContractSubject(runtime=runtime, data_exists=lambda: standin.state()["volumes"])
        stop_standin_server(standin)


class TestDockerRuntimeContract(RuntimeContract):
    """The shared runtime suite; the stand-in keeps the database's rows in its volume state."""
