"""REDIS_URL switches the cache and the rate limiter to Redis; REDIS_SESSIONS the sessions too.

Each case loads the settings in a fresh process with the given environment, as the
web and worker processes load them.
"""

from __future__ import annotations

import json
import os

import pytest

from common.testing.process import run_python

SHOW = (
    "import json; from core import settings as s; print(json.dumps("
    "[s.CACHES['default']['BACKEND'].rsplit('.', 1)[-1], s.RATE_LIMIT_BACKEND,"
    " s.SESSION_ENGINE.rsplit('.', 1)[-1], s.TASKS['default']['BACKEND'].rsplit('.', 1)[-1]]))"
)
REDIS = "redis://127.0.0.1:6379/0"


def _load(**env: str) -> tuple[int, str, str]:
    base = {**os.environ, "REDIS_URL": "", "REDIS_SESSIONS": "", "TASK_BACKEND": "database"}
    result = run_python(["-c", SHOW], {**base, **env}, timeout=60)
    return result.returncode, result.stdout.strip(), result.stderr


@pytest.mark.parametrize(
    ("env", "engines"),
    [
        ({}, ["DatabaseCache", "database", "db", "DatabaseBackend"]),
        ({"REDIS_URL": REDIS}, ["RedisCache", "redis", "db", "DatabaseBackend"]),
        (
            {"REDIS_URL": REDIS, "REDIS_SESSIONS": "true"},
            ["RedisCache", "redis", "cached_db", "DatabaseBackend"],
        ),
        (
            {"REDIS_URL": REDIS, "REDIS_SESSIONS": "true", "TASK_BACKEND": "rq"},
            ["RedisCache", "redis", "cached_db", "RQBackend"],
        ),
    ],
    ids=["postgresql only", "redis", "redis sessions", "redis everything"],
)
def test_each_variable_switches_its_engines_and_nothing_else(env, engines):
    returncode, out, err = _load(**env)
    assert returncode == 0, err
    assert json.loads(out) == engines


def test_redis_sessions_without_redis_refuse_to_start_with_a_clear_message():
    returncode, _, err = _load(REDIS_SESSIONS="true")
    assert returncode != 0
    assert "REDIS_SESSIONS needs REDIS_URL" in err
