"""Work inside a project: a shell, Django's shell, any manage.py command."""

from __future__ import annotations

from collections.abc import Sequence

from quickscale.commands.lifecycle import runtime_for
from quickscale.project import Project


def shell(project: Project) -> int:
    """Open a shell with the project's environment; return its exit code."""
    return runtime_for(project).shell()


def django_shell(project: Project, args: Sequence[str] = ()) -> int:
    """Open Django's shell (arguments pass through); return its exit code."""
    return runtime_for(project).django_shell(list(args))


def manage(project: Project, args: Sequence[str]) -> int:
    """Run `manage.py ARGS` in the project's environment; return its exit code."""
    return runtime_for(project).manage(list(args))
