"""``credits_grant``: a grant in one statement (credits/sql/credits_grant_v1.sql)."""

from django.db import migrations

from credits.sql import run_sql_file

GRANT_SIGNATURE = (
    "credits_grant(bigint, numeric, text, integer, text, timestamptz, text, text, text, "
    "bigint, timestamptz)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0003_trial_source"),
    ]

    operations = [
        run_sql_file(
            "credits_grant_v1.sql",
            sha256="4b61118933618fb9ea291f2b8607f110eb85ec69a601b16518824a539509ac11",
            reverse_sql=f"DROP FUNCTION {GRANT_SIGNATURE};",
        ),
    ]
