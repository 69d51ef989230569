"""Replace ``credits_consume`` with plain PL/pgSQL steps that do less under the row locks.

``credits/sql/credits_consume_v1.sql`` explains the steps.
"""

from importlib import import_module

from django.db import migrations

# Going back restores the function 0003_consume_function creates.
PREVIOUS = import_module("credits.migrations.0003_consume_function").CREATE.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)

REPLACE = """
CREATE OR REPLACE FUNCTION credits_consume(
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
    v_ids bigint[] := '{}';
    v_parts numeric[] := '{}';
    v_need numeric := p_amount;
    v_part numeric;
    v_lot record;
BEGIN
    out_available := 0;
    FOR v_lot IN
        SELECT id, remaining FROM credits_creditlot
        WHERE user_id = p_user AND remaining > 0
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY priority, expires_at NULLS LAST, id
        FOR NO KEY UPDATE
    LOOP
        out_available := out_available + v_lot.remaining;
        IF v_need > 0 THEN
            v_part := LEAST(v_lot.remaining, v_need);
            v_ids := v_ids || v_lot.id;
            v_parts := v_parts || v_part;
            v_need := v_need - v_part;
        END IF;
    END LOOP;
    IF v_need IS NULL OR v_need > 0 THEN  -- NULL amount: write nothing
        RETURN;
    END IF;

    INSERT INTO credits_ledgerentry (user_id, kind, amount, shortfall, key, description,
                                     reason, actor_id, reverses_id, created_at)
    VALUES (p_user, 'consume', -p_amount, 0, p_key, p_description, '', p_actor, NULL, p_now)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO out_entry_id;
    IF out_entry_id IS NULL THEN
        RETURN;
    END IF;

    IF cardinality(v_ids) = 1 THEN
        UPDATE credits_creditlot SET remaining = remaining - v_parts[1] WHERE id = v_ids[1];
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        VALUES (out_entry_id, v_ids[1], -v_parts[1]);
    ELSE
        UPDATE credits_creditlot AS lot SET remaining = lot.remaining - spend.part
        FROM unnest(v_ids, v_parts) AS spend(id, part)
        WHERE lot.id = spend.id;
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        SELECT out_entry_id, spend.id, -spend.part
        FROM unnest(v_ids, v_parts) AS spend(id, part);
    END IF;
END
$body$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0003_consume_function"),
    ]

    operations = [
        migrations.RunSQL(REPLACE, reverse_sql=PREVIOUS),
    ]
