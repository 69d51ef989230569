"""``manage.py worker --reload``: run the worker in a child process, restart it when code changes.

For development, where the web server reloads on every edit: without this, a
task or job would keep running the code as it was when the worker started.
The supervisor watches the project's top-level folders (not hidden ones such
as ``.venv`` and ``.quickscale``, whose files change all the time) for Python
files, through watchfiles (a development requirement, as for uvicorn's
reload).

On a change the child gets SIGTERM (it finishes its running task) and, past
``RESTART_GRACE_SECONDS``, SIGKILL; then a new one starts. A child that exits
by itself (an import error) is started again at the next change, as uvicorn's
reloader does. SIGTERM to the supervisor is passed on to the child once and
the supervisor exits when the child has; SIGINT (a terminal's Ctrl-C, which
reaches the child too) is not passed on.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

RESTART_GRACE_SECONDS = 10.0
# Top-level folders that hold no code the worker runs.
NOT_WATCHED = frozenset({"staticfiles", "node_modules", "test-artifacts", "__pycache__"})


def watched_folders(root: Path) -> list[Path]:
    return sorted(
        entry
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in NOT_WATCHED
    )


def _stop(child: subprocess.Popen[bytes], grace: float) -> int:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(grace)
        except subprocess.TimeoutExpired:
            logger.warning("worker did not stop in time; killing it", extra={"pid": child.pid})
            child.kill()
    return child.wait()


def run_with_reload(command: Sequence[str], *, root: Path) -> int:
    """Run ``command`` until SIGTERM/SIGINT, restarting it on code changes; its last exit code."""
    import watchfiles

    stopping = threading.Event()
    child = subprocess.Popen(list(command), cwd=root)

    def stop(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM and not stopping.is_set() and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reported_exit = False
    logger.info("worker reloads on code changes", extra={"pid": child.pid})
    for changes in watchfiles.watch(
        *watched_folders(root),
        watch_filter=watchfiles.PythonFilter(),
        stop_event=stopping,
        yield_on_timeout=True,
        rust_timeout=1000,
        raise_interrupt=False,
    ):
        if stopping.is_set():
            break
        if changes:
            changed = sorted({Path(path).name for _, path in changes})
            logger.info("code changed; restarting the worker", extra={"files": changed})
            _stop(child, RESTART_GRACE_SECONDS)
            child = subprocess.Popen(list(command), cwd=root)
            reported_exit = False
        elif child.poll() is not None and not reported_exit:
            logger.error(
                "worker exited; it starts again on the next code change",
                extra={"exit_code": child.returncode},
            )
            reported_exit = True
    # The child got the signal (passed on, or from the terminal): wait for it.
    return child.wait()
