"""Run a project: the commands that do more than call its runtime (up, restart, destroy).

The others (down, ps, logs, shell, manage) call `runtime_for(project)` directly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from quickscale.commands import checks
from quickscale.errors import QuickScaleError
from quickscale.project import Project
from quickscale.runtime.base import Runtime, UpResult


def runtime_for(project: Project) -> Runtime:
    """Return the runtime recorded for `project` (the only way commands reach one)."""
    from quickscale.runtime.select import get_runtime

    return get_runtime(project)


def up(project: Project) -> UpResult:
    """Start the project after checking that its `.env` can work."""
    checks.ensure_env_usable(project)
    return runtime_for(project).up()


def restart(project: Project) -> UpResult:
    """Restart the project's web server (starting a stopped project) after checking `.env`."""
    checks.ensure_env_usable(project)
    return runtime_for(project).restart()


@dataclass(frozen=True)
class Destroyed:
    """What `destroy` removed, and where the process moved to if it stood inside."""

    root: Path
    moved_to: Path | None


def confirm_destroy(project: Project, answer: str) -> None:
    """Raise (exit 1, nothing removed) unless `answer` is the project's folder name."""
    expected = project.root.name
    if answer.strip() != expected:
        raise QuickScaleError(
            f"Nothing removed: {answer.strip()!r} is not {expected!r}. "
            f"Run 'quickscale destroy' again and type {expected} to confirm."
        )


def destroy(project: Project) -> Destroyed:
    """Stop the project, delete its data, then delete its folder."""
    runtime_for(project).destroy()
    root = project.root
    moved_to = None
    cwd = Path.cwd().resolve()
    if cwd == root.resolve() or root.resolve() in cwd.parents:
        moved_to = root.parent
        os.chdir(moved_to)
    try:
        shutil.rmtree(root)
    except OSError as exc:
        raise QuickScaleError(
            f"The project's services and data were removed, but {root} could not be "
            f"deleted ({exc}). Delete it by hand: rm -rf {root}"
        ) from exc
    return Destroyed(root=root, moved_to=moved_to)
