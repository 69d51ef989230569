"""The local runtime: the project's `.venv`, an embedded PostgreSQL, uvicorn in the background.

All state lives under the project's `.quickscale/` (the database under
`/var/lib/quickscale/<hash>/` when running as root, see `embedded_db`):

- `web.json`      pid and port of the running web server
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
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quickscale.errors import QuickScaleError
from quickscale.project import RUNTIME_DATABASE_URL, Project
from quickscale.runtime.base import SERVICES, Runtime, ServiceState, ServiceStatus, UpResult
from quickscale.runtime.embedded_db import EmbeddedDatabase
from quickscale.runtime.ports import fallback_enabled, is_port_free, next_free_port, parse_port
from quickscale.runtime.switch import note_runtime_switch
from quickscale.runtime.venv import ensure_venv, stop_background_compile, venv_python

logger = logging.getLogger(__name__)

DEFAULT_WEB_PORT = 8000
DEFAULT_DB_NAME = "quickscale"
HEALTH_TIMEOUT_SECONDS = 60.0
# The project's default DB_POOL_TIMEOUT, and what a live server may take beyond it
# to answer /health/ while its database is down.
DEFAULT_DB_POOL_TIMEOUT = 3
HEALTH_ANSWER_MARGIN_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 10.0
TAIL_LINES_IN_ERRORS = 20
# Lines read to find where a traceback in them begins (its frames are then left out).
TAIL_LINES_SCANNED = 400
FOLLOW_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class WebProcess:
    """What `.quickscale/web.json` records about the background web server."""

    pid: int
    port: int


def _process_alive(pid: int) -> bool:
    """True when `pid` is a live process (a zombie counts as dead)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own finished child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal test is all we have
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _session_members(session: int) -> list[int]:
    """Live processes of the session `up` started the web server in (its workers included).

    `start_new_session=True` makes the server's pid its session and group id, so
    a process whose session and group both equal that pid belongs to it, even
    after the server itself died (orphaned workers still holding the port).
    """
    members = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        state, group, sid = fields[0], int(fields[2]), int(fields[3])
        if sid == session and group == session and state not in ("Z", "X"):
            members.append(int(entry.parent.name))
    return members


