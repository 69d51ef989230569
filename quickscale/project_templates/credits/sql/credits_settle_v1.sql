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
-- Returns (out_status, out_closed, out_hold_id, out_user, out_entry_id,
-- out_taken, out_shortfall, out_available, out_description):
--   out_status      'unknown' (no hold has the key: nothing done), 'conflict'
--                   (a ledger entry already has the key: nothing done), or the
--                   hold's state after the call: 'settled', 'released',
--                   'expired', or 'open' (the sweep found it not yet expired)
--   out_closed      true when this call closed the hold; false when it was
--                   closed already (a repeat: out_entry_id is its entry, if any)
--   out_taken       what the entry took from the lots; out_shortfall what it
--                   could not (p_amount = out_taken + out_shortfall)
--   out_available   the user's available balance after a settle
-- A negative p_amount, or another p_close_as, is refused with an error
-- (SQLSTATE 22023).
--
-- Steps
--   1. Lock the hold row (FOR NO KEY UPDATE): a settle, a release and the
--      sweep of one hold are serialized, and the first one closes it.
--   2. Lock the hold's lots and, only when p_amount is above the held amount,
--      the user's live lots with credits not held, in one statement ordered
--      like every writer (priority, expires_at nulls last, id). A plan change
--      (convert_subscription_credits) moves an open hold's reservation to the
--      new lot under the old lots' locks, so the hold's rows are read again
--      once the locks are granted and any lot they name now is locked too (a
--      converted lot is pay-as-you-go, the newest: last in the order).
--   3. Plan: first from the hold's reservation, lots in spending order; the
--      excess from live credits not held, in spending order; the rest is the
--      shortfall, recorded on the entry for staff (never below zero). A lot that
--      expired since the hold was taken still gives what it reserved.
--   4. Insert the entry (ON CONFLICT (key) DO NOTHING: a key taken meanwhile by
--      a consume leaves the hold open), lower the lots' remaining by what was
--      taken and their held by the whole reservation, record the lot rows, and
--      close the hold.
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
    OUT out_hold_id bigint,
    OUT out_user bigint,
    OUT out_entry_id bigint,
    OUT out_taken numeric,
    OUT out_shortfall numeric,
    OUT out_available numeric,
    OUT out_description text
)
LANGUAGE plpgsql
AS $body$
DECLARE
    v_hold record;
    v_lot record;
    v_want bigint[];
    v_locked bigint[] := '{}';
    v_excess boolean;
    v_ids bigint[] := '{}';
    v_alloc numeric[] := '{}';
    v_free numeric[] := '{}';
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
    SELECT id, user_id, state, amount, expires_at, entry_id, description INTO v_hold
    FROM credits_credithold WHERE key = p_key
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        out_status := 'unknown';
        RETURN;
    END IF;
    out_hold_id := v_hold.id;
    out_user := v_hold.user_id;
    out_entry_id := v_hold.entry_id;
    out_status := v_hold.state;
    IF v_hold.state <> 'open'
       OR (p_amount = 0 AND p_close_as = 'expired' AND v_hold.expires_at > p_now) THEN
        RETURN;
    END IF;

    v_excess := p_amount > v_hold.amount;
    LOOP
        SELECT COALESCE(array_agg(lot_id), '{}') INTO v_want
        FROM credits_creditholdlot WHERE hold_id = v_hold.id;
        EXIT WHEN v_want <@ v_locked AND cardinality(v_locked) > 0;
        FOR v_lot IN
            SELECT id FROM credits_creditlot
            WHERE (id = ANY(v_want) AND NOT id = ANY(v_locked))
               OR (v_excess AND cardinality(v_locked) = 0
                   AND user_id = v_hold.user_id AND remaining > 0 AND remaining > held
                   AND (expires_at IS NULL OR expires_at > p_now))
            ORDER BY priority, expires_at NULLS LAST, id
            FOR NO KEY UPDATE
        LOOP
            v_locked := v_locked || v_lot.id;
        END LOOP;
        EXIT WHEN cardinality(v_want) = 0;
    END LOOP;

    FOR v_lot IN
        SELECT lot.id, COALESCE(part.amount, 0) AS alloc,
               CASE WHEN lot.expires_at IS NULL OR lot.expires_at > p_now
                    THEN lot.remaining - lot.held ELSE 0 END AS free
        FROM credits_creditlot AS lot
        LEFT JOIN credits_creditholdlot AS part
               ON part.lot_id = lot.id AND part.hold_id = v_hold.id
        WHERE lot.id = ANY(v_locked)
        ORDER BY lot.priority, lot.expires_at NULLS LAST, lot.id
    LOOP
        v_ids := v_ids || v_lot.id;
        v_alloc := v_alloc || v_lot.alloc;
        v_free := v_free || v_lot.free;
        v_take := v_take || 0::numeric;
    END LOOP;
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
            out_status := 'conflict';
            RETURN;
        END IF;
        out_status := 'settled';
    ELSE
        out_status := p_close_as;
    END IF;

    IF v_n = 1 THEN
        UPDATE credits_creditlot
        SET remaining = remaining - v_take[1], held = held - v_alloc[1]
        WHERE id = v_ids[1];
    ELSE
        UPDATE credits_creditlot AS lot
        SET remaining = lot.remaining - plan.take, held = lot.held - plan.alloc
        FROM unnest(v_ids, v_take, v_alloc) AS plan(id, take, alloc)
        WHERE lot.id = plan.id AND (plan.take > 0 OR plan.alloc > 0);
    END IF;
    IF out_taken > 0 THEN
        INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
        SELECT out_entry_id, plan.id, -plan.take
        FROM unnest(v_ids, v_take) AS plan(id, take)
        WHERE plan.take > 0;
    END IF;
    UPDATE credits_credithold
    SET state = out_status, closed_at = p_now, charged = out_taken, entry_id = out_entry_id
    WHERE id = v_hold.id;
    out_closed := true;

    IF p_amount > 0 THEN
        SELECT COALESCE(SUM(remaining - held), 0) INTO out_available
        FROM credits_creditlot
        WHERE user_id = v_hold.user_id AND remaining > 0
          AND (expires_at IS NULL OR expires_at > p_now);
    END IF;
END
$body$;
