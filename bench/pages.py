"""Page benchmark: our pages beside a stock Django + django-allauth project, in one run.

Two uvicorn processes serve at once, each started by the same command (one
worker, uvicorn's default event loop and HTTP parser):

- ours: the template, plus ``/bare/`` (a view returning a fixed string through
  the whole middleware stack) and ``/bare/signed-in/`` (the same after reading
  ``request.user`` with a session cookie: what every signed-in page pays before
  it renders);
- stock: ``django-admin startproject`` from the same virtualenv (same Django),
  with django-allauth's account app signing in by email and its own templates,
  and the same two bare views. Nothing else differs from startproject's
  defaults except DEBUG off, ALLOWED_HOSTS, and the database: ours's DATABASES
  entry (same server, CONN_MAX_AGE, health checks and the web server's
  connection pool) pointed at a database of its own.

Both projects hold 10,000 users. Each page is fetched by several keep-alive
HTTP clients for a few seconds; every round measures each page of ours right
beside its stock equivalent (so a busy machine slows both alike), and the table
shows each page's median over the rounds of requests/s and of the server
process's CPU time per request, and the median of the rounds' ratios to the
stock page. Database queries per page are counted in-process with 10 users,
then again with 10,000 (seeded with ``bulk_create`` and one precomputed
password hash).

Targets: each page at least as fast as its stock equivalent (login: allauth's
login; email: allauth's email page; landing and profile: the nearest stock
page, anonymous and signed-in) and at least half the bare view's rate; the same
query count at 10 and 10,000 users. The bare rows are references.

Runs against scratch databases on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/pages.py [--seconds 3] [--rounds 3] [--clients 8] [--template DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

USERS = 10_000

# Page name -> path, in ours and in the stock project.
OURS = {
    "bare view": "/bare/",
    "signed-in bare": "/bare/signed-in/",
    "landing": "/",
    "login": "/accounts/login/",
    "profile": "/accounts/profile/",
    "email": "/accounts/email/",
}
STOCK = {
    "bare view": "/bare/",
    "signed-in bare": "/bare/signed-in/",
    "login": "/accounts/login/",
    "email": "/accounts/email/",
}
SIGNED_IN = {"signed-in bare", "profile", "email"}
REFERENCE = {"bare view", "signed-in bare"}  # shown for comparison, no target
# Our page -> the stock page it is held to.
EQUIVALENT = {
    "bare view": "bare view",
    "signed-in bare": "signed-in bare",
    "landing": "login",
    "login": "login",
    "profile": "email",
    "email": "email",
}

BARE_VIEWS = """

def bare(request):
    return HttpResponse("ok")


def bare_signed_in(request):
    assert request.user.is_authenticated
    return HttpResponse("ok")
"""

OUR_SETTINGS = """from core.settings import *  # noqa: F403
ROOT_URLCONF = "bench_pages_urls"
"""
OUR_URLS = (
    """from django.http import HttpResponse
from django.urls import path

from core.urls import urlpatterns as project_urls
"""
    + BARE_VIEWS
    + """

urlpatterns = [path("bare/", bare), path("bare/signed-in/", bare_signed_in), *project_urls]
"""
)

STOCK_SETTINGS = """

# bench/pages.py: django-allauth's account app, signing in by email.
INSTALLED_APPS += ["allauth", "allauth.account"]
MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {{"email"}}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES = {{"default": {database!r}}}
"""
STOCK_URLS = (
    """from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
"""
    + BARE_VIEWS
    + """

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("bare/", bare),
    path("bare/signed-in/", bare_signed_in),
]
"""
)
# Run in the stock project: migrate, seed, sign one user in, count queries per page.
STOCK_SEED = """import json, sys
import django

django.setup()
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

call_command("migrate", verbosity=0)
password = make_password("Bench-pass-123")
users = User.objects.bulk_create(
    [User(username=f"seed{n}", email=f"seed{n}@example.com", password=password)
     for n in range(int(sys.argv[1]))],
    batch_size=2000,
)
EmailAddress.objects.bulk_create(
    [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in users],
    batch_size=2000,
)
signed_in = Client()
signed_in.force_login(User.objects.get(username="seed0"))
pages = json.loads(sys.argv[2])
queries = {}
for name, (path, needs_user) in pages.items():
    client = signed_in if needs_user else Client()
    client.get(path)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    queries[name] = len(captured)
print(json.dumps({"cookie": signed_in.cookies["sessionid"].value, "queries": queries}))
"""


@dataclass
class Project:
    """One uvicorn process and the pages measured on it."""

    label: str
    app: str  # uvicorn's APP argument
    cwd: Path
    env: dict[str, str]
    pages: dict[str, str]
    cookie: str = ""
    queries: dict[str, int] = field(default_factory=dict)
    port: int = 0
    pid: int = 0


@dataclass
class Sample:
    """One page measured on one project: requests/s and the server's CPU per request."""

    rate: float
    cpu_ms: float


