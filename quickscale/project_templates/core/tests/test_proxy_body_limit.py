"""The Docker proxy's body limit is the app's largest, from the same settings.

deploy/compose/body-limit.sh runs when the proxy container starts and writes
nginx's client_max_body_size; here it runs with the same variables as a fresh
process of the app, whose own limits (core.body_limit.BodyLimits) it must match.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from common.testing.process import PROJECT_ROOT, run_python

SCRIPT = PROJECT_ROOT / "deploy" / "compose" / "body-limit.sh"
SETTINGS = (
    "API_MAX_BODY_BYTES",
    "AVATAR_MAX_BYTES",
    "BODY_LIMIT_ANONYMOUS_BYTES",
    "BODY_LIMIT_FORMS_BYTES",
    "BODY_LIMIT_WEBHOOK_BYTES",
    "BODY_LIMIT_DEFAULT_BYTES",
)
APP_LARGEST = (
    "import dataclasses, json, django; django.setup(); "
    "from core.body_limit import BodyLimits; "
    "print(json.dumps(max(dataclasses.asdict(BodyLimits.from_settings()).values())))"
)


def app_largest(values: dict[str, str]) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings", **values}
    result = run_python(["-c", APP_LARGEST], env, timeout=60)
    assert result.returncode == 0, result.stderr
    largest: int = json.loads(result.stdout.strip().splitlines()[-1])
    return largest


def proxy_limit(values: dict[str, str], output: Path) -> int:
    env = {"PATH": os.environ["PATH"], "BODY_LIMIT_CONF": str(output), **values}
    done = subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr
    match = re.fullmatch(r"client_max_body_size (\d+);\n", output.read_text())
    assert match, output.read_text()
    return int(match.group(1))


@pytest.mark.parametrize(
    "changed",
    [
        {},  # every limit at its default (empty counts as unset, as in .env)
        {"AVATAR_MAX_BYTES": "20000000"},
        {"BODY_LIMIT_WEBHOOK_BYTES": "30000000", "API_MAX_BODY_BYTES": "1000"},
    ],
    ids=["defaults", "large-avatar", "large-webhook"],
)
def test_the_proxy_limit_is_the_largest_the_app_accepts(tmp_path, changed):
    values = {**dict.fromkeys(SETTINGS, ""), **changed}
    assert proxy_limit(values, tmp_path / "limit.conf") == app_largest(values)
