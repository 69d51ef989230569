"""Commands about QuickScale itself: version, help, and `check` of this machine and project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import quickscale
from quickscale.commands import checks
from quickscale.project import Project, find_project_root, read_env_file
from quickscale.runtime.ports import fallback_enabled, is_port_free


@dataclass(frozen=True)
class CommandHelp:
    """One line of `quickscale help`."""

    name: str
    summary: str
    example: str


COMMANDS = (
    CommandHelp("build", "Create a new project and start it.", "quickscale build myproject"),
    CommandHelp("up", "Start the project (database, bootstrap, web, worker).", "quickscale up"),
    CommandHelp(
        "restart",
        "Restart web server and worker (for .env, packages; code reloads by itself).",
        "quickscale restart",
    ),
    CommandHelp("down", "Stop the project, keeping its data.", "quickscale down"),
    CommandHelp("ps", "Show what runs, on which port, with which pid.", "quickscale ps"),
    CommandHelp(
        "logs", "Show or follow the web, worker, db or mail log.", "quickscale logs web -f"
    ),
    CommandHelp("shell", "Open a shell with the project's environment.", "quickscale shell"),
    CommandHelp("django-shell", "Open Django's shell in the project.", "quickscale django-shell"),
    CommandHelp("manage", "Run any manage.py command.", "quickscale manage createsuperuser"),
    CommandHelp(
        "generate-service",
        "Write a new AI service and its test into the project.",
        "quickscale generate-service summarizer --type text_processing",
    ),
    CommandHelp("check", "Check this machine and the current project.", "quickscale check"),
    CommandHelp("destroy", "Delete the project, its data and its folder.", "quickscale destroy"),
    CommandHelp("help", "List the commands, or show one command's help.", "quickscale help logs"),
    CommandHelp("version", "Print QuickScale's version.", "quickscale version"),
)


def version_text() -> str:
    """Return the line `quickscale version` prints."""
    return f"quickscale {quickscale.__version__}"


def command_help(name: str) -> CommandHelp | None:
    """Return the summary and example of one command, or None if there is none."""
    return next((entry for entry in COMMANDS if entry.name == name), None)


class Outcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckRow:
    """One row of the `check` table."""

    name: str
    outcome: Outcome
    detail: str
    fix: str = ""


NOT_IN_PROJECT = "not in a project"
MIN_PYTHON = (3, 11)


def run_checks(start: Path | None = None) -> list[CheckRow]:
    """Check the machine, then the project around `start` (the working directory)."""
    root = find_project_root(start)
    runtime = _recorded_runtime(root)
    rows = [_python_row(), _uv_row(), _docker_row(required=runtime == "docker")]
    if root is None:
        rows += [
            CheckRow(".env", Outcome.SKIP, NOT_IN_PROJECT),
            CheckRow("Web port", Outcome.SKIP, NOT_IN_PROJECT),
        ]
        return rows
    problems = checks.env_problems(root)
    if problems:
        rows += [CheckRow(".env", Outcome.FAIL, p.message, p.fix) for p in problems]
    else:
        rows.append(CheckRow(".env", Outcome.PASS, f"{root / '.env'} is complete"))
    env = _env_or_empty(root)
    rows.append(_port_row(root, env, "Web port", "WEB_PORT", "web"))
    if runtime == "docker":
        rows.append(_port_row(root, env, "DB port", "DB_PORT_EXTERNAL", "db", default=5432))
    return rows


def has_failures(rows: list[CheckRow]) -> bool:
    """Return True when any row failed (`check` then exits 1)."""
    return any(row.outcome is Outcome.FAIL for row in rows)


def _recorded_runtime(root: Path | None) -> str:
    if root is None:
        return "local"
    try:
        return Project(root=root, env=read_env_file(root / ".env")).runtime_name
    except Exception:
        return "local"


def _python_row() -> CheckRow:
    found = ".".join(str(part) for part in sys.version_info[:3])
    if sys.version_info[:2] >= MIN_PYTHON:
        return CheckRow("Python", Outcome.PASS, found)
    return CheckRow("Python", Outcome.FAIL, f"{found} (3.11+ needed)", "install Python 3.11+")


def _uv_row() -> CheckRow:
    try:
        from uv import find_uv_bin

        return CheckRow("uv", Outcome.PASS, find_uv_bin())
    except (ImportError, FileNotFoundError):
        return CheckRow("uv", Outcome.FAIL, "not found", "reinstall QuickScale: pip install .")


def _docker_row(*, required: bool) -> CheckRow:
    not_ok = Outcome.FAIL if required else Outcome.WARN
    why = "needed: this project uses the docker runtime" if required else "only for --docker"
    docker = shutil.which("docker")
    if docker is None:
        return CheckRow("Docker", not_ok, f"not installed ({why})", "install Docker Engine")
    try:
        done = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return CheckRow("Docker", not_ok, f"not running ({why})", "start the Docker engine")
    if done.returncode != 0:
        return CheckRow("Docker", not_ok, f"not running ({why})", "start the Docker engine")
    return CheckRow("Docker", Outcome.PASS, f"engine {done.stdout.strip()} running")


def _env_or_empty(root: Path) -> dict[str, str]:
    """The project's settings as its commands read them: `.env` under the process environment."""
    try:
        values = read_env_file(root / ".env")
    except Exception:
        values = {}
    return Project(root=root, env=values).effective_env()


def _port_row(
    root: Path, env: dict[str, str], label: str, key: str, service: str, default: int = 0
) -> CheckRow:
    """Is the host port `key` free (or already this project's `service`)?"""
    raw = env.get(key, "").strip()
    port = int(raw) if raw.isdigit() else (default if not raw else 0)
    if not 1 <= port <= 65535:
        return CheckRow(label, Outcome.SKIP, f"{key} unknown (see .env above)")
    if is_port_free(port):
        return CheckRow(label, Outcome.PASS, f"{port} is free")
    own = _own_pid(root, env, service, port)
    if own is not None:
        return CheckRow(label, Outcome.PASS, f"{port} is used by this project ({own})")
    flag = f"{key}_ALTERNATIVE_FALLBACK"
    if fallback_enabled(env.get(flag)):
        return CheckRow(label, Outcome.WARN, f"{port} is busy; up will pick the next free one")
    return CheckRow(
        label,
        Outcome.FAIL,
        f"{port} is in use by another program",
        f"stop it, set {key} in .env to a free port, or {flag}=yes",
    )


def _own_pid(root: Path, env: dict[str, str], service: str, port: int) -> str | None:
    from quickscale.runtime.base import ServiceState

    try:
        from quickscale.runtime.select import get_runtime

        statuses = get_runtime(Project(root=root, env=env)).status()
    except Exception:
        return None
    for status in statuses:
        running = status.state is ServiceState.RUNNING
        if status.name == service and running and status.port == port:
            return f"pid {status.pid}" if status.pid else "running"
    return None
