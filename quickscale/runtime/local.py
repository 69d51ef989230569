"""The local runtime: the project's `.venv`, an embedded PostgreSQL, uvicorn in the background.

All state lives under the project's `.quickscale/` (the database under
`/var/lib/quickscale/<hash>/` when running as root, see `embedded_db`):

- `web.json`      pid and port of the running web server, and whether it reloads
- `logs/web.log`  bootstrap and uvicorn output
- `logs/db.log`   PostgreSQL's log
- `logs/mail.log` mail sent by the development mail backend (`MAIL_LOG_PATH`)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from quickscale.errors import QuickScaleError
from quickscale.project import RUNTIME_DATABASE_URL, Project
from quickscale.runtime import logs, processes
from quickscale.runtime.base import Runtime, ServiceState, ServiceStatus, UpResult
from quickscale.runtime.embedded_db import EmbeddedDatabase
from quickscale.runtime.ports import fallback_enabled, is_port_free, next_free_port, parse_port
from quickscale.runtime.switch import note_runtime_switch
from quickscale.runtime.venv import ensure_venv, stop_background_compile, venv_python

logger = logging.getLogger(__name__)

DEFAULT_WEB_PORT = 8000
DEFAULT_DB_NAME = "quickscale"
HEALTH_TIMEOUT_SECONDS = 60.0
# How long a crashed server's port may take to be released once its processes are gone.
PORT_RELEASE_SECONDS = 5.0
# The project's default DB_POOL_TIMEOUT, and what a live server may take beyond it
# to answer /health/ while its database is down.
DEFAULT_DB_POOL_TIMEOUT = 3
HEALTH_ANSWER_MARGIN_SECONDS = 5.0
# IS_PRODUCTION values that mean development: anything else (production, or a
# typo that bootstrap refuses anyway) gets no reload.
DEVELOPMENT_VALUES = frozenset({"", "no", "false", "0", "off", "disabled", "n", "f"})
# What the reloading server watches: every top-level folder of the project but
# these (hidden ones, such as .venv and .quickscale, are left out too). Watching
# the root itself would follow .venv into every installed package and see every
# write of the embedded database under .quickscale/.
NOT_WATCHED = frozenset({"staticfiles", "node_modules", "test-artifacts", "__pycache__"})
# Beyond Python: templates, those of e-mails included.
RELOAD_INCLUDES = ("*.html", "*.txt")


@dataclass(frozen=True)
class WebProcess:
    """What `.quickscale/web.json` records about the background web server."""

    pid: int
    port: int
    reload: bool = False


def _looks_like_web_server(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a uvicorn."""
    arguments = processes.command_line(pid)
    return arguments is not None and any("uvicorn" in argument for argument in arguments)


def _http_get_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a GET, ignoring any proxy settings; None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


