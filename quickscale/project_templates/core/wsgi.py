"""WSGI entry point, for servers that do not speak ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

application = get_wsgi_application()

# After setup (the call above): production refuses to serve while a starter
# account from the spec (user@test.com, admin@test.com) has a usable password.
from users.startup import refuse_starter_accounts  # noqa: E402

refuse_starter_accounts()
