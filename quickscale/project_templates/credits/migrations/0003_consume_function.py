"""Move consume()'s statement into a PL/pgSQL function, ``credits_consume``.

Sent from Python, the statement was parsed and planned again on every call,
which was most of its cost (about 0.9 of 1.4 ms; bench/credits.py). PL/pgSQL
plans the statements of a function once per database session and reuses the
plan, so a call costs only its execution. A prepared statement would do the
same, but Django keeps prepared statements off so that transaction-mode
connection poolers work; a function works behind any pooler.

What it does:

  lock       lock the user's live lots (CreditLotQuerySet.live()) in spending
             order, FOR NO KEY UPDATE (the lock an UPDATE of non-key columns
             takes), in a statement of its own. A statement that waits for a row
             lock re-checks the row with EvalPlanQual, whose set-up copies the plan
             of the whole statement: with the writes below in the same statement,
             every wait under contention re-initialised all of them (about 10%
             of consume's throughput with 8 workers on one user, bench/credits.py).
             The sort runs below the row locks, so lots are locked in that order
             (one global order, no deadlocks); the sort keys never change.
  live       the locked lots at their newest versions: this statement starts after
             the locks are held, so (READ COMMITTED) it sees every commit before.
  plan       take from each lot in that order until the amount is covered: a lot
             gives min(its remaining, amount - what the lots before it hold). The
             running SUM's frame ends at the current row and (priority,
             expires_at, id) is unique, so "before it" is exact; parts <= 0 are
             lots not needed.
  entry      insert the entry only when the balance covers the amount, and not
             when its key exists (ON CONFLICT DO NOTHING: a repeat writes nothing).
  moved/rows apply the plan and record one per-lot row, only if the entry was
             written. The lots' CHECK constraints still refuse any overdraw.

It returns (entry id or NULL, live balance before the consume). To change it,
add a migration with ``CREATE OR REPLACE FUNCTION``; this one stays as history.
"""

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
