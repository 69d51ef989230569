"""Locate a generated project and read its recorded settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from quickscale.errors import NotInProjectError, QuickScaleError

MANIFEST_RELATIVE = Path(".quickscale") / "manifest.json"


@dataclass(frozen=True)
class Project:
    """A generated project on disk: its root and the values of its `.env`."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.env.get("PROJECT_NAME") or self.root.name

    @property
    def state_dir(self) -> Path:
        """Git-ignored per-project state: logs, pid files, media, static files."""
        return self.root / ".quickscale"

    @property
    def runtime_name(self) -> str:
        return self.env.get("QUICKSCALE_RUNTIME", "local")


def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest directory at or above `start` holding a manifest."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MANIFEST_RELATIVE).is_file():
            return candidate
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file; raise a QuickScaleError that says how to fix it."""
    from dotenv import dotenv_values

    if not path.is_file():
        raise QuickScaleError(
            f"{path} is missing. Copy .env.example to .env and set its values "
            "(or rebuild the project)."
        )
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise QuickScaleError(f"{path} cannot be read ({exc}). Fix or recreate it.") from exc
    return {key: value or "" for key, value in values.items()}


def load_project(command: str, start: Path | None = None) -> Project:
    """Find the enclosing project or raise NotInProjectError (exit code 2)."""
    root = find_project_root(start)
    if root is None:
        raise NotInProjectError(command)
    return Project(root=root, env=read_env_file(root / ".env"))
