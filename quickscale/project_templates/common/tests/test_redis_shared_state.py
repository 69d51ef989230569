"""With REDIS_URL set, state every process shares lives in Redis: rate limits, the cache, sessions.

Against the real Redis server of ``common.testing.redis``. "Another process" is
either a real one (the limiter) or a second client with a connection pool of its
own, which is all a second process shares with the first: the server.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from common import ratelimit
from common.testing.process import PROJECT_ROOT
from common.testing.redis import TEST_REDIS_URL, delete_keys

PROCESSES = 2
THREADS_PER_PROCESS = 10
LIMIT = 10


@pytest.fixture
def scope(redis_server: redis.Redis) -> Iterator[str]:
    """A rate-limit scope of this test's own; its counters are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_keys(redis_server, f"ratelimit:{name}:*")


def _limiter_process(scope: str, now: float) -> subprocess.Popen[str]:
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL, "TASK_BACKEND": "database"}
    env.pop("REDIS_SESSIONS", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "common.tests.ratelimit_process",
            scope,
            str(now),
            str(THREADS_PER_PROCESS),
            str(LIMIT),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_hitting_one_key_at_once_let_exactly_the_limit_through(scope):
    """2 processes x 10 threads, limit 10: exactly 10 allowed, each count handed out once.

    Real processes with REDIS_URL set, as two web servers are: they share nothing
    but the Redis server, and settings select the Redis limiter by themselves.
    """
    now = (int(time.time()) // 60 + 1) * 60 + 1  # one second into the next window
    processes = [_limiter_process(scope, now) for _ in range(PROCESSES)]
    try:
        for process in processes:
            assert process.stdout is not None
            ready = process.stdout.readline().strip()
            assert ready == "ready", process.stderr.read() if process.stderr else ready
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    decisions: list[list[Any]] = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        decisions.extend(json.loads(out))
    assert len(decisions) == PROCESSES * THREADS_PER_PROCESS
    assert sum(allowed for allowed, _ in decisions) == LIMIT
    assert sorted(count for _, count in decisions) == list(range(1, 21))
    assert all(allowed == (count <= LIMIT) for allowed, count in decisions)


@pytest.mark.django_db
def test_a_window_counter_leaves_redis_when_its_window_is_over(settings, redis_server, scope):
    """On the real clock: a 1 s window refuses its second hit, then its key expires."""
    settings.RATE_LIMIT_BACKEND = "redis"
    settings.REDIS_URL = TEST_REDIS_URL
    time.sleep(math.ceil(time.time()) - time.time() + 0.05)  # just after a second begins

    first = ratelimit.hit(scope, "k1", limit=1, window_seconds=1)
    second = ratelimit.hit(scope, "k1", limit=1, window_seconds=1)
    assert (first.allowed, second.allowed, second.count) == (True, False, 2)
    [key] = list(redis_server.scan_iter(f"ratelimit:{scope}:*"))

    time.sleep(2.2)  # the window ended, and the key's one second of grace with it
    assert not redis_server.exists(key)
    later = ratelimit.hit(scope, "k1", limit=1, window_seconds=1)
    assert (later.allowed, later.count) == (True, 1)


# --------------------------------------------------------------------------- cache


def _other_process_cache() -> BaseCache:
    """The default cache as another process builds it: same settings, its own connections."""
    return caches.create_connection("default")


def test_a_value_cached_by_one_process_is_read_and_deleted_by_another(redis_cache, redis_server):
    first, second = _other_process_cache(), _other_process_cache()

    first.set("greeting", {"text": "hello"}, 60)
    assert second.get("greeting") == {"text": "hello"}
    assert redis_server.exists(f"{redis_cache}:1:greeting")  # in Redis, under the prefix

    second.delete("greeting")
    assert first.get("greeting") is None


def test_only_one_of_many_concurrent_adds_across_two_processes_wins(redis_cache):
    """cache.add is atomic on the server: 20 threads on two clients, one value stored."""
    clients = [_other_process_cache(), _other_process_cache()]
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()
    gate = threading.Barrier(20)

    def add(number: int) -> None:
        gate.wait()
        added = clients[number % 2].add("claim", number, 60)
        with lock:
            results.append((number, added))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [number for number, added in results if added]
    assert len(results) == 20 and len(winners) == 1
    assert clients[0].get("claim") == clients[1].get("claim") == winners[0]


def test_a_cached_value_expires_after_its_timeout(redis_cache):
    cache = _other_process_cache()
    cache.set("brief", "soon gone", 1)
    assert cache.get("brief") == "soon gone"
    time.sleep(1.2)
    assert cache.get("brief") is None


# --------------------------------------------------------------------------- sessions


@pytest.fixture
def redis_sessions(settings, redis_cache: str) -> str:
    """Sessions as REDIS_SESSIONS=true configures them: cached_db on the Redis cache."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    return redis_cache


def _signed_in_elsewhere(first: Client) -> Client:
    """A second client (another process behind the same address) with ``first``'s cookie."""
    second = Client()
    second.cookies[settings.SESSION_COOKIE_NAME] = first.cookies[settings.SESSION_COOKIE_NAME].value
    return second


def _session_queries(client: Client, path: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, sum("django_session" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_a_session_started_in_one_process_is_read_from_redis_in_another(
    redis_sessions, redis_server, user
):
    first = Client()
    first.force_login(user)
    second = _signed_in_elsewhere(first)

    status, session_queries = _session_queries(second, reverse("users:profile"))

    assert status == 200  # signed in: the profile page, not a redirect to log in
    assert session_queries == 0  # read from Redis, not from PostgreSQL
    assert list(redis_server.scan_iter(f"{redis_sessions}:*django.contrib.sessions*"))


@pytest.mark.django_db
def test_sessions_outlive_losing_their_copy_in_redis(redis_sessions, redis_server, user):
    """cached_db writes through to PostgreSQL: a Redis restart or eviction signs nobody out."""
    first = Client()
    first.force_login(user)
    delete_keys(redis_server, f"{redis_sessions}:*")

    status, session_queries = _session_queries(
        _signed_in_elsewhere(first), reverse("users:profile")
    )

    assert status == 200
    assert session_queries >= 1  # read back from PostgreSQL


@pytest.mark.django_db
def test_signing_out_in_one_process_ends_the_session_in_every_other(
    redis_sessions, redis_server, user
):
    first = Client()
    first.force_login(user)
    second = _signed_in_elsewhere(first)

    assert second.post(reverse("account_logout")).status_code == 302

    response = first.get(reverse("users:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not Session.objects.exists()
    assert not list(redis_server.scan_iter(f"{redis_sessions}:*django.contrib.sessions*"))
