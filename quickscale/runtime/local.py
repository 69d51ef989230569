"""The local runtime: the project's `.venv`, an embedded PostgreSQL, uvicorn and a worker.

All state lives under the project's `.quickscale/` (the database under
`/var/lib/quickscale/<hash>/` when running as root, see `embedded_db`):

- `web.json`        pid and port of the running web server, and whether it reloads
- `worker.json`     pid of the background worker (`manage.py worker`); kept when the
                    worker dies by itself, so `ps` can say it crashed
- `logs/web.log`    bootstrap and uvicorn output
- `logs/worker.log` the worker's output: tasks run, periodic work scheduled
- `logs/db.log`     PostgreSQL's log
- `logs/mail.log`   mail sent by the development mail backend (`MAIL_LOG_PATH`)

The worker runs beside the web server with the same environment: `up` starts
it (again, if it died), `down` stops it first, `restart` restarts both. In
development it restarts itself on code changes, as the web server reloads.
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
# A reloading worker's supervisor starts its child within this long; until then
# a supervisor without one is starting, not crashed.
WORKER_START_SECONDS = 15.0
# What a worker logs once its start-up checks passed and it takes tasks (the
# project's common.task_worker, either backend). `up` waits for it, or for the
# worker's exit, up to WORKER_START_SECONDS: a fixed wait missed workers that
# failed later on a busy machine and slowed every `up` on a quiet one.
WORKER_READY_LINE = b"task worker started"


@dataclass(frozen=True)
class WebProcess:
    """What `.quickscale/web.json` records about the background web server."""

    pid: int
    port: int
    reload: bool = False


@dataclass(frozen=True)
class WorkerProcess:
    """What `.quickscale/worker.json` records about the background worker."""

    pid: int
    reload: bool = False
    # worker.log's size when this worker was started: its own lines come after.
    log_offset: int = 0


def _looks_like_web_server(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a uvicorn."""
    arguments = processes.command_line(pid)
    return arguments is not None and any("uvicorn" in argument for argument in arguments)


