"""``credits_consume`` from ``credits/sql/credits_consume_v1.sql``, which also serves adjustments.

The file adds the entry's kind, reason and whether a shortfall is allowed to
the arguments, so the old signature is dropped first.
"""

from importlib import import_module

from django.db import migrations

from credits.sql import run_sql_file

OLD_SIGNATURE = "credits_consume(bigint, numeric, timestamptz, text, text, bigint)"
V1_SIGNATURE = (
    "credits_consume(bigint, numeric, timestamptz, text, text, text, text, bigint, boolean)"
)
OLD_FUNCTION = import_module("credits.migrations.0004_consume_function_procedural").REPLACE


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0004_consume_function_procedural"),
    ]

    operations = [
        migrations.RunSQL(f"DROP FUNCTION {OLD_SIGNATURE};", reverse_sql=OLD_FUNCTION),
        run_sql_file(
            "credits_consume_v1.sql",
            sha256="6140140d59f463a4e430953a9d82aa65c9bc14e70b607b2c6fa7e55c4547c76c",
            reverse_sql=f"DROP FUNCTION {V1_SIGNATURE};",
        ),
    ]
