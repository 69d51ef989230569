"""Create ``credits_consume``, the PL/pgSQL function ``consume()`` calls, as one statement."""

from django.db import migrations

CREATE = """
CREATE FUNCTION credits_consume(
    p_user bigint,
    p_amount numeric,
    p_now timestamptz,
    p_key text,
    p_description text,
    p_actor bigint,
    OUT out_entry_id bigint,
    OUT out_available numeric
)
LANGUAGE plpgsql
AS $body$
DECLARE
    v_lots bigint[];
BEGIN
    SELECT array_agg(id) INTO v_lots FROM (
        SELECT id FROM credits_creditlot
        WHERE user_id = p_user AND remaining > 0
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY priority, expires_at NULLS LAST, id
        FOR NO KEY UPDATE
    ) AS locked;
    WITH live AS MATERIALIZED (
        SELECT id, remaining, priority, expires_at FROM credits_creditlot
        WHERE id = ANY(v_lots)
    ),
    available AS (
        SELECT COALESCE(SUM(remaining), 0) AS total FROM live
    ),
    plan AS (
        SELECT id, LEAST(remaining, p_amount - (SUM(remaining) OVER spend - remaining)) AS part
        FROM live
        WINDOW spend AS (ORDER BY priority, expires_at NULLS LAST, id)
    ),
    entry AS (
        INSERT INTO credits_ledgerentry (user_id, kind, amount, shortfall, key, description,
                                         reason, actor_id, reverses_id, created_at)
        SELECT p_user, 'consume', -p_amount, 0, p_key, p_description, '', p_actor, NULL, p_now
        FROM available WHERE available.total >= p_amount
        ON CONFLICT (key) DO NOTHING
        RETURNING id
    ),
    moved AS (
        UPDATE credits_creditlot AS lot SET remaining = lot.remaining - plan.part
        FROM plan, entry
        WHERE lot.id = plan.id AND plan.part > 0
        RETURNING lot.id, plan.part
    ),
    rows AS (
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        SELECT entry.id, moved.id, -moved.part FROM entry, moved
    )
    SELECT (SELECT id FROM entry), (SELECT total FROM available)
    INTO out_entry_id, out_available;
END
$body$;
"""

DROP = "DROP FUNCTION credits_consume(bigint, numeric, timestamptz, text, text, bigint);"


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0002_slimmer_indexes"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
