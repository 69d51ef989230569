-- credits_consume: take credits from one user's live lots in spending order.
--
-- Version 2: spends only what open holds do not reserve (remaining - held), so
-- held credits can never be spent twice; the balance it reports is the available
-- one. Otherwise as version 1.
--
-- The ledger's only spending algorithm. credits.ledger.consume (usage: all or
-- nothing) and a negative credits.ledger.adjust (a staff correction: never
-- below zero) both call it, so every debit follows the same order and locks.
--
-- Arguments
--   p_user              the account whose lots are spent
--   p_amount            how much to take; above 0 (NULL writes nothing)
--   p_now               the clock: a lot is live while expires_at is NULL or
--                       after it; also the entry's created_at
--   p_key               the entry's key (unique): the caller's reference
--   p_kind              the entry's kind: 'consume' or 'adjustment'
--   p_description, p_reason, p_actor
--                       copied to the entry
--   p_allow_shortfall   false: write nothing unless the available balance covers
--                       p_amount; true: take what there is and record the rest
--                       as the entry's shortfall
--
-- Returns (out_entry_id, out_available): the new entry's id, or NULL when
-- nothing was written (the key exists, or the balance is short and
-- p_allow_shortfall is false), and the available balance before the call (live
-- credits not reserved by open holds). A p_amount of 0 or less, or another
-- kind, is refused with an error (SQLSTATE 22023).
--
-- Steps
--   1. Lock the user's live lots that have credits not held, in spending
--      order (priority, then soonest expiry, then id) with FOR NO KEY UPDATE,
--      the lock an UPDATE of non-key columns takes. The sort runs below the
--      row locks and its keys never change, so every writer locks lots in one
--      global order and two calls cannot deadlock. Under READ COMMITTED the
--      statement hands back each locked row's newest version, so the loop
--      reads current balances.
--   2. Plan in memory: each lot gives min(remaining - held, what is still needed).
--   3. Insert the entry with ON CONFLICT (key) DO NOTHING: a repeated key writes
--      nothing and raises nothing, so the caller's transaction stays usable.
--   4. Only if the entry was written, move the credits and record one
--      credits_ledgerentrylot row per lot touched. One lot covering the amount
--      (the common case) is two single-row statements.
-- The lots' CHECK constraints (0 <= held <= remaining) still refuse any overdraw.
--
-- Why a function: consume runs on every paid request and other calls on the
-- same account wait for its row locks. PL/pgSQL plans its statements once per
-- connection, where statements sent as text are parsed and planned on every
-- call, which costs more than running them. Prepared statements would do the
-- same, but Django keeps them off so transaction-mode connection poolers work.
--
-- This file never changes once a migration loads it: a change is
-- credits_consume_v3.sql plus a migration that loads it (see credits/sql/__init__.py).

CREATE OR REPLACE FUNCTION credits_consume(
    p_user bigint,
    p_amount numeric,
    p_now timestamptz,
    p_key text,
    p_kind text,
    p_description text,
    p_reason text,
    p_actor bigint,
    p_allow_shortfall boolean,
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
    IF p_amount <= 0 THEN
        RAISE EXCEPTION 'credits_consume takes a positive amount, not %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_kind IS DISTINCT FROM 'consume' AND p_kind IS DISTINCT FROM 'adjustment' THEN
        RAISE EXCEPTION 'credits_consume writes consume or adjustment entries, not %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    out_available := 0;
    FOR v_lot IN
        SELECT id, remaining - held AS free FROM credits_creditlot
        WHERE user_id = p_user AND remaining > 0 AND remaining > held
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY priority, expires_at NULLS LAST, id
        FOR NO KEY UPDATE
    LOOP
        out_available := out_available + v_lot.free;
        IF v_need > 0 THEN
            v_part := LEAST(v_lot.free, v_need);
            v_ids := v_ids || v_lot.id;
            v_parts := v_parts || v_part;
            v_need := v_need - v_part;
        END IF;
    END LOOP;
    IF v_need IS NULL OR (v_need > 0 AND p_allow_shortfall IS NOT TRUE) THEN
        RETURN;
    END IF;

    INSERT INTO credits_ledgerentry (user_id, kind, amount, shortfall, key, description,
                                     reason, actor_id, reverses_id, created_at)
    VALUES (p_user, p_kind, v_need - p_amount, v_need, p_key, p_description, p_reason,
            p_actor, NULL, p_now)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO out_entry_id;
    IF out_entry_id IS NULL THEN
        RETURN;
    END IF;

    IF cardinality(v_ids) = 1 THEN
        UPDATE credits_creditlot SET remaining = remaining - v_parts[1] WHERE id = v_ids[1];
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        VALUES (out_entry_id, v_ids[1], -v_parts[1]);
    ELSIF cardinality(v_ids) > 1 THEN
        UPDATE credits_creditlot AS lot SET remaining = lot.remaining - spend.part
        FROM unnest(v_ids, v_parts) AS spend(id, part)
        WHERE lot.id = spend.id;
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        SELECT out_entry_id, spend.id, -spend.part
        FROM unnest(v_ids, v_parts) AS spend(id, part);
    END IF;
END
$body$;
