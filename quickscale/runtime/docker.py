"""The Docker runtime: every command maps to `docker compose` on the project's compose file.

The project runs as four compose services, `web` and `worker` (the project's
own image in its two roles: server, background tasks), `proxy` (nginx, which
publishes WEB_PORT and spreads requests over the web containers, however many
`--scale web=N` starts) and `db` (postgres:15), under a compose project name
derived from the project directory. All state lives in Docker's named volumes
(`pgdata`, `media`, `logs`; `redisdata` for the optional `redis` service,
which COMPOSE_PROFILES=redis in `.env` turns on), so `down` keeps it and
`destroy` removes it. Every call to `docker` goes through `run_docker`, one small
function, so tests can observe the calls with a stand-in `docker` executable
on PATH.

A setting set in the process environment wins over `.env` in the containers
too, as it does for the local runtime: compose gives a service its `env_file`
(`.env`) under its `environment:`, so every compose call adds a second compose
file, written to the git-ignored state directory, whose `environment:` holds
the project's settings that the process environment sets otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from quickscale.errors import QuickScaleError
from quickscale.project import Project, process_settings
from quickscale.runtime import ports
from quickscale.runtime.base import Runtime, ServiceState, ServiceStatus, UpResult
from quickscale.runtime.switch import note_runtime_switch

COMPOSE_FILE = "docker-compose.yml"
WEB_CONTAINER_PORT = 8000
# The proxy's port in its container; WEB_PORT on the host is published to it.
PROXY_CONTAINER_PORT = 8080
DB_CONTAINER_PORT = 5432
# Where the web container's development mail backend appends (the `logs` volume).
MAIL_LOG_IN_CONTAINER = "/app/.quickscale/logs/mail.log"
# A one-off `manage` run on a stopped project skips the entrypoint's start-up work.
SKIP_BOOTSTRAP = "QUICKSCALE_SKIP_BOOTSTRAP=1"
# The second compose file: the settings the process environment sets over `.env`.
# Relative to the project root, where compose runs; .dockerignore keeps it out of images.
ENVIRONMENT_OVERRIDE_FILE = ".quickscale/compose.env.yml"
# The compose file's services that take `.env` (env_file), each with the variables
# the compose file sets for it itself (the container's database and paths), which
# the process environment does not override.
_APP_OWN = frozenset(
    {"DATABASE_URL", "DB_HOST", "DB_PORT", "MEDIA_ROOT", "MAIL_LOG_PATH", "TRUSTED_PROXY_COUNT"}
)
ENV_FILE_SERVICES: dict[str, frozenset[str]] = {"web": _APP_OWN, "worker": _APP_OWN}
# The services `ps` lists, in its order (then `mail`, which lives in the web container).
# The proxy has no row of its own: the web row shows the site's port, which the
# proxy publishes, and says so when the proxy is not running.
SERVICES = ("web", "worker", "db")
# The container port each service publishes (web: in compose files older than the proxy).
_PUBLISHED = {"web": WEB_CONTAINER_PORT, "proxy": PROXY_CONTAINER_PORT, "db": DB_CONTAINER_PORT}
# Characters JSON leaves raw that YAML refuses in a file or reads as line breaks
# (a double-quoted value would change): written as \u escapes instead.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")

LOCAL_INSTEAD = (
    "use the local runtime: set QUICKSCALE_RUNTIME=local in .env (it keeps its data in "
    "its own database, not in Docker's volumes)"
)


def run_docker(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    echo_stderr: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS` in `cwd`; the one place this module starts a process.

    `env` is added to the current environment. With `capture` the output is
    returned; with `echo_stderr` stdout is captured and stderr (compose's
    progress) is shown as it comes and also returned; with neither the command
    shares the terminal (logs, shells, manage). A missing `docker` executable
    becomes a QuickScaleError.
    """
    command = ["docker", *args]
    full_env = {**os.environ, **env} if env else None
    try:
        if not echo_stderr:
            return subprocess.run(
                command, cwd=cwd, env=full_env, check=False, text=True, capture_output=capture
            )
        with subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stderr is not None and process.stdout is not None
            seen: list[str] = []
            for line in process.stderr:
                sys.stderr.write(line)
                seen.append(line)
            stdout = process.stdout.read()
            returncode = process.wait()
        return subprocess.CompletedProcess(command, returncode, stdout, "".join(seen))
    except FileNotFoundError as exc:
        raise QuickScaleError(
            f"Docker is not installed ('docker' was not found on PATH). "
            f"Install Docker, or {LOCAL_INSTEAD}."
        ) from exc


