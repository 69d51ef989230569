"""`.quickscale/manifest.json`: what was generated, so a later upgrade can tell edits apart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import quickscale
from quickscale.project import MANIFEST_RELATIVE


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hash(files: Mapping[str, str]) -> str:
    """Return one sha256 for a set of files, from their relative paths and hashes."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{files[path]}  {path}\n".encode())
    return digest.hexdigest()


def build_manifest(
    *, template_files: Mapping[str, str], files: Mapping[str, str]
) -> dict[str, Any]:
    """Return the manifest of a project built from a template with `template_files`."""
    return {
        "generator": "quickscale",
        "generator_version": quickscale.__version__,
        "template_hash": tree_hash(template_files),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": dict(sorted(files.items())),
    }


def write_manifest(project_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write the manifest under `project_dir/.quickscale/` and return its path."""
    path = project_dir / MANIFEST_RELATIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(project_dir: Path) -> dict[str, Any]:
    """Return a project's manifest as written by `write_manifest`."""
    data: dict[str, Any] = json.loads((project_dir / MANIFEST_RELATIVE).read_text("utf-8"))
    return data
