"""The credit ledger: the only code that writes credit lots, ledger entries and holds.

Design overview
---------------
A user's credits are a set of ``CreditLot`` rows (one per grant) and the
history is a list of append-only ``LedgerEntry`` rows, each with
``LedgerEntryLot`` rows saying how much it took from or returned to each lot
(see ``credits/models.py``). Every function below changes lots and writes
the entry that explains the change in one transaction, so the entry rows of
a lot always sum to its ``remaining``.

Spending order. One database function, ``credits_consume`` (defined in
``credits/sql/``, the newest ``credits_consume_v<N>.sql``), spends credits for
both ``consume`` and a negative ``adjust``: it locks the user's live lots
(``FOR NO KEY UPDATE``) ordered by (priority, expires_at nulls last, id),
subscription lots first, soonest expiry first, pay-as-you-go last, and takes
from them in that order. Every function that locks lots locks them in that
one global order, so two writers never deadlock and two concurrent spends
never take the same credit; the balance cannot go negative (the database
refuses ``remaining < 0`` as well). Plan conversion and expiry empty whole
lots, so no order decides what they take.

Holds. A call whose price is known only when it ends reserves credits first
(``hold``) and pays what it cost at the end (``settle``; ``release`` pays
nothing). A hold raises its lots' ``held``; every spending path takes only
``remaining - held`` (consume and a negative adjust through the function, a
grant reversal, expiry, which leaves held credits for their holds until they
close), so held credits are never spent twice, and ``balance`` reports them
as ``reserved``. ``hold`` (``credits_hold``) reserves in spending order with
consume's locks; ``settle``, ``release`` and the sweep
``release_expired_holds`` all go through ``credits_settle``, which closes
the hold with one UPDATE of its row (so the first of them wins), then locks
its lots in the global order; only a settle above the held amount also locks
the user's other live lots, in the same statement. A plan conversion moves
held credits with the rest and points the old lot at the new one
(``converted_into``), which closing a hold follows. A hold's row is locked
before its lots, and nothing holding lots waits for a hold's row, so holds
add no deadlock. Holds close by state, not by clock: a hold past its ``expires_at``
can still be settled until the sweep releases it.

Expiry. A lot is live while ``expires_at`` is null or in the future; the
balance is computed at read time from live lots only, so an expired lot
stops counting the moment it expires. ``expire()`` (run by ``bootstrap`` and
the ``expire_credits`` command) then writes the expiry entries that bring
those lots' ``remaining`` down to what open holds still reserve on them (a
settle may charge those); what the holds free later expires at the next
run. Afterwards the entries, the lots and the balance agree.

Idempotency. Each operation has a unique key: the caller's reference for
grant, consume, adjust and convert; ``reversal:<reference>:<key>`` for a
reversal; the caller's key for a hold, which its settle entry takes too (so
``reverse(key)`` refunds a settled call). Repeating an operation returns the
first result and changes nothing. ``credits_consume`` (for ``consume`` and a
negative ``adjust``), ``credits_hold`` and ``credits_settle`` insert with
``ON CONFLICT (key) DO NOTHING`` in the same call that moves the credits,
and move them only if the row was written, so a repeat writes nothing and
raises nothing. The other writers check after taking their locks and insert
in a savepoint whose ``IntegrityError`` is turned into "return the first
result". Either way a race between two identical calls never reaches the
caller as a database error and never poisons the caller's transaction.
Reusing a reference for a different operation or user raises
``ReferenceConflict``.

Speed. ``consume`` runs on every paid request, so it is one self-committing
call of ``credits_consume`` instead of ORM calls in a transaction block, and
the tables carry only the indexes it needs; ``balance`` reads a partial index
of open lots, so neither slows down as the history grows. ``hold`` and
``settle`` are one call each for the same reason. The functions exist so
PostgreSQL plans their statements once per connection (the consume file says
why that matters). There is no second query: the entry or hold is built from
what the call returns, and the low-balance check uses the balance the
function returns and registers an ``on_commit`` hook only on a crossing.

Amounts are ``Decimal`` with at most 2 places, positive, finite and at most
``MAX_AMOUNT``; ints are accepted, floats never (``InvalidAmount``). ``hold``
and ``settle`` take costs: more places are rounded up to 0.01
(``round_up_cost``), and ``settle`` takes 0. The ledger never reads
``CREDIT_SYSTEM_ENABLED``: callers decide whether to charge. It reads
``LOW_CREDIT_THRESHOLD`` to send the low-balance email after a call that
takes the available balance across it commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from credits.emails import send_low_balance_email
from credits.exceptions import (
    HoldReleased,
    InsufficientCredits,
    InvalidAmount,
    InvalidHoldExpiry,
    InvalidReference,
    InvalidSource,
    MissingReason,
    NotReversible,
    ReferenceConflict,
    ReversalExceedsOriginal,
    UnknownHold,
    UnknownReference,
)
from credits.models import (
    ZERO,
    CreditHold,
    CreditLot,
    LedgerEntry,
    LedgerEntryLot,
)
from credits.signals import available_lowered
from users.models import CustomUser

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")
MAX_REFERENCE_LENGTH = 255
_RESERVED_PREFIXES = ("reversal:", "expiry:")
_SPEND_ORDER = ("priority", F("expires_at").asc(nulls_last=True), "id")
_REVERSIBLE = {LedgerEntry.Kind.GRANT, LedgerEntry.Kind.CONSUME, LedgerEntry.Kind.ADJUSTMENT}

# The spending function (credits/sql/credits_consume_v<N>.sql) with its arguments in
# order: user, amount, now, key, kind, description, reason, actor, allow_shortfall.
# It returns (entry id or NULL, live balance before the call).
_CONSUME_SQL = (
    "SELECT out_entry_id, out_available FROM credits_consume(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# The reserving function (credits/sql/credits_hold_v<N>.sql): user, amount, now, key,
# description, expires_at. Returns (status, the new hold's id, available before, and
# what the new hold reserved: lot ids, lot amounts).
_HOLD_SQL = (
    "SELECT out_status, out_hold_id, out_available, out_lot_ids, out_lot_amounts"
    " FROM credits_hold(%s, %s, %s, %s, %s, %s)"
)
# The closing function (credits/sql/credits_settle_v<N>.sql): key, amount, now,
# description, state a 0 closes into. Its OUT columns are _SETTLE_COLUMNS.
_SETTLE_COLUMNS = (
    "out_status",
    "out_closed",
    "out_user",
    "out_entry_id",
    "out_taken",
    "out_shortfall",
    "out_available_before",
    "out_available",
    "out_description",
)
_SETTLE_SQL = f"SELECT {', '.join(_SETTLE_COLUMNS)} FROM credits_settle(%s, %s, %s, %s, %s)"
# balance() runs on every signed-in page (the navbar shows it). Written out, it is
# CreditLot.objects.filter(user=...).live(at) with three filtered sums; the ORM's
# aggregate() costs about 1 ms of Python per call to build it, the text nothing.
# The WHERE clause is CreditLotQuerySet.live()'s, kept in step by the balance tests.
_BALANCE_SQL = """
    SELECT COALESCE(SUM(remaining) FILTER (WHERE source IN (%s, %s)), 0.00),
           COALESCE(SUM(remaining), 0.00),
           COALESCE(SUM(held), 0.00)
    FROM credits_creditlot
    WHERE user_id = %s AND remaining > 0 AND (expires_at IS NULL OR expires_at > %s)
