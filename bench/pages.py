"""Page benchmark: landing, login and profile beside a bare Django view, one server.

One uvicorn process serves the project with one extra URL, ``/bare/``, a view
that returns a fixed string through the same middleware stack. Each page is
fetched by several keep-alive HTTP clients for a few seconds; requests/s are
compared with the bare view's in the same run (target: each page at least half).
One more row, "signed-in bare", is for reference and has no target: a view that
only reads ``request.user`` with a session cookie and returns a fixed string, i.e.
what every signed-in page pays (session and user queries) before it renders.
Database queries per page are counted in-process with 10 users, then again
after seeding 10,000 users with ``bulk_create`` and one precomputed password
hash (target: the same count).

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/pages.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

PAGES = {
    "bare view": "/bare/",
    "landing": "/",
    "login": "/accounts/login/",
    "profile": "/accounts/profile/",
    "signed-in bare": "/bare/signed-in/",
}
SIGNED_IN = {"profile", "signed-in bare"}
REFERENCE = {"signed-in bare"}  # shown beside the pages, no target

SETTINGS = """from core.settings import *  # noqa: F403
ROOT_URLCONF = "bench_pages_urls"
"""
URLS = """from django.http import HttpResponse
from django.urls import path

from core.urls import urlpatterns as project_urls


def bare(request):
    return HttpResponse("ok")


def bare_signed_in(request):
    assert request.user.is_authenticated
    return HttpResponse("ok")


urlpatterns = [path("bare/", bare), path("bare/signed-in/", bare_signed_in), *project_urls]
"""


def setup(database_url: str, module_dir: Path) -> None:
    (module_dir / "bench_pages_settings.py").write_text(SETTINGS)
    (module_dir / "bench_pages_urls.py").write_text(URLS)
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench_pages_settings",
        LOG_LEVEL="WARNING",
        DEBUG="False",
        ALLOWED_HOSTS="*",
    )
    sys.path[:0] = [str(module_dir), str(TEMPLATE)]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def seed_users(total: int, password_hash: str) -> None:
    """Bring the number of users up to ``total`` (verified address, empty profile)."""
    from allauth.account.models import EmailAddress

    from users.models import CustomUser, Profile

    have = CustomUser.objects.count()
    users = [
        CustomUser(email=f"seed{n}@example.com", password=password_hash) for n in range(have, total)
    ]
    created = CustomUser.objects.bulk_create(users, batch_size=2000)
    EmailAddress.objects.bulk_create(
        [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in created],
        batch_size=2000,
    )
    Profile.objects.bulk_create([Profile(user=u) for u in created], batch_size=2000)


def count_queries(session_cookie: str) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies["sessionid"] = session_cookie
    counts = {}
    for name, path in PAGES.items():
        anonymous = client if name in SIGNED_IN else Client()
        anonymous.get(path)  # warm caches (templates, content types)
        with CaptureQueriesContext(connection) as queries:
            response = anonymous.get(path)
        assert response.status_code == 200, (path, response.status_code)
        counts[name] = len(queries)
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, module_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{module_dir}:{TEMPLATE}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "core.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=TEMPLATE,
        env=env,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("uvicorn did not start")


def throughput(port: int, path: str, cookie: str, seconds: float, clients: int) -> float:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            done[index] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def measure(port: int, cookie: str, seconds: float, clients: int) -> dict[str, float]:
    rates = {}
    for name, path in PAGES.items():
        session = cookie if name in SIGNED_IN else ""
        throughput(port, path, session, 0.5, clients)  # warm-up
        rates[name] = throughput(port, path, session, seconds, clients)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    module_dir = Path(tempfile.mkdtemp(prefix="qs-bench-pages-"))
    with database_server() as server_url, scratch_database(server_url) as url:
        setup(url, module_dir)
        from django.contrib.auth.hashers import make_password
        from django.test import Client

        from users.models import CustomUser

        password_hash = make_password("Bench-pass-123")  # one hash for every seeded user
        seed_users(10, password_hash)
        client = Client()
        client.force_login(CustomUser.objects.get(email="seed0@example.com"))
        cookie = client.cookies["sessionid"].value

        results: dict[int, tuple[dict[str, int], dict[str, float]]] = {}
        port = free_port()
        server = start_server(port, module_dir)
        try:
            for users in (10, 10_000):
                seed_users(users, password_hash)
                queries = count_queries(cookie)
                rates = measure(port, cookie, args.seconds, args.clients)
                results[users] = (queries, rates)
        finally:
            server.terminate()
            server.wait(timeout=10)
            from django.db import connections

            connections.close_all()
    shutil.rmtree(module_dir, ignore_errors=True)  # the two generated settings modules

    print(
        f"\nPages, one uvicorn worker, {args.clients} keep-alive clients, {args.seconds:g} s each"
    )
    header = (
        f"{'page':<14} {'req/s 10u':>10} {'x bare':>7} {'req/s 10ku':>11} {'x bare':>7}"
        f" {'queries 10u':>12} {'queries 10ku':>13}  target"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name in PAGES:
        q10, r10 = results[10][0][name], results[10][1][name]
        q10k, r10k = results[10_000][0][name], results[10_000][1][name]
        ratio10 = r10 / results[10][1]["bare view"]
        ratio10k = r10k / results[10_000][1]["bare view"]
        meets = ratio10 >= 0.5 and ratio10k >= 0.5 and q10 == q10k
        verdict = "reference" if name in REFERENCE else ("ok" if meets else "MISSED")
        ok &= meets or name in REFERENCE
        print(
            f"{name:<14} {r10:>10.0f} {ratio10:>7.2f} {r10k:>11.0f} {ratio10k:>7.2f}"
            f" {q10:>12} {q10k:>13}  {verdict}"
        )
    print("\nTargets: each page >= 0.5x the bare view; same query count at 10 and 10,000 users.")
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