def _looks_like_web_server(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a uvicorn."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc at all: trust the pid file
    except OSError:
        return False
    return b"uvicorn" in cmdline


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


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file, reading only its end."""
    return _tail(path, lines)[0]


def _tail(path: Path, lines: int) -> tuple[list[str], int]:
    """The last `lines` lines of a file and the offset just after them."""
    block = 8192
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    if lines <= 0:
        return [], end
    text = data.decode(errors="replace")
    return text.splitlines(keepends=True)[-lines:], end


def _error_tail(lines: Iterable[str]) -> str:
    """The last lines of a log for an error message, Python tracebacks cut to their exception.

    A failed `bootstrap` or server start ends in a traceback whose frames say little
    to the user; its last line (the exception and its message) says what to fix.
    The whole log stays available through `quickscale logs web`.
    """
    kept: list[str] = []
    in_traceback = False
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if line.startswith(("During handling of the above", "The above exception was")):
            continue
        if in_traceback:
            if line.startswith((" ", "\t")):
                continue
            in_traceback = False  # the exception line that ends the traceback
        kept.append(line)
    return "\n".join(kept[-TAIL_LINES_IN_ERRORS:]).rstrip()


def _run_in_foreground(command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> int:
    """Run an interactive child; Ctrl-C goes to it, not to us. Returns its exit code."""
    process = subprocess.Popen(list(command), cwd=cwd, env=env)
    previous: Any = None
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        code = process.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code


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
            return WebProcess(pid=int(data["pid"]), port=int(data["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_pid_file(self, web: WebProcess) -> None:
        temporary = self.pid_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"pid": web.pid, "port": web.port}) + "\n")
        os.replace(temporary, self.pid_file)

    def _running_web(self) -> WebProcess | None:
        """The web server from the pid file when it still runs; a stale file is removed."""
        web = self._read_pid_file()
        if web is None:
            if self.pid_file.exists():
                logger.info("removing unreadable pid file %s", self.pid_file)
                self.pid_file.unlink(missing_ok=True)
            return None
        if _process_alive(web.pid) and _looks_like_web_server(web.pid):
            return web
        logger.info("removing stale pid file %s (pid %s is gone)", self.pid_file, web.pid)
        self._kill_session(web.pid)  # workers the dead server left behind
        self.pid_file.unlink(missing_ok=True)
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
            f"Last lines of {self.web_log}:\n{self._web_log_tail()}"
        )

    def down(self) -> None:
        with self._exclusive():
            self._stop_web()
            if self.external_database_url is None:
                self.db.stop()

    def status(self) -> list[ServiceStatus]:
        web = self._running_web()
        web_state = ServiceState.RUNNING if web else ServiceState.STOPPED
        rows = [
            ServiceStatus(
                name="web",
                state=web_state,
                port=web.port if web else None,
                pid=web.pid if web else None,
                detail=self._url(web.port) if web else "",
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
        if service not in SERVICES:
            raise QuickScaleError(
                f"There is no service {service!r}. Choose one of: {', '.join(SERVICES)}."
            )
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
        position = 0
        if path.exists():
            last, position = _tail(path, lines)
            sys.stdout.write("".join(last))
            sys.stdout.flush()
        if follow:
            with contextlib.suppress(KeyboardInterrupt):
                self._follow(path, position)
        return 0

    def shell(self) -> int:
        ensure_venv(self.root)
        env = self._env(self._database_url(start=False))
        shell = os.environ.get("SHELL") or "/bin/bash"
        return _run_in_foreground([shell], cwd=self.root, env=env)

    def manage(self, args: Sequence[str]) -> int:
        ensure_venv(self.root)
        env = self._env(self._database_url(start=True))  # the database alone, never the web
        python = str(venv_python(self.root))
        return _run_in_foreground([python, "manage.py", *args], cwd=self.root, env=env)

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

    def _choose_port(self, notes: list[str]) -> int:
        wanted = parse_port(
            self.project.setting("WEB_PORT"), name="WEB_PORT", default=DEFAULT_WEB_PORT
        )
        if is_port_free(wanted):
            return wanted
        if fallback_enabled(self.project.setting("WEB_PORT_ALTERNATIVE_FALLBACK")):
            port = next_free_port(wanted + 1)
            notes.append(f"Port {wanted} is busy; using {port}")
            return port
        raise QuickScaleError(
            f"Port {wanted} is already in use. Free it, set WEB_PORT in .env to a free port, "
            "or set WEB_PORT_ALTERNATIVE_FALLBACK=yes."
        )

    def _log_header(self, text: str) -> bytes:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return f"\n=== {stamp} quickscale: {text} ===\n".encode()

    def _bootstrap(self, env: dict[str, str]) -> None:
        """Run `manage.py bootstrap`, its output appended to web.log."""
        command = [str(venv_python(self.root)), "manage.py", "bootstrap"]
        last: deque[str] = deque(maxlen=TAIL_LINES_SCANNED)
        with open(self.web_log, "ab") as log:
            log.write(self._log_header("manage.py bootstrap"))
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
                f"log: quickscale logs web). Last lines of {self.web_log}:\n" + _error_tail(last)
            )

    def _start_web(self, port: int, env: dict[str, str]) -> None:
        """Start uvicorn in its own session, record it, wait for /health/."""
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
        with open(self.web_log, "ab") as log:
            log.write(self._log_header(f"web server on port {port}"))
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal must not reach it
            )
        self._write_pid_file(WebProcess(pid=process.pid, port=port))
        try:
            self._wait_until_healthy(process, port)
        except BaseException:
            self._stop_web()
            raise

    def _wait_until_healthy(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise QuickScaleError(
                    f"The web server exited (code {process.returncode}) before answering. "
                    "Fix what it reports below, then run 'quickscale up' again. "
                    f"Last lines of {self.web_log}:\n{self._web_log_tail()}"
                )
            if self._healthy(port):
                return
            time.sleep(0.2)
        raise QuickScaleError(
            f"The web server did not answer http://127.0.0.1:{port}/health/ within "
            f"{HEALTH_TIMEOUT_SECONDS:.0f} s, so it was stopped. Fix what it reports below, "
            f"then run 'quickscale up' again. Last lines of {self.web_log}:\n"
            f"{self._web_log_tail()}"
        )

    def _web_log_tail(self) -> str:
        try:
            return _error_tail(tail_lines(self.web_log, TAIL_LINES_SCANNED))
        except OSError:
            return "(no log)"

    def _stop_web(self) -> None:
        """SIGTERM the web server's process group, SIGKILL after a timeout, drop the pid file."""
        web = self._running_web()
        if web is not None:
            self._signal_group(web.pid, signal.SIGTERM)
            if not self._wait_gone(web.pid, STOP_TIMEOUT_SECONDS):
                logger.warning("web server %s ignored SIGTERM; killing it", web.pid)
                self._signal_group(web.pid, signal.SIGKILL)
                self._wait_gone(web.pid, STOP_TIMEOUT_SECONDS)
            self._kill_session(web.pid)
        self.pid_file.unlink(missing_ok=True)

    def _kill_session(self, session: int) -> None:
        """SIGKILL what is left of the web server's session and wait until it is gone."""
        members = _session_members(session)
        if not members:
            return
        logger.info("killing leftover web processes %s", members)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in members:
            self._wait_gone(pid, STOP_TIMEOUT_SECONDS)

    @staticmethod
    def _signal_group(pid: int, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                same_group = os.getpgid(pid) == pid
            except ProcessLookupError:
                return
            if same_group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _process_alive(pid):
                return True
            time.sleep(0.1)
        return not _process_alive(pid)

    # `logs -f`.

    def _follow(self, path: Path, position: int) -> None:
        """Print what is appended to `path` after `position` until interrupted.

        Survives truncation and rotation (a new file is read from its start).
        """
        inode = path.stat().st_ino if path.exists() else None
        while True:
            time.sleep(FOLLOW_POLL_SECONDS)
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if info.st_ino != inode or info.st_size < position:
                inode, position = info.st_ino, 0
            if info.st_size > position:
                for chunk in self._read_from(path, position):
                    sys.stdout.write(chunk.decode(errors="replace"))
                    position += len(chunk)
                sys.stdout.flush()

    @staticmethod
    def _read_from(path: Path, position: int) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            handle.seek(position)
            while chunk := handle.read(65536):
                yield chunk
