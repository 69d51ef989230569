"""Versioned SQL files: the database runs the newest of each; loaded files never change."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import DataError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

import credits.sql
from credits import ledger
from credits.sql import SQL_DIR, SqlFileChanged, checksum, read_sql
from credits.tests.factories import ledger_state
from users.models import CustomUser

pytestmark = pytest.mark.django_db

# Everything that makes two definitions of the function the same function.
_DEFINITION_SQL = """
    SELECT p.prosrc, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
           l.lanname, p.provolatile, p.prosecdef, p.proconfig
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    WHERE p.proname = %s AND n.nspname = %s
"""
# Every function the ledger calls, by the stem of its versioned files.
FUNCTIONS = ("credits_consume", "credits_grant", "credits_hold", "credits_settle")


def _newest(stem: str) -> Path:
    versions = {
        int(match.group(1)): path
        for path in SQL_DIR.glob(f"{stem}_v*.sql")
        if (match := re.fullmatch(rf"{stem}_v(\d+)\.sql", path.name))
    }
    assert versions, f"no {stem}_v<N>.sql in {SQL_DIR}"
    return versions[max(versions)]


def _definitions(cursor: CursorWrapper, name: str, schema: str) -> list[tuple[object, ...]]:
    cursor.execute(_DEFINITION_SQL, [name, schema])
    return list(cursor.fetchall())


def test_every_function_file_has_a_stem_the_suite_checks():
    stems = {re.sub(r"_v\d+\.sql$", "", path.name) for path in SQL_DIR.glob("*.sql")}

    assert stems == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_function_in_the_database_is_the_newest_files(name: str):
    """Created from the newest file in a scratch schema, it matches the migrated one exactly."""
    newest = _newest(name).read_text(encoding="utf-8")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), current_setting('search_path')")
        schema, search_path = cursor.fetchone()
        cursor.execute("CREATE SCHEMA credits_newest_sql")
        cursor.execute("SET LOCAL search_path TO credits_newest_sql")
        cursor.execute(newest)
        cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
        migrated = _definitions(cursor, name, schema)
        expected = _definitions(cursor, name, "credits_newest_sql")
        transaction.set_rollback(True)

    assert len(expected) == 1
    assert migrated == expected  # one function, no leftover overload, the newest body


@pytest.mark.parametrize("amount", [Decimal(0), Decimal("-5.00")], ids=["zero", "negative"])
def test_the_database_function_refuses_an_amount_that_is_not_positive(
    user: CustomUser, amount: Decimal
):
    """A direct SQL caller cannot write an entry that adds credits without a lot."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(DataError, match="positive amount"), transaction.atomic():
        ledger._spend(user, amount, now=timezone.now(), key="raw-1", kind="consume")

    assert ledger_state() == before


@pytest.mark.parametrize("kind", ["grant", "reversal", "", None])
def test_the_database_function_refuses_a_kind_that_is_not_spending(
    user: CustomUser, kind: str | None
):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(DataError, match="consume or adjustment"), transaction.atomic():
        ledger._spend(user, Decimal(1), now=timezone.now(), key="raw-1", kind=kind)  # type: ignore[arg-type]

    assert ledger_state() == before


@pytest.mark.parametrize("amount", [Decimal(0), Decimal("-5.00")], ids=["zero", "negative"])
def test_the_hold_function_refuses_an_amount_that_is_not_positive(
    user: CustomUser, amount: Decimal
):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()
    now = timezone.now()

    with (
        pytest.raises(DataError, match="positive amount"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(ledger._HOLD_SQL, [user.pk, amount, now, "raw-1", "", now])

    assert ledger_state() == before


@pytest.mark.parametrize(
    ("amount", "close_as", "message"),
    [
        (Decimal("-1.00"), "released", "0 or more"),
        (Decimal(0), "settled", "released or expired"),
        (Decimal(0), None, "released or expired"),
    ],
    ids=["negative amount", "closing as settled", "no state"],
)
def test_the_settle_function_refuses_bad_arguments(
    user: CustomUser, amount: Decimal, close_as: str | None, message: str
):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 2, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    before = ledger_state()

    with pytest.raises(DataError, match=message), transaction.atomic():
        ledger._close_hold("call-1", amount, now=timezone.now(), description="", close_as=close_as)  # type: ignore[arg-type]

    assert ledger_state() == before


def test_a_file_is_read_when_its_checksum_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(credits.sql, "SQL_DIR", tmp_path)
    text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    (tmp_path / "f_v1.sql").write_text(text, encoding="utf-8")

    assert read_sql("f_v1.sql", sha256=checksum(text)) == text


def test_a_file_edited_after_its_migration_is_refused_with_its_new_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An old migration cannot silently run different SQL: migrate stops and says why."""
    monkeypatch.setattr(credits.sql, "SQL_DIR", tmp_path)
    written = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    edited = written.replace("SELECT 1", "SELECT 2")
    (tmp_path / "f_v1.sql").write_text(edited, encoding="utf-8")

    with pytest.raises(SqlFileChanged, match=checksum(edited)):
        read_sql("f_v1.sql", sha256=checksum(written))


def test_the_checksum_ignores_windows_line_endings():
    assert checksum("a\r\nb\r\n") == checksum("a\nb\n")


@pytest.mark.parametrize("name", ["../models.py", "credits_consume_v1.txt", "/etc/passwd"])
def test_only_sql_files_of_the_folder_are_read(name: str):
    with pytest.raises(ValueError, match=r"not an \.sql file"):
        read_sql(name, sha256="")