def setup_ours(database_url: str, module_dir: Path, template: Path) -> None:
    (module_dir / "bench_pages_settings.py").write_text(OUR_SETTINGS)
    (module_dir / "bench_pages_urls.py").write_text(OUR_URLS)
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench_pages_settings",
        LOG_LEVEL="WARNING",
        DEBUG="False",
        ALLOWED_HOSTS="*",
    )
    sys.path[:0] = [str(module_dir), str(template)]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def seed_users(total: int, password_hash: str) -> None:
    """Bring the number of our users up to ``total`` (verified address, empty profile)."""
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


def count_queries(pages: dict[str, str], session_cookie: str) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies["sessionid"] = session_cookie
    counts = {}
    for name, path in pages.items():
        anonymous = client if name in SIGNED_IN else Client()
        anonymous.get(path)  # warm caches (templates, content types)
        with CaptureQueriesContext(connection) as queries:
            response = anonymous.get(path)
        assert response.status_code == 200, (path, response.status_code)
        counts[name] = len(queries)
    return counts


def our_database_entry(database_name: str) -> dict[str, object]:
    """Our web server's DATABASES["default"] (pool included), for another database."""
    from django.conf import settings

    from core.env import WEB_SERVER_FLAG, database_pool

    ours = settings.DATABASES["default"]
    keys = ("ENGINE", "USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
    entry: dict[str, object] = {key: ours[key] for key in keys if key in ours}
    entry["NAME"] = database_name
    options = dict(ours.get("OPTIONS", {}))
    pool = database_pool({**os.environ, WEB_SERVER_FLAG: "true"})
    if pool is not None:
        options["pool"] = pool
    if options:
        entry["OPTIONS"] = options
    return entry


def build_stock(directory: Path, database_url: str, users: int) -> Project:
    """startproject + allauth in ``directory`` on ``database_url``, migrated and seeded."""
    directory.mkdir()
    bare_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "stock", str(directory)],
        check=True,
        env=bare_env,
    )
    settings_file = directory / "stock" / "settings.py"
    database = our_database_entry(urlsplit(database_url).path.lstrip("/"))
    settings_file.write_text(settings_file.read_text() + STOCK_SETTINGS.format(database=database))
    (directory / "stock" / "urls.py").write_text(STOCK_URLS)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stock.settings",
        "PYTHONPATH": str(directory),
    }
    env.pop("DATABASE_URL", None)  # stock settings name their database themselves
    pages = {name: [path, name in SIGNED_IN] for name, path in STOCK.items()}
    seeded = subprocess.run(
        [sys.executable, "-c", STOCK_SEED, str(users), json.dumps(pages)],
        cwd=directory,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result = json.loads(seeded.stdout.strip().splitlines()[-1])
    return Project(
        label="stock",
        app="stock.asgi:application",
        cwd=directory,
        env=env,
        pages=dict(STOCK),
        cookie=result["cookie"],
        queries=result["queries"],
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(app: str, port: int) -> list[str]:
    """The same uvicorn command for every project (loop and HTTP parser: uvicorn's defaults)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--workers",
        "1",
        "--lifespan",
        "off",
        "--no-proxy-headers",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@contextmanager
def serving(project: Project) -> Iterator[None]:
    project.port = free_port()
    server = subprocess.Popen(
        server_command(project.app, project.port), cwd=project.cwd, env=project.env
    )
    project.pid = server.pid
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", project.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"uvicorn for {project.label} did not start")
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the server process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def throughput(project: Project, path: str, cookie: str, seconds: float, clients: int) -> Sample:
    port = project.port
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
    cpu = server_cpu_seconds(project.pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = server_cpu_seconds(project.pid) - cpu
    requests = sum(done)
    return Sample(rate=requests / elapsed, cpu_ms=1000 * cpu / requests)


def measure_rounds(
    projects: list[Project], seconds: float, rounds: int, clients: int
) -> dict[tuple[str, str], list[Sample]]:
    """One sample per round for each (project label, page).

    In each round every project's version of a page is measured right after the
    others', so samples of the same round and page can be compared pairwise.
    """
    names = list(dict.fromkeys(name for project in projects for name in project.pages))
    samples: dict[tuple[str, str], list[Sample]] = {}
    for _ in range(rounds):
        for name in names:
            for project in projects:
                if name not in project.pages:
                    continue
                path = project.pages[name]
                cookie = project.cookie if name in SIGNED_IN else ""
                throughput(project, path, cookie, 0.5, clients)  # warm-up
                sample = throughput(project, path, cookie, seconds, clients)
                samples.setdefault((project.label, name), []).append(sample)
    return samples


def median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(s.rate for s in samples),
        cpu_ms=statistics.median(s.cpu_ms for s in samples),
    )


def speedup(ours: list[Sample], other: list[Sample]) -> tuple[float, float]:
    """How much faster ``ours`` is than ``other``: medians of the per-round ratios
    (req/s ours / other, CPU ms other / ours); above 1 means ours is faster."""
    return (
        statistics.median(a.rate / b.rate for a, b in zip(ours, other, strict=True)),
        statistics.median(b.cpu_ms / a.cpu_ms for a, b in zip(ours, other, strict=True)),
    )


@contextmanager
def bench_projects(
    template: Path = TEMPLATE, users: int = USERS
) -> Iterator[tuple[Project, Project, dict[str, int], Path]]:
    """Ours and stock, built, seeded and ready to serve; ours's queries at 10 users too.

    Yields (ours, stock, our query counts at 10 users, the folder of generated modules).
    """
    module_dir = Path(tempfile.mkdtemp(prefix="qs-bench-pages-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, module_dir, True)
        server_url = stack.enter_context(database_server())
        our_url = stack.enter_context(scratch_database(server_url, "pages"))
        stock_url = stack.enter_context(scratch_database(server_url, "stock"))
        setup_ours(our_url, module_dir, template)
        from django.contrib.auth.hashers import make_password
        from django.db import connections
        from django.test import Client

        from users.models import CustomUser

        password_hash = make_password("Bench-pass-123")  # one hash for every seeded user
        seed_users(10, password_hash)
        client = Client()
        client.force_login(CustomUser.objects.get(email="seed0@example.com"))
        cookie = client.cookies["sessionid"].value
        queries_10 = count_queries(OURS, cookie)
        seed_users(users, password_hash)
        ours = Project(
            label="ours",
            app="core.asgi:application",
            cwd=template,
            env={**os.environ, "PYTHONPATH": f"{module_dir}:{template}"},
            pages=dict(OURS),
            cookie=cookie,
            queries=count_queries(OURS, cookie),
        )
        stock = build_stock(module_dir / "stock", stock_url, users)
        connections.close_all()
        yield ours, stock, queries_10, module_dir
        connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE,
        help="the project to measure (a copy of the template)",
    )
    args = parser.parse_args()
    with (
        bench_projects(args.template) as (ours, stock, queries_10, _),
        serving(ours),
        serving(stock),
    ):
        samples = measure_rounds([ours, stock], args.seconds, args.rounds, args.clients)

    print(
        f"\nPages at {USERS:,} users: one uvicorn worker per project, {args.clients} keep-alive"
        f" clients, {args.seconds:g} s per page, median of {args.rounds} rounds."
        "\nms: the server process's CPU time per request. x stock: median of the rounds'"
        " ratios, ours / stock for req/s and stock / ours for ms (above 1: ours is faster)."
    )
    header = (
        f"{'page':<15} {'req/s':>6} {'ms':>5}  {'stock page':<15} {'req/s':>6} {'ms':>5}"
        f"  {'x stock':>7} {'(ms)':>5}  {'x bare':>6}  {'queries 10u/10ku/stock':>22}  target"
    )
    print(header)
    print("-" * len(header))
    ok = True
    bare = median(samples[("ours", "bare view")])
    for name in OURS:
        stock_name = EQUIVALENT[name]
        ours_samples, stock_samples = samples[("ours", name)], samples[("stock", stock_name)]
        page, stock_page = median(ours_samples), median(stock_samples)
        q10, q10k, stock_queries = queries_10[name], ours.queries[name], stock.queries[stock_name]
        by_rate, by_cpu = speedup(ours_samples, stock_samples)
        missed = [
            label
            for label, met in (
                ("slower than stock", by_rate >= 1 and by_cpu >= 1),
                ("under 0.5x bare", page.rate >= 0.5 * bare.rate),
                ("queries grow", q10 == q10k),
            )
            if not met
        ]
        if name in REFERENCE:
            verdict = "reference"
        else:
            verdict = "ok" if not missed else "MISSED: " + ", ".join(missed)
            ok &= not missed
        queries = f"{q10}/{q10k}/{stock_queries}"
        print(
            f"{name:<15} {page.rate:>6.0f} {page.cpu_ms:>5.2f}  {stock_name:<15}"
            f" {stock_page.rate:>6.0f} {stock_page.cpu_ms:>5.2f}  {by_rate:>7.2f} {by_cpu:>5.2f}"
            f"  {page.rate / bare.rate:>6.2f}  {queries:>22}  {verdict}"
        )
    print(
        "\nTargets: each page at least as fast as its stock page (req/s and ms), at least"
        " 0.5x our bare view's req/s, and the same query count at 10 and 10,000 users."
    )
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
