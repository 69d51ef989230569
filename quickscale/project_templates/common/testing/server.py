"""Run the project under a real uvicorn process, for tests of what only a server shows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from common.testing.database import session_database_url
from common.testing.process import PROJECT_ROOT

# Engines a test chooses for its servers itself: a developer's own (in this
# process's environment) must not leak into them.
_CHOSEN_BY_THE_TEST = ("REDIS_URL", "REDIS_SESSIONS", "TASK_BACKEND", "S3_")


def server_env(**settings: str) -> dict[str, str]:
    """The environment of a server or worker process on this test session's database.

    This process's own, without its DB_* and DJANGO_* variables (DATABASE_URL names
    the test database) or the engines a test chooses; PostgreSQL does it all (cache,
    sessions, the task queue) unless ``settings`` say otherwise, and the logs hold
    warnings only.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DB_", "DJANGO_", *_CHOSEN_BY_THE_TEST))
    }
    env.update(DATABASE_URL=session_database_url(), TASK_BACKEND="database", LOG_LEVEL="WARNING")
    env.update(settings)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``process`` listens on ``port``; fail with its log if it exits first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"uvicorn did not start listening:\n{log.read_text()}")


@contextmanager
def uvicorn(
    env: Mapping[str, str], log: Path, extra_args: Sequence[str] = ()
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Serve ``core.asgi:application`` on a free port; yield the port and the process."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "core.asgi:application",
        "--port", str(port), "--lifespan", "off", "--log-level", "warning", *extra_args,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log)
        yield port, process
    finally:
        process.terminate()
        process.wait(10)