def compose_project_name(root: Path) -> str:
    """Return the compose project name for a project directory (compose's allowed characters)."""
    name = re.sub(r"[^a-z0-9_-]", "", root.name.lower()).lstrip("_-")
    return name or "quickscale"


def require_engine(cwd: Path, *, advice: str = f"Start Docker, or {LOCAL_INSTEAD}.") -> None:
    """Raise a QuickScaleError saying what to do unless the Docker engine answers."""
    result = run_docker(["info", "--format", "{{.ServerVersion}}"], cwd=cwd, capture=True)
    if result.returncode != 0:
        problem = _first_line(result.stderr) or f"'docker info' exited {result.returncode}"
        raise QuickScaleError(f"Docker is not running ({problem}). {advice}")


class DockerRuntime(Runtime):
    """Run a project with `docker compose`: web, worker, postgres:15; state in named volumes."""

    name = "docker"
    # Seconds `up` waits for /health/ (a first start migrates the database).
    health_timeout: float = 180.0
    health_interval: float = 1.0

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        self.compose_name = compose_project_name(project.root)

    # Runtime interface.

    def up(self) -> UpResult:
        return self._compose_up([])

    def restart(self) -> UpResult:
        # Not `compose restart web`: that restarts the same container, whose image
        # holds the code as of its build and whose environment is .env as of its
        # creation. Recreating the web container from a fresh build takes both as
        # they are now; its entrypoint runs bootstrap again. The worker is recreated
        # from the same build (it runs the same code). The database keeps running.
        result = self._compose_up(["--force-recreate", "web", "worker"])
        if result.already_running:
            return replace(result, already_running=False)
        return replace(result, notes=("It was not running; started it.", *result.notes))

    def _compose_up(self, args: Sequence[str]) -> UpResult:
        """`compose up -d --build ARGS` on the published (or chosen) ports, then wait for health."""
        self._require_engine()
        running = {row.name: row for row in self._ps() if row.state is ServiceState.RUNNING}
        notes: list[str] = []
        if "web" in running and running["web"].port:
            web_port = running["web"].port
        else:
            web_port = self._choose_port("WEB_PORT", 8000, notes)
        if "db" in running and running["db"].port:
            db_port = running["db"].port
        else:
            db_port = self._choose_port("DB_PORT_EXTERNAL", 5432, notes)
        result = self._compose(
            ["up", "-d", "--build", *args],
            env={"WEB_PORT": str(web_port), "DB_PORT_EXTERNAL": str(db_port)},
            echo_stderr=True,
        )
        if result.returncode != 0:
            raise QuickScaleError(
                f"docker compose up failed: {_engine_message(result)} "
                "Fix the cause and run 'quickscale up' again."
            )
        # localhost, not 127.0.0.1: passkeys (WebAuthn) refuse an IP address as the site.
        url = f"http://localhost:{web_port}/"
        self._wait_for_health(web_port)
        switched = note_runtime_switch(self.project, self.name)
        if switched:
            notes.append(switched)
        return UpResult(url=url, already_running="web" in running, notes=tuple(notes))

    def down(self) -> None:
        self._require_engine()
        self._compose_checked(["down"], action="stop the project")

    def status(self) -> list[ServiceStatus]:
        self._require_engine()
        containers = self._containers()
        pids = self._pids(containers)
        return [replace(row, pid=pids.get(row.name)) for row in self._ps(containers)]

    def logs(self, service: str, *, follow: bool, lines: int) -> int:
        self._require_engine()
        if service == "mail":
            tail = ["tail", "-n", str(lines), *(["-F"] if follow else []), MAIL_LOG_IN_CONTAINER]
            if self._web_running():
                return self._exec_in_web(tail)
            # Stopped: read the log volume from a throwaway container, no database needed.
            run = ["run", "--rm", "--no-deps", "--entrypoint", tail[0], "web", *tail[1:]]
            return self._compose(run).returncode
        return self._compose(
            ["logs", *(["-f"] if follow else []), "--tail", str(lines), service]
        ).returncode

    def shell(self) -> int:
        self._require_engine()
        return self._in_web(["bash"])

    def manage(self, args: Sequence[str]) -> int:
        self._require_engine()
        return self._in_web(["python", "manage.py", *args])

    def destroy(self) -> None:
        # Switching runtime would be wrong advice here: the data to remove is in Docker.
        require_engine(
            self.project.root,
            advice="destroy needs it to remove this project's containers and volumes, so "
            "nothing was removed. Start Docker and run quickscale destroy again.",
        )
        self._compose_checked(
            ["down", "-v", "--remove-orphans"], action="remove the project's containers and volumes"
        )

    # Helpers.

    def _compose(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        capture: bool = False,
        echo_stderr: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        if not (self.project.root / COMPOSE_FILE).is_file():
            raise QuickScaleError(
                f"{self.project.root / COMPOSE_FILE} is missing, so the Docker runtime cannot "
                "run this project. Restore it (e.g. from git), or rebuild the project."
            )
        base = ["compose", "-p", self.compose_name, *self._compose_files()]
        return run_docker(
            [*base, *args],
            cwd=self.project.root,
            env=env,
            capture=capture,
            echo_stderr=echo_stderr,
        )

    def _compose_files(self) -> list[str]:
        """The `-f` options of a compose call; writes (or removes) the environment override."""
        path = self.project.root / ENVIRONMENT_OVERRIDE_FILE
        text = compose_override(environment_overrides(self.project))
        if text is None:
            path.unlink(missing_ok=True)  # no stale values (perhaps secrets) left behind
            return ["-f", COMPOSE_FILE]
        _write_private(path, text)
        return ["-f", COMPOSE_FILE, "-f", ENVIRONMENT_OVERRIDE_FILE]

    def _exec_in_web(self, command: Sequence[str]) -> int:
        """Run `command` in the running web container with this call's overriding settings.

        The container keeps the environment it was created with; `-e NAME` gives the
        command the process environment's value (compose takes a bare name's value
        from its own environment, so no value shows on a command line).
        """
        own = ENV_FILE_SERVICES["web"]
        names = [key for key in environment_overrides(self.project) if key not in own]
        passed = [flag for key in names for flag in ("-e", key)]
        return self._compose(["exec", *passed, "web", *command]).returncode

    def _compose_checked(self, args: Sequence[str], *, action: str) -> None:
        result = self._compose(args, capture=True)
        if result.returncode != 0:
            raise QuickScaleError(
                f"docker compose could not {action}: {_engine_message(result)} "
                "Fix the cause and try again."
            )

    def _require_engine(self) -> None:
        require_engine(self.project.root)

    def _containers(self) -> dict[str, dict[str, Any]]:
        """Return the project's containers by service, from `compose ps --format json`."""
        result = self._compose(["ps", "--all", "--format", "json"], capture=True)
        if result.returncode != 0:
            raise QuickScaleError(
                f"docker compose could not list the project's containers: {_engine_message(result)}"
            )
        return {str(c.get("Service", "")): c for c in parse_ps_output(result.stdout)}

    def _ps(self, containers: Mapping[str, Mapping[str, Any]] | None = None) -> list[ServiceStatus]:
        if containers is None:
            containers = self._containers()
        rows = [_service_row(service, containers.get(service)) for service in SERVICES]
        web, proxy = rows[0], _service_row("proxy", containers.get("proxy"))
        if web.state is ServiceState.RUNNING and web.port is None:
            # The site's address is the proxy's (a compose file from before the
            # proxy service has web publish WEB_PORT itself).
            if proxy.state is ServiceState.RUNNING:
                web = replace(web, port=proxy.port)
            else:
                web = replace(web, detail=f"{web.detail}; proxy not running ({proxy.state.value})")
            rows[0] = web
        mail_detail = f"log {MAIL_LOG_IN_CONTAINER} in the web container"
        rows.append(ServiceStatus(name="mail", state=web.state, detail=mail_detail))
        return rows

    def _pids(self, containers: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        """Return the host pid of each running container's main process (best effort)."""
        running = [
            (service, str(container["ID"]))
            for service, container in containers.items()
            if str(container.get("State", "")).lower() == "running" and container.get("ID")
        ]
        if not running:
            return {}
        ids = [container_id for _, container_id in running]
        result = run_docker(
            ["inspect", "--format", "{{.State.Pid}}", *ids], cwd=self.project.root, capture=True
        )
        if result.returncode != 0:
            return {}
        pids = {}
        for (service, _), text in zip(running, result.stdout.split(), strict=False):
            if text.isdigit() and int(text) > 0:
                pids[service] = int(text)
        return pids

    def _web_running(self) -> bool:
        return any(row.name == "web" and row.state is ServiceState.RUNNING for row in self._ps())

    def _in_web(self, command: Sequence[str]) -> int:
        """Run `command` in the running web container, else in a one-off one (db started)."""
        running = {row.name: row for row in self._ps() if row.state is ServiceState.RUNNING}
        if "web" in running:
            return self._exec_in_web(command)
        notes: list[str] = []
        if "db" in running and running["db"].port:
            db_port = running["db"].port  # left running by an earlier one-off command
        else:
            db_port = self._choose_port("DB_PORT_EXTERNAL", 5432, notes)
        for note in notes:
            sys.stderr.write(f"{note}\n")
        run = ["run", "--rm", "-e", SKIP_BOOTSTRAP, "web", *command]
        return self._compose(run, env={"DB_PORT_EXTERNAL": str(db_port)}).returncode

    def _choose_port(self, key: str, default: int, notes: list[str]) -> int:
        """Return the configured host port, or the next free one when its fallback is on."""
        wanted = ports.parse_port(self.project.setting(key), name=key, default=default)
        if _host_port_free(wanted):
            return wanted
        flag = f"{key}_ALTERNATIVE_FALLBACK"
        if not ports.fallback_enabled(self.project.setting(flag)):
            raise QuickScaleError(
                f"Port {wanted} ({key}) is already in use. Stop what uses it, set {key} "
                f"in .env to a free port, or set {flag}=true to pick the next free port."
            )
        for candidate in range(wanted + 1, min(wanted + ports.SEARCH_SPAN, 65536)):
            if _host_port_free(candidate):
                notes.append(f"Port {wanted} ({key}) is busy; using {candidate} instead.")
                return candidate
        raise QuickScaleError(
            f"No free port between {wanted} and {wanted + ports.SEARCH_SPAN - 1} for {key}. "
            f"Stop some servers or set {key} in .env to a free port."
        )

    def _wait_for_health(self, web_port: int) -> None:
        url = f"http://127.0.0.1:{web_port}/health/"
        deadline = time.monotonic() + self.health_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            time.sleep(self.health_interval)
        tail = self._compose(["logs", "--tail", "20", "web"], capture=True)
        recent = _last_lines(tail.stdout + tail.stderr, 5)
        raise QuickScaleError(
            f"The containers started but {url} did not answer 200 within "
            f"{self.health_timeout:.0f} s ({last}). Recent web log: {recent or '(empty)'} "
            "See 'quickscale logs web', fix the cause and run 'quickscale up' again."
        )


def environment_overrides(project: Project) -> dict[str, str]:
    """The project's settings that the process environment sets otherwise than `.env`.

    A project setting is a key of `.env` or of `.env.example` (which documents every
    setting the project reads); other variables of the process (HOME, PATH, ...)
    stay out of the containers. A value equal to `.env`'s is left out: env_file
    gives it already. Sorted by key, so the override file is the same for the same
    environment.
    """
    process = process_settings()
    keys = set(project.env) | _example_keys(project.root)
    overrides = {
        key: process[key]
        for key in sorted(keys)
        if key in process and project.env.get(key) != process[key]
    }
    for key, value in overrides.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise QuickScaleError(
                f"{key} in the environment is not valid UTF-8, so it cannot be passed to the "
                f"containers. Fix or unset {key} and try again."
            ) from None
    return overrides


def compose_override(overrides: Mapping[str, str]) -> str | None:
    """The compose file giving each env_file service `overrides`; None when none applies.

    Written as JSON, which YAML reads as it is. Compose interpolates `${...}` in
    values, so each `$` is doubled to stay literal.
    """
    services: dict[str, dict[str, dict[str, str]]] = {}
    for service, own in ENV_FILE_SERVICES.items():
        environment = {
            key: value.replace("$", "$$") for key, value in overrides.items() if key not in own
        }
        if environment:
            services[service] = {"environment": environment}
    if not services:
        return None
    text = json.dumps({"services": services}, indent=2, ensure_ascii=False, sort_keys=True)
    text = _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)
    header = (
        "# Written by quickscale before each docker compose call (edits are lost): the\n"
        "# project's settings set in the process environment, which win over .env here\n"
        "# as they do for dotenv, since compose's `environment:` wins over `env_file:`.\n"
    )
    return header + text + "\n"


def _example_keys(root: Path) -> set[str]:
    """The settings `.env.example` documents; none when it is missing or unreadable."""
    from dotenv import dotenv_values

    try:
        return set(dotenv_values(root / ".env.example"))
    except (OSError, UnicodeDecodeError):
        return set()


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only; a concurrent reader sees a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def parse_ps_output(stdout: str) -> list[dict[str, Any]]:
    """Parse `compose ps --format json`: a JSON array (older compose) or one object a line."""
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        return [item for item in data if isinstance(item, dict)]
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            item = json.loads(line)
            if isinstance(item, dict):
                rows.append(item)
    return rows


def _service_row(service: str, container: Mapping[str, Any] | None) -> ServiceStatus:
    if container is None:
        return ServiceStatus(name=service, state=ServiceState.STOPPED, detail="no container")
    running = str(container.get("State", "")).lower() == "running"
    target = _PUBLISHED.get(service)
    port = None
    for publisher in container.get("Publishers") or []:
        if publisher.get("TargetPort") == target and publisher.get("PublishedPort"):
            port = int(publisher["PublishedPort"])
            break
    detail = str(container.get("Status") or container.get("State") or "")
    state = ServiceState.RUNNING if running else ServiceState.STOPPED
    # Exited with an error, or being restarted after one (restart: unless-stopped).
    status = str(container.get("State", "")).lower()
    if status == "restarting" or (
        status == "exited" and container.get("ExitCode") not in (0, None)
    ):
        state = ServiceState.CRASHED
    return ServiceStatus(name=service, state=state, port=port if running else None, detail=detail)


def _host_port_free(port: int) -> bool:
    """Docker publishes on every interface: the port must be free on all of them."""
    return ports.is_port_free(port, "127.0.0.1") and ports.is_port_free(port, "0.0.0.0")


def _engine_message(result: subprocess.CompletedProcess[str]) -> str:
    message = _last_lines(result.stderr or result.stdout or "", 5)
    return message or f"exit code {result.returncode}, no message."


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _last_lines(text: str, count: int) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[-count:])
