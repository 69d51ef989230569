"""`quickscale build NAME`: write a new project, then start it unless asked not to.

`run` is the whole command, lines printed included: cli.py (Typer) and the fast
path in launch.py both call it, so both print the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quickscale.commands import checks
from quickscale.errors import QuickScaleError
from quickscale.output import print_running, say, stdout
from quickscale.project import Project, read_env_file

if TYPE_CHECKING:  # the runtime is imported only when a build starts the project
    from quickscale.runtime.base import UpResult

STARTER_LOGINS = (
    ("user@test.com", "userpasswd", "user"),
    ("admin@test.com", "adminpasswd", "staff"),
)


@dataclass(frozen=True)
class Started:
    """A freshly built project that is now running."""

    project: Project
    up: UpResult


def run(name: str, *, no_start: bool = False, docker: bool = False) -> None:
    """Create ./NAME, say where, and start it unless `no_start`, saying where it runs.

    A `--no-start` build prints two plain lines; Rich and the runtime are
    imported only when the project is started.
    """
    runtime = "docker" if docker else "local"
    root = create(name, runtime=runtime)
    say(f"Created {name} in {root} ({runtime} runtime)")
    if no_start:
        say(f"Start it with: cd {name} && quickscale up")
        return
    out = stdout()
    first_start = "builds its image" if docker else "installs its packages"
    out.print(f"Starting {name} (the first start {first_start})...", markup=False)
    started = start(root)
    print_running(out, name, started.up)
    out.print(f"Stop it with: cd {name} && quickscale down", markup=False)


def create(
    name: str,
    *,
    parent: Path | None = None,
    template: Path | None = None,
    runtime: str = "local",
) -> Path:
    """Validate `name` and write the project into `parent/name`; return its root.

    `runtime` ("local" or "docker") is recorded in the project's `.env` as
    QUICKSCALE_RUNTIME; every later command runs the project with it.
    """
    from quickscale.generator.generate import generate_project

    checks.validate_name(name)
    target = (parent or Path.cwd()) / name
    checks.ensure_target_absent(target)
    return generate_project(target, template=template, runtime=runtime)


def start(root: Path) -> Started:
    """Start a just-built project; on failure, say the project exists and how to retry."""
    from quickscale.runtime.select import get_runtime

    project = Project(root=root, env=read_env_file(root / ".env"))
    try:
        result = get_runtime(project).up()
    except QuickScaleError as exc:
        raise QuickScaleError(
            f"Created {root}, but it did not start: {exc} "
            f"Fix that, then run: cd {root.name} && quickscale up",
            exit_code=exc.exit_code,
        ) from exc
    except KeyboardInterrupt as exc:
        raise QuickScaleError(
            f"Created {root}, but its start was interrupted. "
            f"To start it: cd {root.name} && quickscale up",
            exit_code=130,
        ) from exc
    return Started(project=project, up=result)
