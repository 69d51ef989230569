"""WSGI entry point, for servers that do not speak ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

application = get_wsgi_application()

# After setup (the call above): production refuses to serve while a starter
# account (user@test.com, admin@test.com: see README.md) has a usable password;
# services added since bootstrap ran get their rows.
from django.db import connections  # noqa: E402

from services.configuration import ensure_service_rows_at_start_up  # noqa: E402
from users.startup import refuse_starter_accounts  # noqa: E402

try:
    refuse_starter_accounts()
    ensure_service_rows_at_start_up()
finally:
    # These run outside any request: their connection would otherwise stay open,
    # held by this thread, for the life of the process.
    connections.close_all()
