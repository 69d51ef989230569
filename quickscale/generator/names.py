"""Validate a project name and its target directory before anything is written."""

from __future__ import annotations

import os
import re
from pathlib import Path

from quickscale.errors import USAGE_EXIT_CODE, QuickScaleError

MAX_NAME_LENGTH = 63
_ALLOWED = re.compile(r"[A-Za-z0-9_-]")
EXAMPLE = "Try a name such as 'myproject' or 'my-saas'."


def validate_name(name: str) -> str:
    """Return `name` if it can name a project; raise a QuickScaleError (exit 2) saying why not."""
    if not name.strip():
        raise QuickScaleError(f"The project name is empty. {EXAMPLE}", exit_code=USAGE_EXIT_CODE)
    if len(name) > MAX_NAME_LENGTH:
        raise QuickScaleError(
            f"The project name is {len(name)} characters long; the limit is "
            f"{MAX_NAME_LENGTH}. Choose a shorter name.",
            exit_code=USAGE_EXIT_CODE,
        )
    if not ("a" <= name[0].lower() <= "z"):
        raise QuickScaleError(
            f"The project name {name!r} must start with a letter. {EXAMPLE}",
            exit_code=USAGE_EXIT_CODE,
        )
    bad = sorted({char for char in name if not _ALLOWED.fullmatch(char)})
    if bad:
        shown = " ".join(repr(char) for char in bad)
        raise QuickScaleError(
            f"The project name {name!r} contains {shown}; use only letters, digits, "
            f"'-' and '_'. {EXAMPLE}",
            exit_code=USAGE_EXIT_CODE,
        )
    return name


def ensure_target_absent(target: Path) -> None:
    """Refuse a target that exists (file, directory or dangling link) or cannot be created."""
    if target.exists() or target.is_symlink():
        raise QuickScaleError(
            f"{target} already exists; nothing was written. "
            "Choose another name, or move the existing one away first."
        )
    parent = target.parent
    if not parent.is_dir():
        raise QuickScaleError(f"{parent} is not a directory. cd into the folder to build in.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise QuickScaleError(
            f"Cannot write in {parent} (permission denied). "
            "cd into a folder you can write to and build there."
        )
