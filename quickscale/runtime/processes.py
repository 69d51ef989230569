"""Processes the local runtime starts and stops: liveness, command lines, process groups.

psutil reads what Linux keeps under /proc and what macOS answers through
sysctl, so these work the same on both. A server started with
`start_in_background` leads a session (and process group) of its own: its pid
is the group id of every process it starts, which is how `stop_group` finds
and stops them all, a reloader's worker included, even once the leader died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import psutil

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.1
# States of a process that has exited (or is about to) but may still be listed.
_GONE = frozenset({psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD})


def is_alive(pid: int, *, reap: bool = True) -> bool:
    """True when `pid` is a live process (a zombie counts as dead).

    With `reap`, a finished child of this process is collected on the way;
    without, its exit status stays for whoever waits for it.
    """
    if reap:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() not in _GONE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process: it exists


def command_line(pid: int) -> list[str] | None:
    """The arguments `pid` runs with; None when it is gone or may not be read.

    Empty for a moment while a just-started process replaces its image (exec).
    """
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def started_at(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch); None when it is gone or may not be read."""
    try:
        created: float = psutil.Process(pid).create_time()
        return created
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def leads_group(pid: int) -> bool:
    """True when `pid` lives and is the leader of its process group."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def group_members(group: int) -> list[int]:
    """Live processes of the process group `group`, its leader included if alive."""
    members = []
    for pid in psutil.pids():
        try:
            in_group = os.getpgid(pid) == group
        except OSError:
            continue  # gone meanwhile
        if in_group and is_alive(pid):
            members.append(pid)
    return members


def has_exited_child(pid: int) -> bool:
    """True when a child of `pid` has exited and `pid` has not collected it yet.

    A supervisor that restarts its worker only on a file change (uvicorn's
    reloader) leaves a worker that failed at start-up in this state.
    """
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return False
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() in _GONE:
                return True
    return False


def start_in_background(
    command: Sequence[str], *, cwd: Path, env: dict[str, str] | None, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own, its output appended to `log`.

    The new session keeps a Ctrl-C in the user's terminal from reaching it, and
    makes its pid the group id `stop_group` stops.
    """
    return subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Send `signum` to the group `pid` leads, or to `pid` alone if it leads none."""
    with contextlib.suppress(ProcessLookupError):
        if leads_group(pid):
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def wait_gone(pid: int, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Wait until `pid` has exited; False if it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(POLL_SECONDS)
    return not is_alive(pid)


def stop_group(
    leader: int, timeout: float = STOP_TIMEOUT_SECONDS, *, leader_only: bool = False
) -> None:
    """SIGTERM the group `leader` started, SIGKILL it after `timeout`, then kill what is left.

    Waits for the leader only: a supervisor stops its own workers before it exits.
    Whatever of the group still runs then (a worker that outlived a killed
    leader, a helper process) is killed and waited for. With `leader_only` the
    SIGTERM goes to the leader alone, for a supervisor that passes it on itself
    (a child signalled twice might take the second as "stop now").
    """
    if is_alive(leader):
        if leader_only:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leader, signal.SIGTERM)
        else:
            signal_group(leader, signal.SIGTERM)
        if not wait_gone(leader, timeout):
            logger.warning("process ignored SIGTERM; killing it", extra={"pid": leader})
            signal_group(leader, signal.SIGKILL)
            wait_gone(leader, timeout)
    kill_group(leader, timeout)


def kill_group(group: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGKILL every live process of `group` and wait until they are gone."""
    members = group_members(group)
    if not members:
        return
    logger.info("killing leftover processes", extra={"pids": members})
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in members:
        wait_gone(pid, timeout)


def run_in_foreground(command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> int:
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
