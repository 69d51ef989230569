"""One process of the limiter's multi-process test: hits one key from many threads.

Run as ``python -m common.tests.ratelimit_process SCOPE NOW THREADS LIMIT`` with
REDIS_URL set, as a web process of the project is. It sets Django up, prints
``ready``, waits for a line on stdin (so every process starts together), has
THREADS threads hit ``SCOPE:shared`` once each at the same moment, and prints
their decisions as JSON: ``[[allowed, count], ...]``.
"""

from __future__ import annotations

import json
import os
import sys
import threading

import django

WINDOW_SECONDS = 60


def _say(line: str) -> None:
    """One line to the test that runs this process, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(scope: str, now: float, threads: int, limit: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    django.setup()
    from django.conf import settings

    from common import ratelimit

    if settings.RATE_LIMIT_BACKEND != "redis":
        raise SystemExit(f"expected the Redis limiter, got {settings.RATE_LIMIT_BACKEND!r}")
    _say("ready")
    sys.stdin.readline()

    decisions: list[tuple[bool, int]] = []
    lock = threading.Lock()
    gate = threading.Barrier(threads)

    def hit() -> None:
        gate.wait()
        decision = ratelimit.hit(
            scope, "shared", limit=limit, window_seconds=WINDOW_SECONDS, now=now
        )
        with lock:
            decisions.append((decision.allowed, decision.count))

    workers = [threading.Thread(target=hit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    _say(json.dumps(decisions))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