"""
# The granting function (credits/sql/credits_grant_v<N>.sql): user, amount, source,
# priority, reference, expires_at, price_id, lot description, entry description,
# actor, now. Returns (status, lot id, entry id).
_GRANT_SQL = (
    "SELECT out_status, out_lot_id, out_entry_id"
    " FROM credits_grant(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# CreditLot's columns in the order a granted lot is built from what it was given.
_LOT_FIELDS = [
    "id",
    "user_id",
    "source",
    "priority",
    "amount",
    "remaining",
    "held",
    "expires_at",
    "price_id",
    "reference",
    "description",
    "created_at",
    "converted_into_id",
]
# LedgerEntry's columns in the order the entry is built from what a function returns.
_ENTRY_FIELDS = [
    "id",
    "user_id",
    "kind",
    "amount",
    "shortfall",
    "key",
    "reverses_id",
    "actor_id",
    "description",
    "reason",
    "created_at",
]
_HOLD_FIELDS = [
    "id",
    "key",
    "user_id",
    "amount",
    "state",
    "description",
    "expires_at",
    "created_at",
    "closed_at",
    "lot_ids",
    "lot_amounts",
]

__all__ = [
    "MAX_AMOUNT",
    "Balance",
    "adjust",
    "balance",
    "consume",
    "convert_subscription_credits",
    "expire",
    "grant",
    "hold",
    "release",
    "release_expired_holds",
    "reverse",
    "round_up_cost",
    "settle",
]


@dataclass(frozen=True)
class Balance:
    """A user's live credits, split by how they were obtained and by what holds reserve.

    ``subscription + pay_as_you_go == total``; ``reserved`` is the part of
    ``total`` open holds set aside for calls still running, and
    ``available == total - reserved`` is what can be spent now.
    """

    subscription: Decimal
    pay_as_you_go: Decimal
    total: Decimal
    reserved: Decimal
    available: Decimal


# --------------------------------------------------------------------------- public interface


def grant(
    user: CustomUser,
    amount: Decimal | int,
    *,
    source: str,
    reference: str,
    expires_at: datetime | None = None,
    price_id: str = "",
    description: str = "",
    actor: CustomUser | None = None,
) -> CreditLot:
    """Give ``user`` a new lot of ``amount`` credits; the same reference twice grants once.

    Raises ``ReferenceConflict`` and writes nothing when the reference is taken by
    another account's grant or by another kind of entry. One self-committing call
    of ``credits_grant``, like ``consume``.
    """
    value = _positive_amount(amount)
    reference = _reference(reference)
    lot_source = _source(source)
    now = timezone.now()
    actor_id = actor.pk if actor else None
    entry_description = description or lot_source.label
    with connection.cursor() as cursor:
        cursor.execute(
            _GRANT_SQL,
            [
                user.pk,
                value,
                lot_source.value,
                int(_priority(lot_source)),
                reference,
                expires_at,
                price_id,
                description,
                entry_description,
                actor_id,
                now,
            ],
        )
        status, lot_id, entry_id = cursor.fetchone()
    if status == "conflict":
        raise ReferenceConflict(
            f"Reference {reference!r} is already used by another account's grant, another "
            "kind of entry or another credit lot; use a new reference."
        )
    if status == "exists":
        return CreditLot.objects.get(pk=lot_id)
    logger.info(
        "credits granted",
        extra={
            "user_id": user.pk,
            "amount": str(value),
            "source": lot_source.value,
            "lot_id": lot_id,
            "entry_id": entry_id,
        },
    )
    return CreditLot.from_db(
        connection.alias,
        _LOT_FIELDS,
        [
            lot_id,
            user.pk,
            lot_source.value,
            int(_priority(lot_source)),
            value,
            value,
            ZERO,
            expires_at,
            price_id,
            reference,
            description,
            now,
            None,
        ],
    )


def consume(
    user: CustomUser,
    amount: Decimal | int,
    *,
    reference: str,
    description: str = "",
    actor: CustomUser | None = None,
) -> LedgerEntry:
    """Spend ``amount`` from ``user``'s live lots in priority order.

    Raises ``InsufficientCredits`` and changes nothing when the live balance is
    too small; the same reference twice charges once and returns the first entry.

    The whole change is one call of a database function, atomic by itself, so
    this function is not wrapped in ``transaction.atomic``: outside a caller's
    transaction the call commits in the same round trip and holds the lot locks for
    the shortest possible time (under contention, about twice the throughput of
    BEGIN ... COMMIT); inside one, it joins it.
    """
    value = _positive_amount(amount)
    reference = _reference(reference)
    now = timezone.now()
    actor_id = actor.pk if actor else None
    entry_id, available = _spend(
        user,
        value,
        now=now,
        key=reference,
        kind=LedgerEntry.Kind.CONSUME,
        description=description,
        actor_id=actor_id,
    )
    if entry_id is None:
        # Nothing was written: either the reference was charged before (answer
        # with that first entry, even if the credits have run out since), or
        # the balance does not cover the amount.
        if (first := _replayed(reference, user=user, kind=LedgerEntry.Kind.CONSUME)) is not None:
            return first
        raise InsufficientCredits(required=value, available=available)
    entry = LedgerEntry.from_db(
        connection.alias,
        _ENTRY_FIELDS,
        [
            entry_id,
            user.pk,
            LedgerEntry.Kind.CONSUME,
            -value,
            ZERO,
            reference,
            None,
            actor_id,
            description,
            "",
            now,
        ],
    )
    _notify_if_low(user.pk, before=available, after=available - value)
    return entry


@transaction.atomic
def reverse(
    reference: str,
    *,
    amount: Decimal | int | None = None,
    key: str | None = None,
    reason: str,
    actor: CustomUser | None = None,
) -> LedgerEntry:
    """Undo all or ``amount`` of the grant, consume or adjustment made with ``reference``.

    Idempotent on ``key`` (default: the reference itself, i.e. one full
    reversal). A consume's credits go back into the lots they came from. A
    grant is taken back only from what is still unspent in its lot, never below
    zero; what could not be taken back is recorded as the entry's ``shortfall``.
    """
    reference = _reference(reference)
    key = reference if key is None else _reference(key)
    value = None if amount is None else _positive_amount(amount)
    reason = _reason(reason)
    original = LedgerEntry.objects.select_for_update().filter(key=reference).first()
    if original is None:
        raise UnknownReference(f"No credit grant or charge was made with reference {reference!r}.")
    entry_key = f"reversal:{reference}:{key}"
    if (first := LedgerEntry.objects.filter(key=entry_key).first()) is not None:
        return first
    if original.kind not in _REVERSIBLE or original.amount == 0:
        raise NotReversible(
            f"A {original.get_kind_display().lower()} entry cannot be reversed ({reference!r})."
        )
    left = abs(original.amount) - _already_reversed(original)
    wanted = left if value is None else value
    if left <= 0 or wanted > left:
        raise ReversalExceedsOriginal(
            f"Only {max(left, ZERO)} of {reference!r} is left to reverse; {wanted} was asked."
        )
    try:
        with transaction.atomic():
            if original.amount < 0:
                entry = _return_to_lots(original, wanted, key=entry_key, reason=reason, actor=actor)
            else:
                entry = _take_back_grant(
                    original, wanted, key=entry_key, reason=reason, actor=actor
                )
    except IntegrityError:
        return LedgerEntry.objects.get(key=entry_key)
    logger.info(
        "credits reversed",
        extra={
            "user_id": original.user_id,
            "reference": reference,
            "amount": str(entry.amount),
            "shortfall": str(entry.shortfall),
        },
    )
    return entry


@transaction.atomic
def adjust(
    user: CustomUser,
    amount: Decimal | int,
    *,
    reference: str,
    reason: str,
    actor: CustomUser,
) -> LedgerEntry:
    """Record a staff correction of ``amount`` (positive or negative) to ``user``'s credits.

    A positive amount grants a pay-as-you-go lot. A negative amount takes from
    live lots in spending order, through the same database function as
    ``consume``, but never below zero: what was not there is recorded as the
    entry's ``shortfall``. Either way the entry is an adjustment, not usage.
    """
    value = _amount(amount, signed=True)
    reference = _reference(reference)
    reason = _reason(reason)
    if value > 0:
        entry = _adjust_up(user, value, reference=reference, reason=reason, actor=actor)
    else:
        entry = _adjust_down(user, -value, reference=reference, reason=reason, actor=actor)
    logger.info(
        "credits adjusted",
        extra={"user_id": user.pk, "amount": str(entry.amount), "actor_id": actor.pk},
    )
    return entry


@transaction.atomic
def convert_subscription_credits(
    user: CustomUser, *, reference: str, except_price_id: str | None = None
) -> LedgerEntry | None:
    """Turn ``user``'s live subscription lots into one pay-as-you-go lot (a plan change).

    Lots granted for ``except_price_id`` (the new plan's price) are left alone,
    whichever order the plan change's events arrive in. Returns the transfer
    entry, or None when there was nothing to convert (nothing is written then).

    Credits open holds reserve move too, reservations included: the new lot is
    held as much as the old ones were, and each old lot points at the new one
    (``converted_into``), which is where closing such a hold charges and frees
    them. Nothing is lost to the old lots' expiry, and the holds' rows are never
    rewritten (so this takes no lock on them).
    """
    reference = _reference(reference)
    kind = LedgerEntry.Kind.TRANSFER
    lots = _lock_live_lots(user, timezone.now(), source=CreditLot.Source.SUBSCRIPTION)
    if except_price_id is not None:
        lots = [lot for lot in lots if lot.price_id != except_price_id]
    if (first := _replayed(reference, user=user, kind=kind)) is not None:
        return first
    if not lots:
        return None
    total = sum((lot.remaining for lot in lots), ZERO)
    held = sum((lot.held for lot in lots), ZERO)
    try:
        with transaction.atomic():
            new_lot = CreditLot.objects.create(
                user=user,
                source=CreditLot.Source.TRANSFER,
                priority=CreditLot.Priority.PAY_AS_YOU_GO,
                amount=total,
                remaining=total,
                held=held,
                reference=reference,
                description="Converted subscription credits",
            )
            entry = LedgerEntry.objects.create(
                user=user,
                kind=kind,
                amount=ZERO,
                key=reference,
                description="Subscription credits converted to pay-as-you-go",
            )
            # Each lot is emptied whole, so no spending order decides what it gives.
            LedgerEntryLot.objects.bulk_create(
                [LedgerEntryLot(entry=entry, lot=lot, amount=-lot.remaining) for lot in lots]
                + [LedgerEntryLot(entry=entry, lot=new_lot, amount=total)]
            )
            CreditLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(
                remaining=ZERO, held=ZERO, converted_into=new_lot
            )
    except IntegrityError:
        return _replayed_after_conflict(reference, user=user, kind=kind)
    logger.info(
        "subscription credits converted",
        extra={"user_id": user.pk, "amount": str(total), "held": str(held), "lots": len(lots)},
    )
    return entry


@transaction.atomic
def expire(*, now: datetime | None = None) -> int:
    """Write expiry entries for every lot expired at ``now`` that still has credits not held.

    What open holds reserve on an expired lot stays for them (it was reserved
    while the lot was live, so a settle can still charge it); what they free
    when they close expires at the next run. Idempotent: a second run finds
    nothing left to expire. Returns the number of lots expired.
    """
    moment = timezone.now() if now is None else now
    lots = list(
        CreditLot.objects.select_for_update()
        .filter(remaining__gt=0, expires_at__lte=moment)
        .filter(remaining__gt=F("held"))
        .order_by(*_SPEND_ORDER)
    )
    if not lots:
        return 0
    earlier = dict(
        LedgerEntryLot.objects.filter(lot__in=lots, entry__kind=LedgerEntry.Kind.EXPIRY)
        .values_list("lot_id")
        .annotate(n=Count("id"))
    )
    entries = LedgerEntry.objects.bulk_create(
        LedgerEntry(
            user_id=lot.user_id,
            kind=LedgerEntry.Kind.EXPIRY,
            amount=lot.held - lot.remaining,
            key=f"expiry:{lot.pk}:{earlier.get(lot.pk, 0) + 1}",
            description="Credits expired",
        )
        for lot in lots
    )
    LedgerEntryLot.objects.bulk_create(
        LedgerEntryLot(entry=entry, lot=lot, amount=lot.held - lot.remaining)
        for entry, lot in zip(entries, lots, strict=True)
    )
    CreditLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=F("held"))
    logger.info("credits expired", extra={"lots": len(lots), "at": moment.isoformat()})
    return len(lots)


def balance(user: CustomUser, *, at: datetime | None = None) -> Balance:
    """Return ``user``'s live credits at ``at`` (default: now).

    ``at`` moves only the expiry cut-off: the lots' current ``remaining`` and
    ``held`` are summed over the lots still live at that moment.
    """
    moment = timezone.now() if at is None else at
    with connection.cursor() as cursor:
        cursor.execute(_BALANCE_SQL, [*_PLAN_SOURCES, user.pk, moment])
        subscription, total, reserved = cursor.fetchone()
    return Balance(
        subscription=subscription,
        pay_as_you_go=total - subscription,
        total=total,
        reserved=reserved,
        available=total - reserved,
    )


# --------------------------------------------------------------------------- holds


def round_up_cost(value: Decimal | int) -> Decimal:
    """Return ``value`` rounded up to the next 0.01 credit (a cost is never rounded down).

    Per-token prices give sub-cent costs; the user is charged whole cents,
    never less than the call cost. Refuses what ``InvalidAmount`` describes
    (floats, negative, not finite, above ``MAX_AMOUNT``); 0 stays 0.
    """
    number = _number(value)
    if number < 0:
        raise InvalidAmount(f"A cost cannot be negative, got {number}.")
    return number.quantize(CENT, rounding=ROUND_CEILING)


def hold(
    user: CustomUser,
    amount: Decimal | int,
    *,
    key: str,
    description: str = "",
    expires_at: datetime,
) -> CreditHold:
    """Reserve ``amount`` of ``user``'s available credits until the call's price is known.

    ``amount`` is rounded up to 0.01 and must then be above 0. Credits are
    reserved from live lots in spending order, with the locks and order
    ``consume`` uses; they stay in the balance's ``total`` and leave its
    ``available``. Raises ``InsufficientCredits`` and changes nothing when the
    available balance cannot cover it. The same key twice reserves once and
    returns the first hold (in whatever state it is now); a key already used by
    another user's hold or by a ledger entry raises ``ReferenceConflict``.
    ``expires_at`` (in the future) is when ``release_expired_holds`` may free
    the credits of a hold nobody settled, so a crashed process never keeps them.

    One self-committing call of ``credits_hold``, like ``consume``.
    """
    value = round_up_cost(amount)
    if value == 0:
        raise InvalidAmount("A hold must reserve more than 0 credits; skip it for free calls.")
    key = _reference(key)
    now = timezone.now()
    if timezone.is_naive(expires_at) or expires_at <= now:
        raise InvalidHoldExpiry(
            f"A hold's expires_at must be an aware datetime in the future, got {expires_at!r}."
        )
    with connection.cursor() as cursor:
        cursor.execute(_HOLD_SQL, [user.pk, value, now, key, description, expires_at])
        status, hold_id, available, lot_ids, lot_amounts = cursor.fetchone()
    if status == "insufficient":
        raise InsufficientCredits(required=value, available=available)
    if status == "conflict":
        raise ReferenceConflict(
            f"Key {key!r} is already used by another account's hold or by a ledger entry; "
            "use a new key."
        )
    if status == "exists":
        return CreditHold.objects.get(key=key)
    # A hold is an estimate (often several times the real cost): it may warn of a low
    # balance, but tells no listener (auto top-up) it was spent; its settle does.
    _notify_if_low(user.pk, before=available, after=available - value, spent=False)
    return CreditHold.from_db(
        connection.alias,
        _HOLD_FIELDS,
        [
            hold_id,
            key,
            user.pk,
            value,
            CreditHold.State.OPEN,
            description,
            expires_at,
            now,
            None,
            lot_ids,
            lot_amounts,
        ],
    )


def settle(key: str, *, amount: Decimal | int, description: str = "") -> LedgerEntry | None:
    """Charge the held call ``key`` what it really cost, and free the rest of its hold.

    ``amount`` is rounded up to 0.01. It is taken first from what the hold
    reserved; above that, the excess is taken from available credits like
    ``consume``, and what is not there is recorded as the entry's ``shortfall``
    for staff (the balance never goes below zero). Writes one consume entry
    whose key is ``key`` (so ``reverse(key)`` refunds the call) and returns it;
    ``description`` defaults to the hold's. ``amount`` 0 is a release: nothing
    is charged and None is returned.

    Idempotent: a settled hold returns its entry whatever ``amount`` is asked
    now. A hold released or expired before it was settled raises
    ``HoldReleased`` for an amount above 0 (nothing is charged: its credits may
    be spent already) and returns None for 0. An unknown key raises
    ``UnknownHold``; a key a consume took meanwhile raises ``ReferenceConflict``
    and leaves the hold open (release it).
    """
    value = round_up_cost(amount)
    key = _reference(key)
    now = timezone.now()
    result = _close_hold(key, value, now=now, description=description, close_as="released")
    status = result["out_status"]
    if status == "conflict":
        raise ReferenceConflict(
            f"Key {key!r} of an open hold was used by another ledger entry; the hold stays "
            "open: release it, and never reuse a hold's key as a reference."
        )
    if status == CreditHold.State.SETTLED:
        if not result["out_closed"]:
            return LedgerEntry.objects.get(key=key)
        taken: Decimal = result["out_taken"]
        shortfall: Decimal = result["out_shortfall"]
        user_id: int = result["out_user"]
        if shortfall > 0:  # staff see it on the entry; a charge in full is not logged, as consume
            logger.warning(
                "hold settled short",
                extra={
                    "user_id": user_id,
                    "key": key,
                    "charged": str(taken),
                    "shortfall": str(shortfall),
                },
            )
        if result["out_available"] is not None:  # only an excess lowers what is available
            _notify_if_low(
                user_id, before=result["out_available_before"], after=result["out_available"]
            )
        elif taken > 0:  # credits were spent: listeners learn it, without an available figure
            _notify_spent(user_id, available=None)
        return LedgerEntry.from_db(
            connection.alias,
            _ENTRY_FIELDS,
            [
                result["out_entry_id"],
                user_id,
                LedgerEntry.Kind.CONSUME,
                -taken,
                shortfall,
                key,
                None,
                None,
                result["out_description"],
                "",
                now,
            ],
        )
    if value > 0:
        raise HoldReleased(key, status)
    if result["out_closed"]:
        logger.info("hold released", extra={"user_id": result["out_user"], "key": key})
    return None


def release(key: str) -> None:
    """Free the hold ``key`` without charging anything.

    Idempotent: a hold already released or expired stays so. A settled hold
    stays settled (its call was charged: ``reverse(key)`` refunds it). An
    unknown key raises ``UnknownHold``.
    """
    key = _reference(key)
    result = _close_hold(key, ZERO, now=timezone.now(), description="", close_as="released")
    if result["out_closed"]:
        logger.info("hold released", extra={"user_id": result["out_user"], "key": key})


def release_expired_holds(*, now: datetime | None = None) -> int:
    """Release every open hold whose ``expires_at`` is not after ``now`` (the periodic sweep).

    Each hold is closed as ``expired`` in its own call of ``credits_settle``
    (call this outside a transaction, so each commits alone and holds its lots'
    locks only briefly); a hold settled or released meanwhile is left as it is.
    Returns the number of holds this run expired.
    """
    moment = timezone.now() if now is None else now
    keys = list(
        CreditHold.objects.filter(state=CreditHold.State.OPEN, expires_at__lte=moment)
        .order_by("expires_at", "id")
        .values_list("key", flat=True)
    )
    expired = 0
    for key in keys:
        result = _close_hold(key, ZERO, now=moment, description="", close_as="expired")
        expired += bool(result["out_closed"])
    if expired:
        logger.info("holds expired", extra={"holds": expired, "at": moment.isoformat()})
    return expired


# --------------------------------------------------------------------------- validation


def _number(value: object) -> Decimal:
    """Return ``value`` as a finite Decimal within ``MAX_AMOUNT``, or raise ``InvalidAmount``."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidAmount(
            f"Credit amounts must be Decimal or int, not {type(value).__name__}; "
            "write Decimal('1.50'), never a float."
        )
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidAmount(f"Credit amount {number} is not a finite number.")
    if abs(number) > MAX_AMOUNT:
        raise InvalidAmount(f"Credit amount {number} is above the limit of {MAX_AMOUNT}.")
    return number


