"""Pick the runtime a project was built for. Never guesses, never switches silently."""

from __future__ import annotations

from quickscale.errors import QuickScaleError
from quickscale.project import Project, process_settings
from quickscale.runtime.base import Runtime

RUNTIME_NAMES = ("local", "docker")


def get_runtime(project: Project) -> Runtime:
    """Return the runtime recorded in the project's `.env` as QUICKSCALE_RUNTIME."""
    name = project.runtime_name.strip()
    if name == "local":
        from quickscale.runtime.local import LocalRuntime

        return LocalRuntime(project)
    if name == "docker":
        from quickscale.runtime.docker import DockerRuntime

        return DockerRuntime(project)
    allowed = ", ".join(RUNTIME_NAMES)
    source = (
        "the environment" if "QUICKSCALE_RUNTIME" in process_settings() else project.root / ".env"
    )
    raise QuickScaleError(
        f"QUICKSCALE_RUNTIME={project.runtime_name!r} in {source} is not a "
        f"runtime QuickScale knows. Set it to one of: {allowed}."
    )
