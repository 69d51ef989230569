"""Build a project atomically: write it in a hidden sibling folder, then rename it into place.

A failed or interrupted build (any exception, KeyboardInterrupt included)
removes the temporary folder, so it leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from quickscale.errors import QuickScaleError
from quickscale.generator import copy, envfile, gitignore, manifest, names

TEMP_MARKER = ".qs-tmp-"


def generate_project(target: Path, *, template: Path | None = None, runtime: str = "local") -> Path:
    """Write a new project at `target` (which must not exist) and return its path."""
    target = target.absolute()
    names.ensure_target_absent(target)
    source = template or copy.template_root()
    _ensure_template(source)
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARKER}", dir=target.parent))
    try:
        os.chmod(workdir, 0o777 & ~_current_umask())
        _write(workdir, source, project_name=target.name, runtime=runtime)
        names.ensure_target_absent(target)
        os.rename(workdir, target)
    except BaseException as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise QuickScaleError(
                f"Could not write {target.name} ({exc}); nothing was left behind. "
                "Fix the cause (disk space, permissions) and build again."
            ) from exc
        raise
    return target


def _write(workdir: Path, source: Path, *, project_name: str, runtime: str) -> None:
    template_files = copy.copy_template(source, workdir)
    files = dict(template_files)
    if gitignore.ensure_gitignore(workdir):
        files[".gitignore"] = manifest.file_sha256(workdir / ".gitignore")
    envfile.write_env(workdir, envfile.fresh_values(project_name, runtime))
    manifest.write_manifest(
        workdir, manifest.build_manifest(template_files=template_files, files=files)
    )


def _ensure_template(source: Path) -> None:
    if not (source / "manage.py").is_file():
        raise QuickScaleError(
            f"The project template is missing or incomplete ({source} has no manage.py). "
            "Reinstall QuickScale from its checkout: pip install ."
        )


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
