"""Copy the project template without caches and runtime state, hashing as it goes."""

from __future__ import annotations

import hashlib
import os
import stat
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
    Works on plain strings and `os.scandir` entries: `build` is timed against a
    bare `shutil.copytree`, and pathlib objects per file cost as much as the copy.
    """
    hashes: dict[str, str] = {}
    _copy_folder(os.fspath(source), os.fspath(destination), "", hashes)
    return hashes


def _copy_folder(source: str, destination: str, relative: str, hashes: dict[str, str]) -> None:
    with os.scandir(source) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        if is_excluded(entry.name):
            continue
        target = os.path.join(destination, entry.name)
        rel = f"{relative}{entry.name}"
        if entry.is_symlink():
            link = os.readlink(entry.path)
            os.symlink(link, target)
            hashes[rel] = hashlib.sha256(f"symlink:{link}".encode()).hexdigest()
        elif entry.is_dir():
            os.mkdir(target)
            _copy_folder(entry.path, target, f"{rel}/", hashes)
        else:
            hashes[rel] = _copy_file(entry, target)


def _copy_file(entry: os.DirEntry[str], target: str) -> str:
    with open(entry.path, "rb") as reader:
        data = reader.read()
    with open(target, "wb") as writer:
        writer.write(data)
    os.chmod(target, stat.S_IMODE(entry.stat().st_mode))
    return hashlib.sha256(data).hexdigest()
