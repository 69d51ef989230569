"""DB_DISABLE_SERVER_SIDE_CURSORS: .iterator() fetches on the client (PgBouncer, transactions)."""

import json
import os

import pytest

from common.testing.database import session_database_url
from common.testing.process import run_python

# Counts the cursors PostgreSQL holds open for this session while .iterator()
# is half-way through its rows. A server-side cursor outside a transaction is
# declared WITH HOLD: PgBouncer in transaction mode may hand the next FETCH to
# another server connection, where that cursor does not exist.
OPEN_CURSORS_WHILE_ITERATING = """
import json, django
django.setup()
from django.contrib.contenttypes.models import ContentType
from django.db import connection

rows = ContentType.objects.order_by("pk").iterator(chunk_size=1)
next(rows)
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE '_django_curs_%'")
    print(json.dumps(cursor.fetchone()[0]))
"""


@pytest.mark.django_db
@pytest.mark.parametrize(("setting", "declared"), [("", 1), ("true", 0)])
def test_iterator_declares_a_server_cursor_unless_disabled(setting: str, declared: int) -> None:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DATABASE_URL": session_database_url(),
        "DB_DISABLE_SERVER_SIDE_CURSORS": setting,
    }
    result = run_python(["-c", OPEN_CURSORS_WHILE_ITERATING], environment)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == declared
