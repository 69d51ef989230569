"""Fixtures for the CLI command tests: a temp working dir, a runner, a fake template and runtime."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quickscale.generator import copy as template_copy
from quickscale.generator.generate import generate_project
from quickscale.project import Project
from quickscale.runtime import select
from quickscale.runtime.base import Runtime, ServiceState, ServiceStatus, UpResult

ENV_EXAMPLE = """\
# Project settings (copied to .env by quickscale build)
PROJECT_NAME=QuickScale
SECRET_KEY=!!!SET SECRET_KEY!!!
DEBUG=True

# Web
WEB_PORT=8000
WEB_PORT_ALTERNATIVE_FALLBACK=no

# Database
DB_NAME=quickscale
DB_USER=admin
DB_PASSWORD=adminpasswd  # replaced by build
DB_PORT=5432
"""

# Caches and state that a build must never copy.
JUNK = (
    "__pycache__/manage.cpython-311.pyc",
    "core/__pycache__/settings.cpython-311.pyc",
    "core/stale.pyc",
    ".venv/bin/python",
    ".quickscale/logs/web.log",
    ".env",
    ".pytest_cache/v/cache/nodeids",
    ".mypy_cache/3.11/core.json",
    ".ruff_cache/CACHEDIR.TAG",
    "test-artifacts/screenshot.png",
    "staticfiles/app.css",
    "node_modules/htmx/index.js",
)
SOURCES = {
    "manage.py": "import sys\n",
    "core/__init__.py": "",
    "core/settings.py": "SECRET = 'from env'\n",
    "templates/base.html": "<html></html>\n",
    "static/vendor/htmx.min.js": "/* htmx */\n",
    ".env.example": ENV_EXAMPLE,
    "requirements.txt": "django==5.2\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every command test inside its own empty directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def template(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small fake project template (with caches to skip) that builds copy from."""
    root = tmp_path_factory.mktemp("template")
    write_tree(root, SOURCES)
    write_tree(root, {path: "junk\n" for path in JUNK})
    (root / "manage.py").chmod(0o755)
    monkeypatch.setattr(template_copy, "template_root", lambda: root)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def project_dir(in_tmp: Path, template: Path) -> Path:
    """A project built from the fake template, with a free WEB_PORT; the cwd is inside it."""
    root = generate_project(in_tmp / "demo", template=template)
    env = root / ".env"
    env.write_text(env.read_text().replace("WEB_PORT=8000", f"WEB_PORT={free_port()}"))
    return root


@pytest.fixture
def inside(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project_dir)
    return project_dir


@dataclass
class Recorder:
    """What the fake runtime was asked to do, and how it should answer."""

    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    exit_code: int = 0
    up_error: BaseException | None = None
    statuses: list[ServiceStatus] = field(default_factory=list)
    reloads: bool = False
    status_error: BaseException | None = None

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeRuntime(Runtime):
    """A Runtime that records calls instead of running anything."""

    name = "fake"

    def __init__(self, project: Project, recorder: Recorder) -> None:
        super().__init__(project)
        self.recorder = recorder

    def _record(self, name: str, *args: object) -> None:
        self.recorder.calls.append((name, args))

    def up(self) -> UpResult:
        self._record("up")
        if self.recorder.up_error is not None:
            raise self.recorder.up_error
        return UpResult(url="http://localhost:8123", notes=("Port 8000 was busy; using 8123.",))

    def restart(self) -> UpResult:
        self._record("restart")
        return UpResult(url="http://localhost:8123", notes=("It was not running; started it.",))

    def down(self) -> None:
        self._record("down")

    def status(self) -> list[ServiceStatus]:
        self._record("status")
        if self.recorder.status_error is not None:
            raise self.recorder.status_error
        return self.recorder.statuses

    def reloads_code(self) -> bool:
        self._record("reloads_code")
        return self.recorder.reloads

    def logs(self, service: str, *, follow: bool, lines: int) -> int:
        self._record("logs", service, follow, lines)
        print(f"{service} log line")  # noqa: T201 - stands in for the runtime's output
        return self.recorder.exit_code

    def shell(self) -> int:
        self._record("shell")
        return self.recorder.exit_code

    def manage(self, args: Sequence[str]) -> int:
        self._record("manage", *args)
        return self.recorder.exit_code

    def destroy(self) -> None:
        self._record("destroy", Path.cwd())


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Route `get_runtime` to a FakeRuntime sharing one Recorder."""
    recorder = Recorder(
        statuses=[
            ServiceStatus("web", ServiceState.RUNNING, port=8123, pid=4242),
            ServiceStatus("worker", ServiceState.CRASHED, detail="exited by itself"),
            ServiceStatus("db", ServiceState.RUNNING, pid=4343, detail="embedded PostgreSQL"),
            ServiceStatus("mail", ServiceState.STOPPED, detail="writes .quickscale/logs/mail.log"),
        ]
    )
    factory: Callable[[Project], Runtime] = lambda project: FakeRuntime(project, recorder)  # noqa: E731
    monkeypatch.setattr(select, "get_runtime", factory)
    return recorder
