-- credits_grant: give one user a new lot of credits, once per reference.
--
-- credits.ledger.grant calls it (purchases, plan periods, trials, admin gifts).
-- It writes the lot, its grant entry (key = the reference) and the entry's lot
-- row in one statement, where the ORM needed eight (two savepoints, a replay
-- check, three inserts): a webhook that grants credits pays for each.
--
-- Arguments
--   p_user              the account that receives the credits
--   p_amount            how much; above 0
--   p_source            the lot's source (purchase, subscription, ...)
--   p_priority          the lot's spending priority (credits.models.CreditLot.Priority)
--   p_key               the reference: the lot's reference and the entry's key
--   p_expires_at        when the lot's credits expire; NULL: never
--   p_price_id          the Stripe price the credits came with ('' if none)
--   p_lot_description   the lot's description
--   p_entry_description the entry's description
--   p_actor             the staff member who granted them, or NULL
--   p_now               the lot's and the entry's created_at
--
-- Returns (out_status, out_lot_id, out_entry_id):
--   'granted'   written; the new lot's and entry's ids
--   'exists'    this user's grant with this reference was written before (a
--               repeat, or a concurrent identical call that committed first):
--               nothing written; its lot's and entry's ids
--   'conflict'  the reference is taken by something else (another user's
--               grant, another kind of entry, another operation's lot):
--               nothing written, ids NULL
-- A p_amount of 0 or less is refused with an error (SQLSTATE 22023).
--
-- Steps
--   1. Insert the lot with ON CONFLICT (reference) DO NOTHING: two identical
--      calls racing write one lot (the second waits for the first's commit)
--      and neither raises. Not written: look the reference up as an entry.
--   2. Insert the entry with ON CONFLICT (key) DO NOTHING. Not written (the key
--      is another kind of entry's, e.g. a consume's): delete the lot step 1
--      wrote, so nothing is left of the call.
--   3. Insert the entry's lot row.
--
-- This file never changes once a migration loads it: a change is
-- credits_grant_v2.sql plus a migration that loads it (see credits/sql/__init__.py).

CREATE FUNCTION credits_grant(
    p_user bigint,
    p_amount numeric,
    p_source text,
    p_priority integer,
    p_key text,
    p_expires_at timestamptz,
    p_price_id text,
    p_lot_description text,
    p_entry_description text,
    p_actor bigint,
    p_now timestamptz,
    OUT out_status text,
    OUT out_lot_id bigint,
    OUT out_entry_id bigint
)
LANGUAGE plpgsql
AS $body$
DECLARE
    v_entry record;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'credits_grant takes an amount above 0, not %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO credits_creditlot (user_id, source, priority, amount, remaining, held,
                                   expires_at, price_id, reference, description, created_at,
                                   converted_into_id)
    VALUES (p_user, p_source, p_priority, p_amount, p_amount, 0,
            p_expires_at, p_price_id, p_key, p_lot_description, p_now, NULL)
    ON CONFLICT (reference) DO NOTHING
    RETURNING id INTO out_lot_id;

    IF out_lot_id IS NULL THEN
        SELECT entry.id, entry.user_id, entry.kind, part.lot_id INTO v_entry
        FROM credits_ledgerentry AS entry
        LEFT JOIN credits_ledgerentrylot AS part ON part.entry_id = entry.id
        WHERE entry.key = p_key
        LIMIT 1;
        IF FOUND AND v_entry.user_id = p_user AND v_entry.kind = 'grant' THEN
            out_status := 'exists';
            out_entry_id := v_entry.id;
            out_lot_id := v_entry.lot_id;
        ELSE
            out_status := 'conflict';
        END IF;
        RETURN;
    END IF;

    INSERT INTO credits_ledgerentry (user_id, kind, amount, shortfall, key, description,
                                     reason, actor_id, reverses_id, created_at)
    VALUES (p_user, 'grant', p_amount, 0, p_key, p_entry_description,
            '', p_actor, NULL, p_now)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO out_entry_id;

    IF out_entry_id IS NULL THEN
        DELETE FROM credits_creditlot WHERE id = out_lot_id;
        out_lot_id := NULL;
        out_status := 'conflict';
        RETURN;
    END IF;

    INSERT INTO credits_ledgerentrylot (entry_id, lot_id, amount)
    VALUES (out_entry_id, out_lot_id, p_amount);
    out_status := 'granted';
END
$body$;
