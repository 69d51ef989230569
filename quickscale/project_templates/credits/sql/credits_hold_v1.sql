-- credits_hold: reserve credits from one user's live lots in spending order.
--
-- credits.ledger.hold calls it before a call whose price is known only
-- afterwards (LLM tokens, a background job); credits_settle closes the hold.
-- A hold moves no credits and writes no ledger entry: it raises the lots'
-- held, which every spending path leaves alone (they spend remaining - held),
-- and records on the hold row what it reserved on each lot.
--
-- Arguments
--   p_user              the account whose credits are reserved
--   p_amount            how much to reserve; above 0
--   p_now               the clock: a lot is live while expires_at is NULL or
--                       after it; also the hold's created_at
--   p_key               the hold's key (unique); its settle entry gets it too
--   p_description       copied to the hold (and to its settle entry)
--   p_expires_at        when the sweep may release the hold
--
-- Returns (out_status, out_hold_id, out_available, out_lot_ids, out_lot_amounts):
--   'created'       the hold was written; out_hold_id is its id
--   'exists'        a hold of this user has the key already (a repeat):
--                   nothing written
--   'conflict'      the key belongs to another user's hold or to a ledger
--                   entry: nothing written
--   'insufficient'  the available balance is below p_amount: nothing written
-- out_available is the available balance (live credits not held) before the
-- call, when the lots were read; out_lot_ids and out_lot_amounts what a created
-- hold reserved on each lot. A p_amount of 0 or less is refused with an error
-- (SQLSTATE 22023).
--
-- Steps
--   1. A key already used answers without locking anything.
--   2. Lock the user's live lots that have credits not held, in the one
--      global order every writer uses (priority, expires_at nulls last, id;
--      FOR NO KEY UPDATE, as credits_consume), and plan: each lot gives
--      min(remaining - held, what is still needed).
--   3. Insert the hold with ON CONFLICT (key) DO NOTHING, so two identical
--      calls racing write one hold and neither raises.
--   4. Only if it was written, raise the lots' held.
-- The lots' CHECK constraint (held <= remaining) still refuses any over-reservation.
--
-- This file never changes once a migration loads it: a change is
-- credits_hold_v2.sql plus a migration that loads it (see credits/sql/__init__.py).

CREATE FUNCTION credits_hold(
    p_user bigint,
    p_amount numeric,
    p_now timestamptz,
    p_key text,
    p_description text,
    p_expires_at timestamptz,
    OUT out_status text,
    OUT out_hold_id bigint,
    OUT out_available numeric,
    OUT out_lot_ids bigint[],
    OUT out_lot_amounts numeric[]
)
LANGUAGE plpgsql
AS $body$
DECLARE
    v_ids bigint[] := '{}';
    v_parts numeric[] := '{}';
    v_need numeric := p_amount;
    v_part numeric;
    v_owner bigint;
    v_lot record;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'credits_hold takes a positive amount, not %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT user_id INTO v_owner FROM credits_credithold WHERE key = p_key;
    IF FOUND THEN
        out_status := CASE WHEN v_owner = p_user THEN 'exists' ELSE 'conflict' END;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM credits_ledgerentry WHERE key = p_key) THEN
        out_status := 'conflict';
        RETURN;
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
    IF v_need > 0 THEN
        out_status := 'insufficient';
        RETURN;
    END IF;

    INSERT INTO credits_credithold (key, user_id, amount, state, description, expires_at,
                                    created_at, closed_at, lot_ids, lot_amounts)
    VALUES (p_key, p_user, p_amount, 'open', p_description, p_expires_at, p_now, NULL,
            v_ids, v_parts)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO out_hold_id;
    IF out_hold_id IS NULL THEN
        SELECT user_id INTO v_owner FROM credits_credithold WHERE key = p_key;
        out_status := CASE WHEN v_owner = p_user THEN 'exists' ELSE 'conflict' END;
        RETURN;
    END IF;

    IF cardinality(v_ids) = 1 THEN
        UPDATE credits_creditlot SET held = held + v_parts[1] WHERE id = v_ids[1];
    ELSE
        UPDATE credits_creditlot AS lot SET held = lot.held + part.amount
        FROM unnest(v_ids, v_parts) AS part(id, amount)
        WHERE lot.id = part.id;
    END IF;
    out_status := 'created';
    out_lot_ids := v_ids;
    out_lot_amounts := v_parts;
END
$body$;
