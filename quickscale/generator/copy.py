"""Copy the project template without caches and runtime state, hashing as it goes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import quickscale

# Names skipped wherever they appear in the template tree.
EXCLUDED_NAMES = frozenset(
    {
        "__pycache__",
        ".venv",
        ".quickscale",
        ".env",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".import_linter_cache",
        "test-artifacts",
        "staticfiles",
        "node_modules",
        ".git",
        ".coverage",
        "htmlcov",
        ".DS_Store",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


def template_root() -> Path:
    """Return the directory of the project template shipped with QuickScale."""
    return Path(quickscale.__file__).resolve().parent / "project_templates"


def is_excluded(name: str) -> bool:
    """Return True for a file or folder name that is a cache or state, never source."""
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def copy_template(source: Path, destination: Path) -> dict[str, str]:
    """Copy `source` into the existing folder `destination`.

    Return the sha256 of every copied file, keyed by its POSIX path relative to
    `destination`. Symbolic links are copied as links (hashed by their target).
    """
    hashes: dict[str, str] = {}
    for folder, dirnames, filenames in os.walk(source):
        here = Path(folder)
        relative = here.relative_to(source)
        dirnames[:] = sorted(name for name in dirnames if not is_excluded(name))
        for name in list(dirnames):
            if (here / name).is_symlink():
                dirnames.remove(name)
                filenames.append(name)
            else:
                (destination / relative / name).mkdir()
        for name in sorted(filenames):
            if is_excluded(name):
                continue
            rel = (relative / name).as_posix()
            hashes[rel] = _copy_one(here / name, destination / relative / name)
    return hashes


def _copy_one(source: Path, target: Path) -> str:
    if source.is_symlink():
        link = os.readlink(source)
        os.symlink(link, target)
        return hashlib.sha256(f"symlink:{link}".encode()).hexdigest()
    data = source.read_bytes()
    target.write_bytes(data)
    shutil.copymode(source, target)
    return hashlib.sha256(data).hexdigest()
