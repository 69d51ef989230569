"""Run the project under a real uvicorn process, for tests of what only a server shows."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from common.testing.process import PROJECT_ROOT


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
