"""Locate a generated project and read its recorded settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from quickscale.errors import NotInProjectError, QuickScaleError

MANIFEST_RELATIVE = Path(".quickscale") / "manifest.json"

# The local runtime gives the processes it starts (a `quickscale shell` among them)
# the DATABASE_URL of its embedded cluster, and this variable holding the same
# value: a quickscale command run from such a shell then knows that DATABASE_URL
# is the runtime's, not one the user chose.
RUNTIME_DATABASE_URL = "QUICKSCALE_RUNTIME_DATABASE_URL"


def process_settings() -> dict[str, str]:
    """The process environment as a source of project settings.

    Left out: DJANGO_SETTINGS_MODULE (another project's, from the user's shell) and
    a DATABASE_URL that a quickscale runtime exported itself (the embedded cluster
    of the project a `quickscale shell` was opened in, perhaps not this one).
    """
    values = dict(os.environ)
    values.pop("DJANGO_SETTINGS_MODULE", None)
    exported = values.pop(RUNTIME_DATABASE_URL, None)
    if exported is not None and values.get("DATABASE_URL") == exported:
        del values["DATABASE_URL"]
    return values


@dataclass(frozen=True)
class Project:
    """A generated project on disk: its root and the values of its `.env`.

    Read settings through `setting()` or `effective_env()`, never `env` alone: a
    variable set in the process environment wins over `.env`, the rule of dotenv
    (the project's Django settings load `.env` with override=False) and of Compose.
    """

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def setting(self, key: str, default: str = "") -> str:
        """KEY's value: the process environment's when set there, else `.env`'s, else `default`."""
        value = process_settings().get(key, self.env.get(key))
        return default if value is None else value

    def effective_env(self) -> dict[str, str]:
        """The environment for the project's processes: `.env` under the process environment."""
        return {**self.env, **process_settings()}

    @property
    def name(self) -> str:
        return self.setting("PROJECT_NAME") or self.root.name

    @property
    def state_dir(self) -> Path:
        """Git-ignored per-project state: logs, pid files, media, static files."""
        return self.root / ".quickscale"

    @property
    def runtime_name(self) -> str:
        return self.setting("QUICKSCALE_RUNTIME", "local")


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