def _amount(value: object, *, signed: bool = False) -> Decimal:
    """Return ``value`` as a 2-place Decimal, or raise ``InvalidAmount``."""
    number = _number(value)
    try:
        exact = number.quantize(CENT)
    except InvalidOperation as error:  # pragma: no cover - bounded above, kept for safety
        raise InvalidAmount(f"Credit amount {number} cannot be represented.") from error
    if exact != number:
        raise InvalidAmount(f"Credit amount {number} has more than 2 decimal places.")
    if exact == 0 or (exact < 0 and not signed):
        raise InvalidAmount(
            f"Credit amount must be {'non-zero' if signed else 'positive'}, got {number}; "
            "skip the ledger for free things."
        )
    return exact


def _positive_amount(value: object) -> Decimal:
    return _amount(value, signed=False)


def _reference(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidReference("A credit reference must be a non-empty string.")
    if len(value) > MAX_REFERENCE_LENGTH:
        raise InvalidReference(
            f"A credit reference must be at most {MAX_REFERENCE_LENGTH} characters."
        )
    if value.startswith(_RESERVED_PREFIXES):
        raise InvalidReference(f"References starting with {value.split(':')[0]}: are reserved.")
    return value


def _reason(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MissingReason("Say why: reversals and adjustments need a reason for staff.")
    return value.strip()


def _source(value: str) -> CreditLot.Source:
    try:
        return CreditLot.Source(value)
    except ValueError:
        choices = ", ".join(CreditLot.Source.values)
        raise InvalidSource(f"Unknown credit source {value!r}; use one of {choices}.") from None


# Credits that come with a plan (its periods and its trial): spent first, counted as
# the balance's ``subscription`` part. Only SUBSCRIPTION lots are ever converted to
# pay-as-you-go on a plan change; a trial's credits end with the trial.
_PLAN_SOURCES = (CreditLot.Source.SUBSCRIPTION.value, CreditLot.Source.TRIAL.value)


def _priority(source: CreditLot.Source) -> CreditLot.Priority:
    if source.value in _PLAN_SOURCES:
        return CreditLot.Priority.SUBSCRIPTION
    return CreditLot.Priority.PAY_AS_YOU_GO


# --------------------------------------------------------------------------- idempotency


def _replayed(key: str, *, user: CustomUser, kind: str) -> LedgerEntry | None:
    """Return the entry already written under ``key`` for this operation, if any."""
    first = LedgerEntry.objects.filter(key=key).first()
    if first is None:
        return None
    if first.user_id != user.pk or first.kind != kind:
        raise ReferenceConflict(
            f"Reference {key!r} was already used for a {first.get_kind_display().lower()} "
            "of another kind or account; use a new reference."
        )
    return first


def _replayed_after_conflict(key: str, *, user: CustomUser, kind: str) -> LedgerEntry:
    """Answer an ``IntegrityError`` from a concurrent identical call with its first result."""
    first = _replayed(key, user=user, kind=kind)
    if first is None:
        # The unique lot reference is held by an operation with no entry under this key.
        raise ReferenceConflict(f"Reference {key!r} is already used by another credit lot.")
    return first


# --------------------------------------------------------------------------- lot movements


def _spend(
    user: CustomUser,
    amount: Decimal,
    *,
    now: datetime,
    key: str,
    kind: str,
    description: str = "",
    reason: str = "",
    actor_id: int | None = None,
    allow_shortfall: bool = False,
) -> tuple[int | None, Decimal]:
    """Take ``amount`` from ``user``'s live lots in spending order, in the database.

    Returns (the new entry's id, or None when nothing was written; the live
    balance before the call). Nothing is written when ``key`` exists, or when
    the balance is short and ``allow_shortfall`` is false.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _CONSUME_SQL,
            [user.pk, amount, now, key, kind, description, reason, actor_id, allow_shortfall],
        )
        entry_id, available = cursor.fetchone()
    return entry_id, available


def _adjust_up(
    user: CustomUser, value: Decimal, *, reference: str, reason: str, actor: CustomUser
) -> LedgerEntry:
    """Grant ``value`` as an adjustment lot (pay-as-you-go, never expires)."""
    kind = LedgerEntry.Kind.ADJUSTMENT
    if (first := _replayed(reference, user=user, kind=kind)) is not None:
        return first
    try:
        with transaction.atomic():
            lot = CreditLot.objects.create(
                user=user,
                source=CreditLot.Source.ADJUSTMENT,
                priority=CreditLot.Priority.PAY_AS_YOU_GO,
                amount=value,
                remaining=value,
                reference=reference,
                description="Balance adjustment",
            )
            entry = LedgerEntry.objects.create(
                user=user,
                kind=kind,
                amount=value,
                key=reference,
                actor=actor,
                reason=reason,
                description="Balance adjustment",
            )
            LedgerEntryLot.objects.create(entry=entry, lot=lot, amount=value)
    except IntegrityError:
        return _replayed_after_conflict(reference, user=user, kind=kind)
    return entry


def _adjust_down(
    user: CustomUser, value: Decimal, *, reference: str, reason: str, actor: CustomUser
) -> LedgerEntry:
    """Take up to ``value`` in spending order; what is not there becomes the shortfall."""
    kind = LedgerEntry.Kind.ADJUSTMENT
    entry_id, _ = _spend(
        user,
        value,
        now=timezone.now(),
        key=reference,
        kind=kind,
        description="Balance adjustment",
        reason=reason,
        actor_id=actor.pk,
        allow_shortfall=True,
    )
    if entry_id is None:
        return _replayed_after_conflict(reference, user=user, kind=kind)
    return LedgerEntry.objects.get(pk=entry_id)


def _close_hold(
    key: str, amount: Decimal, *, now: datetime, description: str, close_as: str
) -> dict[str, Any]:
    """Call ``credits_settle`` once; raise ``UnknownHold`` when no hold has ``key``."""
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL, [key, amount, now, description, close_as])
        result = dict(zip(_SETTLE_COLUMNS, cursor.fetchone(), strict=True))
    if result["out_status"] == "unknown":
        raise UnknownHold(f"No credit hold was made with key {key!r}.")
    return result


def _lock_live_lots(user: CustomUser, moment: datetime, *, source: str) -> list[CreditLot]:
    """Lock and return ``user``'s live lots of ``source`` in spending order."""
    lots = CreditLot.objects.filter(user=user, source=source).live(moment)
    return list(lots.select_for_update().order_by(*_SPEND_ORDER))


def _already_reversed(original: LedgerEntry) -> Decimal:
    """Return how much of ``original`` earlier reversals covered (taken plus shortfall)."""
    totals = original.reversals.aggregate(moved=Sum("amount"), short=Sum("shortfall"))
    moved: Decimal = totals["moved"] or ZERO
    short: Decimal = totals["short"] or ZERO
    return abs(moved) + short


def _locked(lot_ids: Iterable[int]) -> dict[int, CreditLot]:
    lots = (
        CreditLot.objects.select_for_update().filter(pk__in=list(lot_ids)).order_by(*_SPEND_ORDER)
    )
    return {lot.pk: lot for lot in lots}


def _return_to_lots(
    original: LedgerEntry, amount: Decimal, *, key: str, reason: str, actor: CustomUser | None
) -> LedgerEntry:
    """Give ``amount`` of a consume back to the lots it came from, last taken first.

    A lot that has expired since gets its credits back too, and they expire
    with it (``expire()`` writes the entry): a refund does not extend a lot's life.
    """
    taken = dict(original.lot_rows.order_by("id").values_list("lot_id", "amount"))
    returned = dict(
        LedgerEntryLot.objects.filter(entry__reverses=original)
        .values_list("lot_id")
        .annotate(total=Sum("amount"))
    )
    lots = _locked(taken)
    entry = LedgerEntry.objects.create(
        user_id=original.user_id,
        kind=LedgerEntry.Kind.REVERSAL,
        amount=amount,
        key=key,
        reverses=original,
        actor=actor,
        reason=reason,
        description=f"Refund: {original.stored_label}",
    )
    left = amount
    rows = []
    for lot_id in reversed(list(taken)):
        part = min(-taken[lot_id] - returned.get(lot_id, ZERO), left)
        if part <= 0:
            continue
        lot = lots[lot_id]
        lot.remaining += part
        lot.save(update_fields=["remaining"])
        rows.append(LedgerEntryLot(entry=entry, lot=lot, amount=part))
        left -= part
        if left <= 0:
            break
    LedgerEntryLot.objects.bulk_create(rows)
    return entry


def _take_back_grant(
    original: LedgerEntry, amount: Decimal, *, key: str, reason: str, actor: CustomUser | None
) -> LedgerEntry:
    """Take up to ``amount`` back from a grant's lot; record what was spent or is held.

    Credits open holds reserve are not taken: the calls they cover may still be
    charged. They count in the shortfall, like credits already spent.
    """
    lot_id = original.lot_rows.values_list("lot_id", flat=True).get()
    lot = _locked([lot_id])[lot_id]
    part = min(amount, lot.remaining - lot.held)
    entry = LedgerEntry.objects.create(
        user_id=original.user_id,
        kind=LedgerEntry.Kind.REVERSAL,
        amount=-part,
        shortfall=amount - part,
        key=key,
        reverses=original,
        actor=actor,
        reason=reason,
        description=f"Reversal: {original.stored_label}",
    )
    if part > 0:
        lot.remaining -= part
        lot.save(update_fields=["remaining"])
        LedgerEntryLot.objects.create(entry=entry, lot=lot, amount=-part)
    return entry


# --------------------------------------------------------------------------- notifications


def _notify_if_low(user_id: int, *, before: Decimal, after: Decimal, spent: bool = True) -> None:
    """After commit, email the user when this call took ``available`` across the threshold.

    ``LOW_CREDIT_THRESHOLD`` is compared with the available balance (what holds
    do not reserve), which a consume and a hold lower, and a settle only when it
    takes more than was held (else it frees the rest). A call that ``spent``
    credits (not a hold) also tells the listeners of
    ``credits.signals.available_lowered`` after the commit.
    """
    threshold = Decimal(str(getattr(settings, "LOW_CREDIT_THRESHOLD", 0) or 0))
    if threshold > 0 and before > threshold >= after:

        def send_after_commit() -> None:
            send_low_balance_email(user_id, after)

        transaction.on_commit(send_after_commit, robust=True)
    if spent:
        _notify_spent(user_id, available=after)


def _notify_spent(user_id: int, *, available: Decimal | None) -> None:
    """Tell ``available_lowered``'s listeners, after the commit, that credits were spent."""
    if available_lowered.receivers:
        # Listeners (auto top-up) run after the commit and can neither fail nor slow
        # the spend's own transaction; robust: an error is logged, never raised.
        transaction.on_commit(
            partial(available_lowered.send, sender=CreditLot, user_id=user_id, available=available),
            robust=True,
        )
