"""The project's Python environment: `.venv`, created and filled by uv.

Reinstalled only when `requirements*.txt` change: their hash is stored in
`.quickscale/venv.hash` after a successful install, so an interrupted or failed
install is simply redone by the next command.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quickscale.errors import QuickScaleError
from quickscale.runtime import processes

logger = logging.getLogger(__name__)

VENV_DIR = ".venv"


def venv_python(project_root: Path) -> Path:
    return project_root / VENV_DIR / "bin" / "python"


def hash_path(project_root: Path) -> Path:
    return project_root / ".quickscale" / "venv.hash"


def install_log_path(project_root: Path) -> Path:
    return project_root / ".quickscale" / "logs" / "install.log"


def compile_pid_path(project_root: Path) -> Path:
    return project_root / ".quickscale" / "compile.pid"


def requirements_file(project_root: Path) -> Path:
    """`requirements-dev.txt` when present (a development checkout), else `requirements.txt`."""
    dev = project_root / "requirements-dev.txt"
    return dev if dev.is_file() else project_root / "requirements.txt"


def requirements_hash(project_root: Path) -> str:
    """Hash of every `requirements*.txt` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(project_root.glob("requirements*.txt")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(project_root: Path) -> bool:
    """True when `.venv` exists and was filled from the present requirements."""
    stored = hash_path(project_root)
    if not venv_python(project_root).exists() or not stored.is_file():
        return False
    return stored.read_text().strip() == requirements_hash(project_root)


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def ensure_venv(project_root: Path) -> Path:
    """Make `.venv` match the requirements; return its python. Fast when nothing changed."""
    python = venv_python(project_root)
    if is_current(project_root):
        return python
    requirements = requirements_file(project_root)
    if not requirements.is_file():
        raise QuickScaleError(
            f"{requirements} is missing, so the project's packages cannot be installed. "
            "Restore it (or rebuild the project)."
        )
    log_path = install_log_path(project_root)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stored = hash_path(project_root)
    stored.unlink(missing_ok=True)  # until this install succeeds, the venv is not current
    stop_background_compile(project_root)  # a previous install's, before uv changes the files
    wanted = requirements_hash(project_root)

    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    steps: list[list[str]] = []
    if not (python.exists() and (project_root / VENV_DIR / "pyvenv.cfg").is_file()):
        steps.append([_uv(), "venv", "--clear", "--python", sys.executable, VENV_DIR])
    steps.append([_uv(), "pip", "install", "--python", str(python), "-r", requirements.name])

    started = time.monotonic()
    logger.info("installing the project's packages", extra={"requirements": str(requirements)})
    with open(log_path, "a") as log:
        for step in steps:
            log.write(f"\n$ {' '.join(step)}\n")
            log.flush()
            try:
                result = subprocess.run(
                    step,
                    cwd=project_root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                code = result.returncode
            except OSError as exc:
                log.write(f"{exc}\n")
                code = -1
            if code != 0:
                raise QuickScaleError(
                    f"Installing the project's Python packages failed. See {log_path} "
                    "for uv's output, fix the cause, then run the command again."
                )
    stored.write_text(wanted + "\n")
    logger.info("packages installed", extra={"seconds": round(time.monotonic() - started, 1)})
    _compile_in_background(python, project_root, log_path)
    return python


def _compile_in_background(python: Path, project_root: Path, log_path: Path) -> None:
    """Compile the installed packages' bytecode while the first start goes on.

    uv leaves the .py files uncompiled. Where imports do not write bytecode
    (PYTHONDONTWRITEBYTECODE is set, as on our CI machines) every later start
    of bootstrap and the server would then compile Django and the rest again,
    about 2 s each on a small machine. Compiling at install time, like pip,
    would add about 5 s to the first start instead; run in the background, the
    first start does not wait for it and every later one finds the bytecode
    (bench/build_and_boot.py). compileall writes each file atomically, so a
    process importing meanwhile never sees a partial one. Its pid is recorded
    so that a reinstall or `destroy` stops it before touching the files.
    """
    command = [str(python), "-m", "compileall", "-q", "-j", "0", str(site_packages(project_root))]
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(command)} (in the background)\n".encode())
        log.flush()
        # Its own session: it outlives this command, and a Ctrl-C here.
        process = processes.start_in_background(command, cwd=project_root, env=None, log=log)
    compile_pid_path(project_root).write_text(f"{process.pid}\n")
    # Not waited for: the process is left to finish (or be stopped) on its own;
    # this keeps Python from warning that it still runs when the object goes.
    process.returncode = 0


def stop_background_compile(project_root: Path, timeout: float = 10.0) -> None:
    """Stop the bytecode compile started by the last install, if it still runs."""
    pid_file = compile_pid_path(project_root)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    if _is_our_compile(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _is_our_compile(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def _is_our_compile(pid: int) -> bool:
    """True while `pid` is a running compileall that leads its own process group."""
    if not processes.leads_group(pid):
        return False  # gone, or the pid was reused by a process of another group
    arguments: list[str] | None = []
    for _ in range(50):  # empty for a moment while a just-started process execs
        arguments = processes.command_line(pid)
        if arguments:
            break
        time.sleep(0.01)
    if not arguments or not any("compileall" in argument for argument in arguments):
        return False
    return processes.is_alive(pid, reap=False)


def site_packages(project_root: Path) -> Path:
    """The `site-packages` folder of the project's `.venv`."""
    found = sorted((project_root / VENV_DIR / "lib").glob("python3*/site-packages"))
    if found:
        return found[-1]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return project_root / VENV_DIR / "lib" / version / "site-packages"
