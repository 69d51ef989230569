"""ASGI entry point: `uvicorn core.asgi:application`."""

import os
import warnings

import django

from core.body_limit import BodyLimitMiddleware
from core.env import WEB_SERVER_FLAG
from core.handlers import SyncChainASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
# This process serves requests: settings give it a database connection pool.
os.environ[WEB_SERVER_FLAG] = "true"

# WhiteNoise serves static files as synchronous file iterators; Django under ASGI
# reads them in a worker thread and warns once per file. That is expected for
# static files, and the warning would fill web.log on every page load.
warnings.filterwarnings(
    "ignore",
    message="StreamingHttpResponse must consume synchronous iterators",
    category=Warning,
    module="django.core.handlers.asgi",
)

django.setup(set_prefix=False)  # what get_asgi_application() does first
# Request bodies are counted as they arrive and refused past their route's limit
# before Django reads (and spools) them.
application = BodyLimitMiddleware(SyncChainASGIHandler())

# After setup (the call above): production refuses to serve while a starter
# account (user@test.com, admin@test.com: see README.md) has a usable password;
# services added since bootstrap ran get their rows.
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from django.db import connections  # noqa: E402

from services.configuration import ensure_service_rows_at_start_up  # noqa: E402
from users.startup import refuse_starter_accounts  # noqa: E402


def _start_up() -> None:
    try:
        refuse_starter_accounts()
        ensure_service_rows_at_start_up()
    finally:
        # Requests hand their connections back when they finish; this check runs
        # outside any request, so without this its connection stays out of the
        # pool for the life of the process.
        connections.close_all()


# In a thread of its own: uvicorn's worker processes (--workers, WEB_CONCURRENCY)
# import this module inside their running event loop, where Django refuses
# synchronous database access.
with ThreadPoolExecutor(max_workers=1) as _startup:
    _startup.submit(_start_up).result()
