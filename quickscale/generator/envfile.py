"""Write a project's `.env` from its `.env.example`, with fresh secrets.

Only the values of a few keys are rewritten (see docs/CONTRACTS.md); every other
line, comment and blank line of the example is kept as it is. A key the
example lacks is appended.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_KEY_PLACEHOLDER = "!!!SET SECRET_KEY!!!"
_ASSIGNMENT = re.compile(
    r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<eq>\s*=\s*)(?P<value>.*)$"
)
_INLINE_COMMENT = re.compile(r"\s+#.*$")


def new_secret_key() -> str:
    """Return a Django SECRET_KEY: 67 URL-safe characters, safe unquoted in a `.env`."""
    return secrets.token_urlsafe(50)


def new_db_password() -> str:
    """Return a random database password, safe unquoted in a `.env` and in a URL."""
    return secrets.token_urlsafe(24)


def new_webhook_secret() -> str:
    """Return a Stripe-shaped webhook signing secret (`whsec_` + 64 hex digits).

    The project's simulator signs its events with it, so no two projects share
    one and none uses a public placeholder; hex digits never spell a placeholder
    word the project's production check refuses.
    """
    return "whsec_" + secrets.token_hex(32)


def fresh_values(project_name: str, runtime: str = "local") -> dict[str, str]:
    """Return the values `build` writes into a new project's `.env`."""
    return {
        "SECRET_KEY": new_secret_key(),
        "DB_PASSWORD": new_db_password(),
        "STRIPE_WEBHOOK_SECRET": new_webhook_secret(),
        "PROJECT_NAME": project_name,
        "QUICKSCALE_RUNTIME": runtime,
    }


def render_env(example: str, values: Mapping[str, str]) -> str:
    """Return `example` with the values of `values`' keys replaced, missing keys appended."""
    seen: set[str] = set()
    lines = []
    for line in example.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match["key"] in values:
            key = match["key"]
            seen.add(key)
            old = match["value"]
            comment = "" if old.startswith(("'", '"')) else _comment_of(old)
            line = f"{match['lead']}{key}{match['eq']}{values[key]}{comment}"
        lines.append(line)
    missing = [key for key in values if key not in seen]
    if missing:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append("# Added by quickscale build")
        lines.extend(f"{key}={values[key]}" for key in missing)
    return "\n".join(lines) + "\n"


def write_env(project_dir: Path, values: Mapping[str, str]) -> Path:
    """Write `project_dir/.env` from `.env.example` (or from `values` alone), owner-only."""
    example_path = project_dir / ".env.example"
    example = example_path.read_text(encoding="utf-8") if example_path.is_file() else ""
    target = project_dir / ".env"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render_env(example, values))
    return target


def _comment_of(value: str) -> str:
    match = _INLINE_COMMENT.search(value)
    return match.group(0) if match else ""