class LocalRuntime(Runtime):
    """Run a project on this machine, without Docker."""

    name = "local"

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        self.root = project.root.resolve()
        self.state_dir = self.root / ".quickscale"
        self.logs_dir = self.state_dir / "logs"
        self.web_log = self.logs_dir / "web.log"
        self.pid_file = self.state_dir / "web.json"
        self.db = EmbeddedDatabase(self.root)
        self._lock_depth = 0
        # The port of a server found dead by this runtime: its release may lag a moment.
        self._released_port: int | None = None

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise up/down/destroy between concurrent commands on the same project.

        Without it, two `up`s at once each start a uvicorn: one loses the port, its
        health wait sees the other's answer, and its pid file names a dead process
        while the winner runs on untracked, out of reach of `down`.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "runtime.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    # Settings read from the environment, then the project's .env.

    @property
    def external_database_url(self) -> str | None:
        """The user's own DATABASE_URL (environment or `.env`); then no embedded cluster runs.

        The same rule as Django's settings: a DATABASE_URL in the environment names
        the database to use, whether the user set it or `.env` did.
        """
        value = self.project.setting("DATABASE_URL").strip()
        return value or None

    @property
    def db_name(self) -> str:
        return self.project.setting("DB_NAME").strip() or DEFAULT_DB_NAME

    @property
    def reload(self) -> bool:
        """Whether `up` starts the web server with reload: in development, never in production."""
        return self.project.setting("IS_PRODUCTION").strip().lower() in DEVELOPMENT_VALUES

    @property
    def mail_log(self) -> Path:
        value = self.project.setting("MAIL_LOG_PATH").strip()
        path = Path(value) if value else Path(".quickscale/logs/mail.log")
        return path if path.is_absolute() else self.root / path

    def _database_url(self, *, start: bool) -> str:
        external = self.external_database_url
        if external is not None:
            return external
        if start:
            return self.db.start(self.db_name)
        return self.db.uri(self.db_name)

    def _env(self, database_url: str) -> dict[str, str]:
        """What every project process gets: the .env values under our environment, DATABASE_URL."""
        env = self.project.effective_env()
        venv = self.root / ".venv"
        env["DATABASE_URL"] = database_url
        if self.external_database_url is None:
            env[RUNTIME_DATABASE_URL] = database_url
        env["PYTHONUNBUFFERED"] = "1"
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")])
        return env

    # The web server's pid file.

    def _read_pid_file(self) -> WebProcess | None:
        try:
            data = json.loads(self.pid_file.read_text())
            reload = data.get("reload", False)
            return WebProcess(pid=int(data["pid"]), port=int(data["port"]), reload=reload is True)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_pid_file(self, web: WebProcess) -> None:
        temporary = self.pid_file.with_suffix(".json.tmp")
        record = {"pid": web.pid, "port": web.port, "reload": web.reload}
        temporary.write_text(json.dumps(record) + "\n")
        os.replace(temporary, self.pid_file)

    def _running_web(self) -> WebProcess | None:
        """The web server from the pid file when it still runs; a stale file is removed."""
        web = self._read_pid_file()
        if web is None:
            if self.pid_file.exists():
                logger.info("removing unreadable pid file %s", self.pid_file)
                self.pid_file.unlink(missing_ok=True)
            return None
        if processes.is_alive(web.pid) and _looks_like_web_server(web.pid):
            return web
        logger.info("removing stale pid file %s (pid %s is gone)", self.pid_file, web.pid)
        processes.kill_group(web.pid)  # workers the dead server left behind
        self.pid_file.unlink(missing_ok=True)
        self._released_port = web.port
        return None

    @staticmethod
    def _url(port: int) -> str:
        return f"http://127.0.0.1:{port}/"

    def _healthy(self, port: int) -> bool:
        return _http_get_status(f"http://127.0.0.1:{port}/health/") == 200

    @property
    def _health_answer_seconds(self) -> float:
        """How long a live server may take to answer /health/.

        With its database down, the server answers 503 only once a connection from
        its pool has been awaited for DB_POOL_TIMEOUT seconds.
        """
        raw = self.project.setting("DB_POOL_TIMEOUT").strip()
        pool_timeout = int(raw) if raw.isdigit() else DEFAULT_DB_POOL_TIMEOUT
        return pool_timeout + HEALTH_ANSWER_MARGIN_SECONDS

    # Runtime interface.

    def up(self) -> UpResult:
        with self._exclusive():
            return self._up()

    def restart(self) -> UpResult:
        """Stop the web server and start it as `up` does; the database keeps running."""
        with self._exclusive():
            was_running = self._running_web() is not None
            self._stop_web()
            result = self._up()
        if was_running:
            return result
        return replace(result, notes=("It was not running; started it.", *result.notes))

    def reloads_code(self) -> bool:
        web = self._running_web()
        return web is not None and web.reload

    def _up(self) -> UpResult:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        running = self._running_web()
        if running is not None:
            health = f"http://127.0.0.1:{running.port}/health/"
            answer = _http_get_status(health, timeout=self._health_answer_seconds)
            if answer == 200:
                return UpResult(url=self._url(running.port), already_running=True)
            if answer is not None:
                return self._restore_database(running, answer)
            logger.info("web server %s does not answer; restarting it", running.pid)
            self._stop_web()

        notes: list[str] = []
        port = self._choose_port(notes)  # before anything starts: a busy port starts nothing
        ensure_venv(self.root)
        env = self._env(self._database_url(start=True))
        self._bootstrap(env)
        if not is_port_free(port):  # taken while bootstrap ran
            port = self._choose_port(notes)
        self._start_web(port, env)
        switched = note_runtime_switch(self.project, self.name)
        if switched:
            notes.append(switched)
        return UpResult(url=self._url(port), notes=tuple(notes))

    def _restore_database(self, web: WebProcess, answer: int) -> UpResult:
        """The web server answers but is unhealthy: start its database, keep the server.

        Restarting the server would refuse every request until it is back; its
        connection pool reconnects by itself once the database answers again.
        """
        notes: list[str] = []
        if self.external_database_url is None and not self.db.is_running():
            logger.info("web server %s runs without its database; starting the database", web.pid)
            self.db.start(self.db_name)
            notes.append(
                "The database was stopped; started it again (the web server kept running)."
            )
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._healthy(web.port):
                return UpResult(url=self._url(web.port), already_running=True, notes=tuple(notes))
            time.sleep(0.2)
        where = "the database DATABASE_URL names" if self.external_database_url else "the database"
        raise QuickScaleError(
            f"The web server (pid {web.pid}) runs, but http://127.0.0.1:{web.port}/health/ "
            f"answered {answer} and still did not answer 200 after {HEALTH_TIMEOUT_SECONDS:.0f} s. "
            f"It was left running. Make sure {where} answers, then run 'quickscale up' again. "
            f"Last lines of {self.web_log}:\n{logs.log_error_tail(self.web_log)}"
        )

    def down(self) -> None:
        with self._exclusive():
            self._stop_web()
            if self.external_database_url is None:
                self.db.stop()

    def status(self) -> list[ServiceStatus]:
        web = self._running_web()
        web_state = ServiceState.RUNNING if web else ServiceState.STOPPED
        detail = ""
        if web is not None:
            detail = self._url(web.port) + (" (reloads on code changes)" if web.reload else "")
        rows = [
            ServiceStatus(
                name="web",
                state=web_state,
                port=web.port if web else None,
                pid=web.pid if web else None,
                detail=detail,
            )
        ]
        external = self.external_database_url
        if external is not None:
            parts = urlsplit(external)
            where = f"{parts.scheme}://{parts.hostname or 'localhost'}"
            if parts.port:
                where += f":{parts.port}"
            rows.append(
                ServiceStatus(name="db", state=ServiceState.EXTERNAL, detail=f"{where}{parts.path}")
            )
        else:
            pid = self.db.pid()
            rows.append(
                ServiceStatus(
                    name="db",
                    state=ServiceState.RUNNING if pid else ServiceState.STOPPED,
                    pid=pid,
                    detail=str(self.db.data_dir),
                )
            )
        rows.append(ServiceStatus(name="mail", state=web_state, detail=str(self.mail_log)))
        return rows

    def logs(self, service: str, *, follow: bool, lines: int) -> int:
        if service == "db" and self.external_database_url is not None:
            sys.stderr.write(
                "The database is external (DATABASE_URL in the environment or .env); "
                "its log is wherever that server keeps it.\n"
            )
            return 0
        path = {"web": self.web_log, "db": self.db.log_path, "mail": self.mail_log}[service]
        if not path.exists():
            sys.stderr.write(
                f"No {service} log yet: {path} does not exist"
                + (" (waiting for it; Ctrl-C to stop).\n" if follow else ".\n")
            )
            if not follow:
                return 0
        logs.show(path, lines=lines, follow=follow)
        return 0

    def shell(self) -> int:
        ensure_venv(self.root)
        env = self._env(self._database_url(start=False))
        shell = os.environ.get("SHELL") or "/bin/bash"
        return processes.run_in_foreground([shell], cwd=self.root, env=env)

    def manage(self, args: Sequence[str]) -> int:
        ensure_venv(self.root)
        env = self._env(self._database_url(start=True))  # the database alone, never the web
        python = str(venv_python(self.root))
        return processes.run_in_foreground([python, "manage.py", *args], cwd=self.root, env=env)

    def destroy(self) -> None:
        with self._exclusive():
            try:
                self.down()
            finally:
                # Still compiling the venv's bytecode, it would race the deletion.
                stop_background_compile(self.root)
                self.db.remove()
                self.pid_file.unlink(missing_ok=True)

    # Steps of `up`.

    @staticmethod
    def _wait_for_port(port: int) -> bool:
        """Wait for the port of a server that was just found dead; True once it is free."""
        deadline = time.monotonic() + PORT_RELEASE_SECONDS
        while time.monotonic() < deadline:
            if is_port_free(port):
                return True
            time.sleep(0.1)
        return False

    def _choose_port(self, notes: list[str]) -> int:
        wanted = parse_port(
            self.project.setting("WEB_PORT"), name="WEB_PORT", default=DEFAULT_WEB_PORT
        )
        if is_port_free(wanted) or (wanted == self._released_port and self._wait_for_port(wanted)):
            return wanted
        if fallback_enabled(self.project.setting("WEB_PORT_ALTERNATIVE_FALLBACK")):
            port = next_free_port(wanted + 1)
            notes.append(f"Port {wanted} is busy; using {port}")
            return port
        raise QuickScaleError(
            f"Port {wanted} is already in use. Free it, set WEB_PORT in .env to a free port, "
            "or set WEB_PORT_ALTERNATIVE_FALLBACK=yes."
        )

    def _bootstrap(self, env: dict[str, str]) -> None:
        """Run `manage.py bootstrap`, its output appended to web.log."""
        command = [str(venv_python(self.root)), "manage.py", "bootstrap"]
        last: deque[str] = deque(maxlen=logs.TAIL_LINES_SCANNED)
        with open(self.web_log, "ab") as log:
            log.write(logs.header("manage.py bootstrap"))
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert process.stdout is not None
            with process.stdout:
                for line in process.stdout:
                    log.write(line)
                    last.append(line.decode(errors="replace").rstrip())
            code = process.wait()
        if code != 0:
            raise QuickScaleError(
                f"`manage.py bootstrap` failed (exit code {code}), so the web server was not "
                "started. Fix what it reports below, then run 'quickscale up' again (whole "
                f"log: quickscale logs web). Last lines of {self.web_log}:\n"
                + logs.error_tail(last)
            )

    def _web_command(self, port: int, *, reload: bool) -> list[str]:
        command = [
            str(venv_python(self.root)), "-m", "uvicorn", "core.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
            "--timeout-graceful-shutdown", "5",
            # Django reads X-Forwarded-For and -Proto as TRUSTED_PROXY_COUNT and
            # SECURE_PROXY_SSL_HEADER say; uvicorn would otherwise believe them from
            # any process on this machine and hand Django a forged client address.
            "--no-proxy-headers",
            # One process in development: WEB_CONCURRENCY sizes the Docker image's
            # workers, and extra workers here only slow every `up`.
            "--workers", "1",
        ]  # fmt: skip
        if not reload:
            return command
        # uvicorn's reloader (watchfiles) runs the server in a worker process and
        # starts a new one when a watched file changes. A folder added to the
        # project later is watched from the next `quickscale restart`.
        command.append("--reload")
        for folder in self._watched_folders():
            command += ["--reload-dir", str(folder)]
        for pattern in RELOAD_INCLUDES:
            command += ["--reload-include", pattern]
        return command

    def _watched_folders(self) -> list[Path]:
        return sorted(
            entry
            for entry in self.root.iterdir()
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in NOT_WATCHED
        )

    def _start_web(self, port: int, env: dict[str, str]) -> None:
        """Start uvicorn in its own session, record it, wait for /health/."""
        reload = self.reload
        command = self._web_command(port, reload=reload)
        with open(self.web_log, "ab") as log:
            mode = " (reloads on code changes)" if reload else ""
            log.write(logs.header(f"web server on port {port}{mode}"))
            log.flush()
            process = processes.start_in_background(command, cwd=self.root, env=env, log=log)
        self._write_pid_file(WebProcess(pid=process.pid, port=port, reload=reload))
        try:
            self._wait_until_healthy(process, port)
        except BaseException:
            self._stop_web()
            raise

    def _wait_until_healthy(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        exited_worker_seen = 0
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise QuickScaleError(
                    f"The web server exited (code {process.returncode}) before answering. "
                    "Fix what it reports below, then run 'quickscale up' again. "
                    f"Last lines of {self.web_log}:\n{logs.log_error_tail(self.web_log)}"
                )
            if self._healthy(port):
                return
            # The reloader outlives a worker that fails at start-up and waits for a
            # file change; seen twice, the worker is not just being replaced.
            exited_worker_seen = (
                exited_worker_seen + 1 if processes.has_exited_child(process.pid) else 0
            )
            if exited_worker_seen >= 2:
                raise QuickScaleError(
                    "The web server's worker exited before answering, so the server was "
                    "stopped. Fix what it reports below, then run 'quickscale up' again. "
                    f"Last lines of {self.web_log}:\n{logs.log_error_tail(self.web_log)}"
                )
            time.sleep(0.2)
        raise QuickScaleError(
            f"The web server did not answer http://127.0.0.1:{port}/health/ within "
            f"{HEALTH_TIMEOUT_SECONDS:.0f} s, so it was stopped. Fix what it reports below, "
            f"then run 'quickscale up' again. Last lines of {self.web_log}:\n"
            f"{logs.log_error_tail(self.web_log)}"
        )

    def _stop_web(self) -> None:
        """Stop the web server's process group (its reloader and worker), drop the pid file."""
        web = self._running_web()
        if web is not None:
            processes.stop_group(web.pid)
        self.pid_file.unlink(missing_ok=True)
