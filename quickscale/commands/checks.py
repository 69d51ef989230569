"""Guard rails shared by the commands: valid names, a sound `.env`, free ports."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from quickscale.errors import QuickScaleError
from quickscale.generator.envfile import SECRET_KEY_PLACEHOLDER
from quickscale.generator.names import ensure_target_absent, validate_name
from quickscale.project import Project, find_project_root, load_project

__all__ = [
    "Problem",
    "ensure_env_usable",
    "ensure_target_absent",
    "env_problems",
    "require_project",
    "validate_name",
]

REQUIRED_KEYS = ("SECRET_KEY", "WEB_PORT", "QUICKSCALE_RUNTIME")
RUNTIMES = ("local", "docker")
DUMMY_SECRETS = {SECRET_KEY_PLACEHOLDER, "dev-only-dummy-key-replace-in-production", ""}


@dataclass(frozen=True)
class Problem:
    """Something wrong with a project's setup, and how to fix it."""

    message: str
    fix: str
    blocks_start: bool = True


def require_project(command: str, *, env_optional: bool = False) -> Project:
    """Return the project around the working directory, or raise NotInProjectError (exit 2).

    With `env_optional`, a project whose `.env` is missing still loads (with an
    empty environment), so `destroy` can remove a broken project.
    """
    root = find_project_root()
    if env_optional and root is not None and not (root / ".env").is_file():
        return Project(root=root, env={})
    return load_project(command)


def env_problems(root: Path) -> list[Problem]:
    """Return what is wrong with `root/.env` (empty when it is sound)."""
    path = root / ".env"
    if not path.is_file():
        return [Problem(".env is missing", "copy .env.example to .env and set SECRET_KEY")]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(f".env cannot be read ({exc})", "recreate it from .env.example")]
    from dotenv.parser import parse_stream

    env: dict[str, str] = {}
    problems = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            problems.append(
                Problem(
                    f".env line {binding.original.line} cannot be parsed",
                    "write it as KEY=value, or comment it out with #",
                )
            )
        elif binding.key is not None:
            env[binding.key] = binding.value or ""
    return problems + _value_problems(env)


def _value_problems(env: dict[str, str]) -> list[Problem]:
    problems = [
        Problem(f".env lacks {key}", f"add a {key}=... line (see .env.example)")
        for key in REQUIRED_KEYS
        if key not in env
    ]
    for key, value in env.items():
        is_port_key = key.endswith("_PORT") or key.endswith("_PORT_EXTERNAL")
        if is_port_key and (value or key == "WEB_PORT") and not _is_port(value):
            problems.append(
                Problem(f".env {key}={value!r} is not a port", "use a number from 1 to 65535")
            )
    runtime = env.get("QUICKSCALE_RUNTIME")
    if runtime is not None and runtime not in RUNTIMES:
        problems.append(
            Problem(
                f".env QUICKSCALE_RUNTIME={runtime!r} is not a runtime",
                "set it to local or docker (the runtime the project was built with)",
            )
        )
    if "SECRET_KEY" in env and env["SECRET_KEY"] in DUMMY_SECRETS:
        problems.append(
            Problem(
                ".env SECRET_KEY is still the placeholder",
                "set it to a long random value, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'",
                blocks_start=False,
            )
        )
    return problems


def _is_port(value: str) -> bool:
    return value.strip().isdigit() and 1 <= int(value) <= 65535


def ensure_env_usable(project: Project) -> None:
    """Raise a QuickScaleError naming the first `.env` problem that would break a start."""
    for problem in env_problems(project.root):
        if problem.blocks_start:
            raise QuickScaleError(f"{problem.message} (in {project.root}). To fix: {problem.fix}.")
