"""The ledger's database functions, one reviewable ``.sql`` file per version.

Each file defines one function and its header states the contract:
``credits_consume_v<N>.sql`` spends credits, ``credits_hold_v<N>.sql``
reserves them, ``credits_settle_v<N>.sql`` closes a hold (charging, releasing
or expiring it). Migrations load these files by name and SHA-256, so a
migration always means what it meant when written:

- never edit a file a migration loads: ``read_sql`` refuses a file whose
  checksum differs from the one the migration gives, and ``migrate`` stops;
- to change a function, copy its newest file to the next version
  (``credits_consume_v2.sql``: ``CREATE OR REPLACE FUNCTION`` when the
  arguments stay the same, otherwise a ``DROP FUNCTION`` of the old signature
  first) and add a migration whose operation is ``run_sql_file(
  "credits_consume_v2.sql", sha256=..., reverse_sql=("DROP FUNCTION
  credits_consume(<v2 argument types>)", read_sql("credits_consume_v1.sql",
  sha256=...)))``. ``sha256sum`` prints the checksum to write there (and the
  error above names it).

``credits/tests/test_sql_function.py`` checks that each function in the
database is its newest file's, so a new version without its migration fails
the suite.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent

__all__ = ["SQL_DIR", "SqlFileChanged", "checksum", "read_sql", "run_sql_file"]


class SqlFileChanged(Exception):
    """A versioned SQL file no longer has the checksum its migration was written against."""


def checksum(text: str) -> str:
    """Return the SHA-256 of ``text`` with line endings normalised (a Windows checkout agrees)."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def read_sql(name: str, *, sha256: str) -> str:
    """Return the text of ``name``, a file in this folder, if its checksum is ``sha256``."""
    path = SQL_DIR / name
    if path.parent != SQL_DIR or path.suffix != ".sql":
        raise ValueError(f"{name!r} is not an .sql file in {SQL_DIR}.")
    text = path.read_text(encoding="utf-8")
    if (actual := checksum(text)) != sha256:
        raise SqlFileChanged(
            f"{name} has changed since a migration was written against it (sha256 {actual}, "
            f"expected {sha256}). Restore it, and put the change in the next version's file "
            "with a migration of its own."
        )
    return text


def run_sql_file(
    name: str, *, sha256: str, reverse_sql: str | tuple[str, ...]
) -> migrations.RunSQL:
    """Return a migration operation that runs the file ``name`` (``reverse_sql`` undoes it)."""
    return migrations.RunSQL(read_sql(name, sha256=sha256), reverse_sql=reverse_sql)
