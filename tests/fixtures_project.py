"""Built projects for the runtime and integration tests: one venv per test session.

Imported by `tests/runtime/conftest.py` and `tests/integration/conftest.py`.
Building a project is cheap (a copy of the template); installing its packages
is not, so every project made here gets `.venv` as a symlink to one shared
environment (installed once per session from the template's requirements,
through `quickscale.runtime.venv`, like `up` does) and the matching
`.quickscale/venv.hash`, which `up` then finds current.

Every project made here is destroyed at the end of the session: no
PostgreSQL, uvicorn or /var/lib/quickscale/<hash> is left behind.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quickscale.project import Project, read_env_file
from quickscale.runtime import venv
from quickscale.runtime.embedded_db import EmbeddedDatabase
from quickscale.runtime.local import LocalRuntime
from quickscale.runtime.ports import is_port_free

TEMPLATE = Path(__file__).resolve().parents[1] / "quickscale" / "project_templates"


def set_env_value(env_file: Path, key: str, value: str) -> None:
    """Set KEY=value in a .env file, replacing an existing line or appending one."""
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    prefix = f"{key}="
    replaced = False
    for index, line in enumerate(lines):
        if line.startswith(prefix):
            lines[index] = f"{key}={value}"
            replaced = True
    if not replaced:
        lines.append(f"{key}={value}")
    env_file.write_text("\n".join(lines) + "\n")


_handed_out: set[int] = set()


def free_port() -> int:
    """A free port nobody else in this session was given (avoids 8000 and friends).

    Below Linux's ephemeral range (32768-60999): a port from there can be taken by
    any outgoing connection between the check and the test's `up`.
    """
    while True:
        port = random.randint(20000, 32000)
        if port not in _handed_out and is_port_free(port) and is_port_free(port + 1):
            _handed_out.add(port)
            return port


def seed_venv(project_root: Path, shared_venv: Path) -> None:
    """Point the project's `.venv` at the shared environment and mark it current."""
    target = project_root / venv.VENV_DIR
    if target.is_symlink() or target.exists():
        return
    target.symlink_to(shared_venv, target_is_directory=True)
    hash_file = venv.hash_path(project_root)
    hash_file.parent.mkdir(parents=True, exist_ok=True)
    hash_file.write_text(venv.requirements_hash(project_root) + "\n")


def reload_project(root: Path) -> Project:
    return Project(root=root, env=read_env_file(root / ".env"))


def cleanup_project(root: Path) -> None:
    """Stop whatever a project runs and delete its database, even if its folder is gone."""
    if (root / ".env").is_file():
        with contextlib.suppress(Exception):
            LocalRuntime(reload_project(root)).destroy()
    with contextlib.suppress(Exception):
        EmbeddedDatabase(root).remove()


@pytest.fixture(scope="session")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The one environment of the session, filled from the template's requirements.

    It lives outside pytest's own temporary root on purpose: pytest keeps
    /tmp/pytest-of-<user> private (0700) and re-tightens it whenever a pytest
    run starts, while the embedded PostgreSQL of a project's own test run
    executes this venv's server binaries as another system user, which must
    be able to reach them.
    """
    holder = Path(tempfile.gettempdir()) / f"qs-shared-venv-{tmp_path_factory.getbasetemp().name}"
    holder.mkdir(exist_ok=True)
    holder.chmod(0o755)
    for requirements in TEMPLATE.glob("requirements*.txt"):
        shutil.copy2(requirements, holder / requirements.name)
    venv.ensure_venv(holder)  # a no-op when another conftest's fixture already did it
    yield holder / venv.VENV_DIR
    venv.stop_background_compile(holder)  # it would race the deletion
    shutil.rmtree(holder, ignore_errors=True)


ProjectFactory = Callable[..., Project]


@pytest.fixture(scope="session")
def project_factory(
    tmp_path_factory: pytest.TempPathFactory, shared_venv: Path
) -> Iterator[ProjectFactory]:
    """`make(name, **env)`: build a project with the generator, ready to run.

    It gets the shared venv, a free WEB_PORT, and any extra `.env` values given.
    """
    from quickscale.commands.build import create

    made: list[Path] = []

    def make(name: str = "proj", **env: str) -> Project:
        parent = tmp_path_factory.mktemp("built")
        root = create(name, parent=parent)
        made.append(root)
        seed_venv(root, shared_venv)
        env_file = root / ".env"
        set_env_value(env_file, "WEB_PORT", str(free_port()))
        for key, value in env.items():
            set_env_value(env_file, key, value)
        return reload_project(root)

    yield make
    for root in made:
        cleanup_project(root)
