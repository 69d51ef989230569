import os
import threading
import time
import uuid

import pytest
import redis
from django.db import connection

from common import ratelimit
from common.models import RateLimitCounter

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WINDOW = 60


@pytest.fixture
def start():
    """One second into the next window: a test's hits never straddle two windows by
    accident, and Redis keys (which expire with their window) live a minute or two."""
    return (int(time.time()) // WINDOW + 1) * WINDOW + 1


@pytest.fixture
def redis_backend(settings):
    """Select the Redis backend on a real server; its keys are deleted afterwards.

    Each test uses a scope of its own (``scope`` fixture), so runs sharing the
    server never count into each other's keys.
    """
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"The Redis backend's tests need a Redis server at {TEST_REDIS_URL} ({error}). "
            "Start one (redis-server) or point TEST_REDIS_URL at one."
        )
    settings.RATE_LIMIT_BACKEND = "redis"
    settings.REDIS_URL = TEST_REDIS_URL
    yield client
    client.close()


@pytest.fixture
def scope(request):
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    if "redis_backend" in request.fixturenames:
        client = request.getfixturevalue("redis_backend")
        keys = list(client.scan_iter(f"ratelimit:{name}:*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=["database", "redis"])
def backend(request):
    """Run a test against each backend (the database one is the tests' default)."""
    if request.param == "redis":
        request.getfixturevalue("redis_backend")
    return request.param


def hits(
    scope: str, key: str, times: int, *, limit: int, now: float, window: int = WINDOW
) -> list[ratelimit.RateDecision]:
    return [
        ratelimit.hit(scope, key, limit=limit, window_seconds=window, now=now) for _ in range(times)
    ]


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_on_one_key_let_exactly_the_limit_through(backend, scope, start):
    """200 hits from 20 threads on a 60-per-window key: exactly 60 allowed.

    transaction=True and threads: each thread has its own database connection and
    every upsert commits for real, as in concurrent requests; inside the usual test
    transaction all threads would share one uncommitted snapshot. Each count from 1
    to 200 is handed out exactly once: no two hits read the same value.
    """
    decisions: list[ratelimit.RateDecision] = []
    lock = threading.Lock()
    gate = threading.Barrier(20)

    def worker() -> None:
        try:
            gate.wait()
            mine = hits(scope, "k1", 10, limit=60, now=start)
            with lock:
                decisions.extend(mine)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(decision.allowed for decision in decisions) == 60
    assert sorted(decision.count for decision in decisions) == list(range(1, 201))
    assert all(decision.allowed == (decision.count <= 60) for decision in decisions)


@pytest.mark.django_db
def test_a_new_window_starts_from_zero(backend, scope, start):
    first = hits(scope, "k1", 3, limit=2, now=start)
    assert [d.allowed for d in first] == [True, True, False]
    assert first[-1].retry_after == WINDOW - 1

    later = ratelimit.hit(scope, "k1", limit=2, window_seconds=WINDOW, now=start + WINDOW)
    assert (later.allowed, later.count, later.retry_after) == (True, 1, WINDOW - 1)


@pytest.mark.django_db
def test_windows_are_aligned_to_the_clock(backend, scope, start):
    """The last second of a window and the first of the next count separately."""
    end_of_window = start - 1 + WINDOW - 0.5
    last = ratelimit.hit(scope, "k1", limit=1, window_seconds=WINDOW, now=end_of_window)
    assert (last.allowed, last.retry_after) == (True, 1)
    first = ratelimit.hit(scope, "k1", limit=1, window_seconds=WINDOW, now=end_of_window + 1)
    assert (first.allowed, first.count) == (True, 1)


@pytest.mark.django_db
def test_keys_and_scopes_count_separately(backend, scope, start):
    hits(scope, "k1", 2, limit=1, now=start)
    assert ratelimit.hit(scope, "k2", limit=1, window_seconds=WINDOW, now=start).allowed
    other_scope = ratelimit.hit(f"{scope}-other", "k1", limit=1, window_seconds=WINDOW, now=start)
    assert other_scope.allowed


@pytest.mark.django_db
def test_refused_hits_keep_counting(backend, scope, start):
    """A client retrying in a loop stays refused for the rest of the window."""
    decisions = hits(scope, "k1", 5, limit=1, now=start)
    assert [d.count for d in decisions] == [1, 2, 3, 4, 5]
    assert not any(d.allowed for d in decisions[1:])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("limit", "window", "key"),
    [(0, WINDOW, "k1"), (-1, WINDOW, "k1"), (1, 0, "k1"), (1, WINDOW, "x" * 200)],
    ids=["no limit", "negative limit", "no window", "key too long"],
)
def test_bad_arguments_are_refused_and_count_nothing(backend, scope, limit, window, key, start):
    with pytest.raises(ValueError):
        ratelimit.hit(scope, key, limit=limit, window_seconds=window, now=start)
    assert ratelimit.hit(scope, "k1", limit=5, window_seconds=WINDOW, now=start).count == 1
    if backend == "database":
        assert list(RateLimitCounter.objects.values_list("key", flat=True)) == [f"{scope}:k1"]


# --------------------------------------------------------------------------- database backend


@pytest.mark.django_db
def test_repeated_hits_send_no_statement_that_fails(scope, start):
    """No hit makes PostgreSQL raise an error, not even one the limiter would swallow.

    Every statement that fails (a duplicate-key INSERT caught and ignored, say)
    writes an ERROR line to the database log; the wrapper sees each such failure
    on its way back.
    """
    statements: list[str] = []
    failures: list[str] = []

    def watch(execute, sql, params, many, context):
        statements.append(sql)
        try:
            return execute(sql, params, many, context)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
            raise

    with connection.execute_wrapper(watch):
        for second in range(0, 3 * WINDOW, 2):
            ratelimit.hit(scope, "k1", limit=10, window_seconds=WINDOW, now=start + second)

    assert len(statements) >= 90
    assert failures == []


@pytest.mark.django_db
def test_one_row_per_key_whatever_the_number_of_windows(scope, start):
    for window in range(5):
        hits(scope, "k1", 3, limit=10, now=start + window * WINDOW)
    row = RateLimitCounter.objects.get()
    assert (row.key, row.count) == (f"{scope}:k1", 3)


@pytest.mark.django_db
def test_rows_of_ended_windows_are_deleted_when_a_window_opens(scope, start):
    def keys() -> list[str]:
        return sorted(RateLimitCounter.objects.values_list("key", flat=True))

    ratelimit.hit(scope, "gone", limit=5, window_seconds=WINDOW, now=start)
    ratelimit.hit(scope, "live", limit=5, window_seconds=WINDOW, now=start + 2 * WINDOW)
    assert keys() == [f"{scope}:live"]
    ratelimit.hit(scope, "new", limit=5, window_seconds=WINDOW, now=start + 2 * WINDOW + 1)
    assert keys() == [f"{scope}:live", f"{scope}:new"]


@pytest.mark.django_db
def test_a_process_whose_clock_lags_counts_into_the_newer_window(scope, start):
    """Worker clocks differ slightly: a late clock must not reset a newer window."""
    ratelimit.hit(scope, "k1", limit=2, window_seconds=WINDOW, now=start + WINDOW)
    lagging = ratelimit.hit(scope, "k1", limit=2, window_seconds=WINDOW, now=start + WINDOW - 2)
    assert (lagging.count, lagging.allowed) == (2, True)
    assert lagging.retry_after == WINDOW + 1
    assert not ratelimit.hit(
        scope, "k1", limit=2, window_seconds=WINDOW, now=start + WINDOW
    ).allowed


# --------------------------------------------------------------------------- redis backend


@pytest.mark.django_db
def test_redis_keys_expire_after_their_window(redis_backend, scope, start):
    ratelimit.hit(scope, "k1", limit=5, window_seconds=WINDOW, now=start)
    [key] = list(redis_backend.scan_iter(f"ratelimit:{scope}:*"))
    window_end = start - 1 + WINDOW
    assert abs(time.time() + redis_backend.pttl(key) / 1000 - (window_end + 1)) < 2