def _looks_like_worker(pid: int) -> bool:
    """Guard against a recycled pid: the process must be `manage.py worker`."""
    arguments = processes.command_line(pid) or []
    return any(a.endswith("manage.py") for a in arguments) and "worker" in arguments


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
        self.worker_log = self.logs_dir / "worker.log"
        self.pid_file = self.state_dir / "web.json"
        self.worker_pid_file = self.state_dir / "worker.json"
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
        # localhost, not 127.0.0.1: passkeys (WebAuthn) are bound to a host name and
        # refuse an IP address; browsers resolve localhost to this loopback address.
        return f"http://localhost:{port}/"

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
        """Stop worker and web server, start them as `up` does; the database keeps running."""
        with self._exclusive():
            was_running = self._running_web() is not None
            self._stop_worker()
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
                url = self._url(running.port)
                return UpResult(url=url, already_running=True, notes=self._ensure_worker())
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
        self._start_worker(env)  # starts while the web server does
        try:
            self._start_web(port, env)
        except BaseException:
            self._stop_worker()
            raise
        notes.extend(self._worker_start_notes())
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
                notes.extend(self._ensure_worker())
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
            self._stop_worker()  # first: it may be finishing a task that uses the database
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
            ),
            self._worker_status(),
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
        path = {
            "web": self.web_log,
            "worker": self.worker_log,
            "db": self.db.log_path,
            "mail": self.mail_log,
        }[service]
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
                self.worker_pid_file.unlink(missing_ok=True)

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

    # The worker.

    @property
    def task_backend(self) -> str:
        return self.project.setting("TASK_BACKEND").strip() or "database"

    def _read_worker_file(self) -> WorkerProcess | None:
        try:
            data = json.loads(self.worker_pid_file.read_text())
            return WorkerProcess(
                pid=int(data["pid"]),
                reload=data.get("reload") is True,
                log_offset=int(data.get("log_offset", 0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _worker_command(self, *, reload: bool) -> list[str]:
        command = [str(venv_python(self.root)), "manage.py", "worker"]
        return [*command, "--reload"] if reload else command

    def _worker_state(self) -> tuple[ServiceState, WorkerProcess | None]:
        """RUNNING, CRASHED (it died by itself: its pid file stayed) or STOPPED.

        A reloading worker is a supervisor and its child: the supervisor waits for
        a code change after its child crashed, so without a child it is crashed too,
        once it has had time to start one.
        """
        worker = self._read_worker_file()
        if worker is None:
            return ServiceState.STOPPED, None
        if not (processes.is_alive(worker.pid) and _looks_like_worker(worker.pid)):
            return ServiceState.CRASHED, worker
        if worker.reload and len(processes.group_members(worker.pid)) < 2:
            started = processes.started_at(worker.pid)
            if started is not None and time.time() - started > WORKER_START_SECONDS:
                return ServiceState.CRASHED, worker
        return ServiceState.RUNNING, worker

    def _worker_status(self) -> ServiceStatus:
        state, worker = self._worker_state()
        detail = f"TASK_BACKEND={self.task_backend}"
        if state is ServiceState.RUNNING and worker is not None and worker.reload:
            detail += " (reloads on code changes)"
        if state is ServiceState.CRASHED:
            detail = "exited by itself; see quickscale logs worker, then run quickscale up"
        pid = worker.pid if worker is not None and state is ServiceState.RUNNING else None
        return ServiceStatus(name="worker", state=state, pid=pid, detail=detail)

    def _start_worker(self, env: dict[str, str]) -> None:
        """Start `manage.py worker` in its own session, its output in worker.log."""
        self._stop_worker()  # what a crashed worker may have left behind
        reload = self.reload
        with open(self.worker_log, "ab") as log:
            mode = " (reloads on code changes)" if reload else ""
            log.write(logs.header(f"worker, TASK_BACKEND={self.task_backend}{mode}"))
            log.flush()
            offset = log.tell()
            process = processes.start_in_background(
                self._worker_command(reload=reload), cwd=self.root, env=env, log=log
            )
        record = {"pid": process.pid, "reload": reload, "log_offset": offset}
        temporary = self.worker_pid_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record) + "\n")
        os.replace(temporary, self.worker_pid_file)

    def _ensure_worker(self) -> tuple[str, ...]:
        """Start the worker of a running project if it is not running; say so when it was not."""
        state, _ = self._worker_state()
        if state is ServiceState.RUNNING:
            return ()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._start_worker(self._env(self._database_url(start=False)))
        happened = "had crashed" if state is ServiceState.CRASHED else "was not running"
        return (f"The worker {happened}; started it.", *self._worker_start_notes())

    def _worker_start_notes(self) -> tuple[str, ...]:
        """A worker that exits at once (its start-up checks failed) is reported, not hidden."""
        worker = self._read_worker_file()
        started = processes.started_at(worker.pid) if worker is not None else None
        if worker is None or started is None:
            return ()
        # Counted from the worker's start, which the web server's start overlapped.
        deadline = started + WORKER_START_SECONDS
        while time.time() < deadline and processes.is_alive(worker.pid):
            if self._worker_ready(worker):
                return ()
            time.sleep(0.1)
        if processes.is_alive(worker.pid):
            return ()
        return (
            "The worker exited as it started, so background tasks do not run. Fix what "
            "it reports below, then run 'quickscale up' again. Last lines of "
            f"{self.worker_log}:\n{logs.log_error_tail(self.worker_log)}",
        )

    def _worker_ready(self, worker: WorkerProcess) -> bool:
        """True once the worker logged that it takes tasks (its start-up checks passed)."""
        try:
            with open(self.worker_log, "rb") as log:
                log.seek(worker.log_offset)
                return WORKER_READY_LINE in log.read()
        except OSError:
            return False

    def _stop_worker(self) -> None:
        """Stop the worker (it finishes its running task), whatever it left; drop its pid file."""
        worker = self._read_worker_file()
        if worker is not None:
            if processes.is_alive(worker.pid) and _looks_like_worker(worker.pid):
                # The leader alone: a reloading supervisor passes SIGTERM on to its child.
                processes.stop_group(worker.pid, leader_only=True)
            else:
                processes.kill_group(worker.pid)  # a child the dead supervisor left
        self.worker_pid_file.unlink(missing_ok=True)
