-- credits_settle: close a hold, charging what the call really cost.
--
-- credits.ledger.settle (a charge, or 0: a release), release and
-- release_expired_holds all call it, so every way a hold closes takes the same
-- locks in the same order.
--
-- Arguments
--   p_key               the hold's key
--   p_amount            what to charge, 0 or more: 0 closes the hold without
--                       charging; above 0 writes one consume entry whose key is
--                       the hold's key, so reversing that key refunds the call
--   p_now               the clock: a lot is live while expires_at is NULL or
--                       after it; also the entry's created_at and closed_at
--   p_description       the entry's description; '' takes the hold's
--   p_close_as          the state a 0 closes into: 'released', or 'expired' (the
--                       sweep; only a hold whose expires_at is not after p_now)
--
-- Returns (out_status, out_closed, out_user, out_entry_id, out_taken,
-- out_shortfall, out_available_before, out_available, out_description):
--   out_status      'unknown' (no hold has the key: nothing done), 'conflict'
--                   (a ledger entry already has the key: nothing done), or the
--                   hold's state after the call: 'settled', 'released',
--                   'expired', or 'open' (the sweep found it not yet expired)
--   out_closed      true when this call closed the hold; false when it was
--                   closed already (a repeat; a settled hold's entry has its key)
--   out_taken       what the entry took from the lots; out_shortfall what it
--                   could not (p_amount = out_taken + out_shortfall)
--   out_available_before, out_available
--                   when p_amount is above the held amount (the only case where
--                   a settle lowers what is available), the user's available
--                   balance before and after the call, else NULL
-- A negative p_amount, or another p_close_as, is refused with an error
-- (SQLSTATE 22023).
--
-- Steps
--   1. Close the hold with one UPDATE of its row while it is open: a settle,
--      a release and the sweep of one hold wait for each other's row lock,
--      the first one closes it and the others find it closed (a repeat).
--   2. Lock the lots the hold reserved on, in the one global order every
--      writer uses (priority, expires_at nulls last, id; FOR NO KEY UPDATE),
--      in one statement. When p_amount is above the held amount, the same
--      statement also locks the user's live lots with credits not held. A
--      lot a plan change converted since (convert_subscription_credits) points
--      at the lot its credits and reservations moved into (converted_into):
--      that lot is locked next (pay-as-you-go and the newest, it comes last in
--      the order) and takes the reservation's share.
--   3. Plan: first from the hold's reservation, lots in spending order; the
--      excess from live credits not held, in spending order; the rest is the
--      shortfall, recorded on the entry for staff (never below zero). A lot that
--      expired since the hold was taken still gives what it reserved.
--   4. Insert the entry (ON CONFLICT (key) DO NOTHING: a key taken meanwhile by
--      a consume reopens the hold and changes nothing), lower the lots'
--      remaining by what was taken and their held by the whole reservation, and
--      record the lot rows.
-- The lots' CHECK constraints (0 <= held <= remaining) still refuse any overdraw.
--
-- This file never changes once a migration loads it: a change is
-- credits_settle_v2.sql plus a migration that loads it (see credits/sql/__init__.py).

CREATE FUNCTION credits_settle(
    p_key text,
    p_amount numeric,
    p_now timestamptz,
    p_description text,
    p_close_as text,
    OUT out_status text,
    OUT out_closed boolean,
    OUT out_user bigint,
    OUT out_entry_id bigint,
    OUT out_taken numeric,
    OUT out_shortfall numeric,
    OUT out_available_before numeric,
    OUT out_available numeric,
    OUT out_description text
)
LANGUAGE plpgsql
AS $body$
DECLARE
    v_hold record;
    v_lot record;
    v_state text;
    v_excess boolean;
    v_moved boolean := false;
    v_locked bigint[] := '{}';
    v_targets bigint[];
    v_ids bigint[] := '{}';
    v_alloc numeric[] := '{}';
    v_free numeric[] := '{}';
    v_live boolean[] := '{}';
    v_take numeric[] := '{}';
    v_need numeric;
    v_part numeric;
    v_n integer;
BEGIN
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'credits_settle takes an amount of 0 or more, not %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_close_as IS DISTINCT FROM 'released' AND p_close_as IS DISTINCT FROM 'expired' THEN
        RAISE EXCEPTION 'credits_settle closes a hold as released or expired, not %', p_close_as
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    out_closed := false;
    v_state := CASE WHEN p_amount > 0 THEN 'settled' ELSE p_close_as END;
    UPDATE credits_credithold SET state = v_state, closed_at = p_now
    WHERE key = p_key AND state = 'open'
      AND (p_close_as = 'released' OR expires_at <= p_now)
    RETURNING user_id, amount, description, lot_ids, lot_amounts INTO v_hold;
    IF NOT FOUND THEN
        SELECT user_id, state INTO out_user, out_status FROM credits_credithold WHERE key = p_key;
        IF NOT FOUND THEN
            out_status := 'unknown';
        END IF;
        RETURN;
    END IF;
    out_user := v_hold.user_id;
    v_excess := p_amount > v_hold.amount;

    IF NOT v_excess THEN
        FOR v_lot IN
            SELECT lot.id, lot.converted_into_id AS moved_to, part.amount AS alloc
            FROM unnest(v_hold.lot_ids, v_hold.lot_amounts) AS part(id, amount)
            JOIN credits_creditlot AS lot ON lot.id = part.id
            ORDER BY lot.priority, lot.expires_at NULLS LAST, lot.id
            FOR NO KEY UPDATE OF lot
        LOOP
            v_ids := v_ids || v_lot.id;
            v_alloc := v_alloc || v_lot.alloc;
            v_free := v_free || 0::numeric;
            v_take := v_take || 0::numeric;
            v_moved := v_moved OR v_lot.moved_to IS NOT NULL;
        END LOOP;
        v_locked := v_ids;
    ELSE
        FOR v_lot IN
            SELECT id, converted_into_id AS moved_to FROM credits_creditlot
            WHERE id = ANY(v_hold.lot_ids)
               OR (user_id = v_hold.user_id AND remaining > 0 AND remaining > held
                   AND (expires_at IS NULL OR expires_at > p_now))
            ORDER BY priority, expires_at NULLS LAST, id
            FOR NO KEY UPDATE
        LOOP
            v_locked := v_locked || v_lot.id;
            v_moved := v_moved OR v_lot.moved_to IS NOT NULL;
        END LOOP;
    END IF;

    IF v_excess OR v_moved THEN
        SELECT COALESCE(array_agg(DISTINCT converted_into_id), '{}') INTO v_targets
        FROM credits_creditlot WHERE id = ANY(v_locked) AND converted_into_id IS NOT NULL;
        FOR v_lot IN
            SELECT id FROM credits_creditlot
            WHERE id = ANY(v_targets) AND NOT id = ANY(v_locked)
            ORDER BY priority, expires_at NULLS LAST, id
            FOR NO KEY UPDATE
        LOOP
            v_locked := v_locked || v_lot.id;
        END LOOP;
        v_ids := '{}';
        v_alloc := '{}';
        v_free := '{}';
        v_take := '{}';
        FOR v_lot IN
            SELECT lot.id, COALESCE(share.amount, 0) AS alloc,
                   lot.expires_at IS NULL OR lot.expires_at > p_now AS live,
                   lot.remaining - lot.held AS free
            FROM credits_creditlot AS lot
            LEFT JOIN (
                SELECT COALESCE(source.converted_into_id, source.id) AS id,
                       SUM(part.amount) AS amount
                FROM unnest(v_hold.lot_ids, v_hold.lot_amounts) AS part(id, amount)
                JOIN credits_creditlot AS source ON source.id = part.id
                GROUP BY 1
            ) AS share ON share.id = lot.id
            WHERE lot.id = ANY(v_locked)
            ORDER BY lot.priority, lot.expires_at NULLS LAST, lot.id
        LOOP
            v_ids := v_ids || v_lot.id;
            v_alloc := v_alloc || v_lot.alloc;
            v_live := v_live || v_lot.live;
            v_free := v_free || CASE WHEN v_lot.live THEN v_lot.free ELSE 0 END;
            v_take := v_take || 0::numeric;
        END LOOP;
    END IF;
    v_n := cardinality(v_ids);

    v_need := p_amount;
    FOR i IN 1 .. v_n LOOP
        EXIT WHEN v_need <= 0;
        v_part := LEAST(v_alloc[i], v_need);
        v_take[i] := v_part;
        v_need := v_need - v_part;
    END LOOP;
    FOR i IN 1 .. v_n LOOP
        EXIT WHEN v_need <= 0;
        v_part := LEAST(v_free[i], v_need);
        v_take[i] := v_take[i] + v_part;
        v_need := v_need - v_part;
    END LOOP;
    out_shortfall := v_need;
    out_taken := p_amount - v_need;
    out_description := COALESCE(NULLIF(p_description, ''), v_hold.description);

    IF p_amount > 0 THEN
        INSERT INTO credits_ledgerentry (user_id, kind, amount, shortfall, key, description,
                                         reason, actor_id, reverses_id, created_at)
        VALUES (v_hold.user_id, 'consume', -out_taken, out_shortfall, p_key, out_description,
                '', NULL, NULL, p_now)
        ON CONFLICT (key) DO NOTHING
        RETURNING id INTO out_entry_id;
        IF out_entry_id IS NULL THEN
            UPDATE credits_credithold SET state = 'open', closed_at = NULL WHERE key = p_key;
            out_status := 'conflict';
            RETURN;
        END IF;
    END IF;

    IF v_n = 1 THEN
        UPDATE credits_creditlot
        SET remaining = remaining - v_take[1], held = held - v_alloc[1]
        WHERE id = v_ids[1];
        IF v_take[1] > 0 THEN
            INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
            VALUES (out_entry_id, v_ids[1], -v_take[1]);
        END IF;
    ELSIF v_n > 1 THEN
        UPDATE credits_creditlot AS lot
        SET remaining = lot.remaining - plan.take, held = lot.held - plan.alloc
        FROM unnest(v_ids, v_take, v_alloc) AS plan(id, take, alloc)
        WHERE lot.id = plan.id AND (plan.take > 0 OR plan.alloc > 0);
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        SELECT out_entry_id, plan.id, -plan.take
        FROM unnest(v_ids, v_take) AS plan(id, take)
        WHERE plan.take > 0;
    END IF;
    out_status := v_state;
    out_closed := true;

    -- Only an excess lowers what is available, and then every live lot with
    -- credits not held is locked and read: what is available is their free
    -- credits, changed by what this call took from and freed on each.
    IF v_excess THEN
        out_available_before := 0;
        out_available := 0;
        FOR i IN 1 .. v_n LOOP
            IF v_live[i] THEN
                out_available_before := out_available_before + v_free[i];
                out_available := out_available + v_free[i] + v_alloc[i] - v_take[i];
            END IF;
        END LOOP;
    END IF;
END
$body$;
