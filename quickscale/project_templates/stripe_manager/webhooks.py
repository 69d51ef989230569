"""Webhook processing: dedupe, one transaction per event, one handler per type.

Rules:
- An event's effect and its ``ProcessedStripeEvent`` row commit together, so
  a redelivered event finds the row and changes nothing.
- The webhook view only verifies and stores an event; a worker applies it
  here (``stripe_manager.webhook_queue``), after the 200 went to Stripe.
- Events about things we do not know: a customer that is not ours raises
  ``NotOurs``; the event is rolled back, logged and stored as processed
  (nothing to do, ever). A customer of ours whose payment is not recorded yet
  (a refund before its payment, an invoice before its price) raises
  ``MissingPrerequisite``: the attempt rolls back and the worker retries it
  later with backoff, as Stripe retried a 500 when events were applied inline.
- Payloads carry only what Stripe sends: never an includable list such as
  ``invoice.payments`` or ``charge.refunds``. Refunds come from
  ``refund.created``/``refund.updated``, a plan payment's intent from
  ``invoice_payment.paid`` (or, when that has not come, the gateway's list).
- Stale events never undo newer state: subscription events older than the
  last one applied are ignored, and a canceled subscription stays canceled.
- Credits are granted here only: purchases keyed by the Checkout Session id,
  subscription periods keyed by the invoice id, automatic top-ups
  (``stripe_manager.auto_top_up``) keyed by their PaymentIntent id.
- Emails are queued in the event's transaction (``stripe_manager.emails``): a
  worker sends them after the commit, never the webhook request itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from credits import ledger
from stripe_manager import auto_top_up, emails, selectors, trials
from stripe_manager.catalog import catalog_sync
from stripe_manager.exceptions import MissingPrerequisite, NotOurs
from stripe_manager.models import (
    Payment,
    ProcessedStripeEvent,
    ReceivedStripeEvent,
    StripeCustomer,
    StripeProduct,
    UserSubscription,
    WebhookFailure,
)
from stripe_manager.money import from_minor
from stripe_manager.refunds import plan_payment_for_intent, refund_apply
from users.models import CustomUser

logger = logging.getLogger(__name__)

# The first key of the advisory locks that serialize one customer's events (``_claim``);
# the second is the customer id's hash. Any constant no other lock in the project uses.
CUSTOMER_LOCK = 0x5153_5745  # "QSWE"
# True during the first attempt at an event: payments are inserted without a lookup.
_first_attempt: ContextVar[bool] = ContextVar("stripe_event_first_attempt", default=False)
Obj = dict[str, Any]
Handler = Callable[[Obj, Obj], None]


def process_event(event: Obj) -> bool:
    """Apply one verified event once, by its id. Returns False for an event already processed.

    Raises whatever the handler raised; nothing of the event is stored then.
    For the simulator, which applies what it just delivered in process; the
    worker applies stored events through :func:`apply_due`.

    The first attempt records a payment by inserting it without looking for it
    (``_first_attempt``): one statement where a lookup and a savepoint took four.
    When another event recorded that payment already (``completed`` and
    ``async_payment_succeeded`` of one session; an invoice that failed, then was
    paid), the insert breaks its unique constraint, the attempt rolls back whole
    and the event is applied again, this time finding the row.
    """
    token = _first_attempt.set(True)
    try:
        return _apply(event)
    except IntegrityError:
        _log_applied_again(event["id"], event["type"])
        _first_attempt.set(False)
        return _apply(event)
    finally:
        _first_attempt.reset(token)


def _apply(event: Obj) -> bool:
    event_id, event_type = str(event["id"]), str(event["type"])
    try:
        with transaction.atomic():
            if not _claim(event_id, event_type, customer_of(event["data"]["object"])):
                logger.info("duplicate event ignored", extra={"event_id": event_id})
                return False
            _dispatch(event)
    except NotOurs as error:
        # Rolled back whole, so nothing of it is kept; stored as processed, so a
        # redelivery is a duplicate rather than a second log line.
        _log_not_ours(event_id, event_type, error)
        with transaction.atomic():
            return _claim(event_id, event_type)
    return True


@dataclass(frozen=True)
class DueEvent:
    """A stored event (``ReceivedStripeEvent``) taken by the applying transaction."""

    event_id: str
    event_type: str
    payload: str
    # Attempts that ended in a failure before this one.
    failures: int


class AttemptFailed(Exception):
    """Applying ``due`` raised ``error``; everything of the attempt was rolled back."""

    def __init__(self, due: DueEvent, error: Exception) -> None:
        super().__init__(f"{due.event_type} {due.event_id}: {type(error).__name__}: {error}")
        self.due = due
        self.error = error


def apply_due(event_id: str = "", *, hold_limit: timedelta) -> str | None:
    """Take the oldest due stored event (or ``event_id``, when due) and apply it in one
    transaction: "applied", "duplicate" (processed before), or None when none is due.

    Raises :class:`AttemptFailed` when applying it failed (rolled back whole;
    the caller counts the failure and sets the next attempt).

    The event's row is taken by the claim itself (:func:`_claim_due`, ``FOR
    UPDATE SKIP LOCKED``) and stays locked until the transaction ends: other
    workers pass it by, and a worker that dies lets it go with its connection,
    due at once for the next. A worker that hangs instead is cut off by the
    server after ``hold_limit`` idle in its transaction
    (``idle_in_transaction_session_timeout``, set for this transaction only).
    """
    token = _first_attempt.set(True)
    try:
        try:
            return _apply_due(event_id, hold_limit)
        except AttemptFailed as failed:
            if isinstance(failed.error, IntegrityError):
                _log_applied_again(failed.due.event_id, failed.due.event_type)
                _first_attempt.set(False)
            elif isinstance(failed.error, NotOurs):
                _log_not_ours(failed.due.event_id, failed.due.event_type, failed.error)
            else:
                raise
            # Taken again by its id: None when another worker took it meanwhile (its to apply).
            outcome = _apply_due(
                failed.due.event_id, hold_limit, handle=not isinstance(failed.error, NotOurs)
            )
            return outcome or "duplicate"
    finally:
        _first_attempt.reset(token)


def _apply_due(event_id: str, hold_limit: timedelta, *, handle: bool = True) -> str | None:
    due: DueEvent | None = None
    try:
        with transaction.atomic():
            taken = _claim_due(event_id, hold_limit)
            if taken is None:
                return None
            due, claimed = taken
            if not claimed:
                logger.info("duplicate event ignored", extra={"event_id": due.event_id})
                return "duplicate"
            if handle:
                _dispatch(json.loads(due.payload))  # verified and bounded when received
    except Exception as error:
        if due is None:
            raise  # the claim itself failed (the database): nothing was taken
        raise AttemptFailed(due, error) from error
    return "applied"


def _dispatch(event: Obj) -> None:
    handler = handler_for(str(event["type"]))
    if handler is None:
        logger.info("event type not handled", extra={"event_type": event["type"]})
    else:
        handler(event["data"]["object"], event)


def _log_applied_again(event_id: str, event_type: str) -> None:
    logger.info(
        "event applied again: its payment was recorded by another event",
        extra={"event_id": event_id, "event_type": event_type},
    )


def _log_not_ours(event_id: str, event_type: str, error: NotOurs) -> None:
    logger.info(
        "event for a customer not ours ignored",
        extra={"event_id": event_id, "event_type": event_type, "reason": str(error)},
    )


# The claim, over the event named by the statement's first CTE, ``ev`` (event_id,
# event_type, customer_id): its ``ProcessedStripeEvent`` row inserted unless one exists
# (``claimed``), its open ``WebhookFailure`` resolved and its ``ReceivedStripeEvent`` marked
# processed, payload dropped (``done``), whoever wins. The outer query takes the customer's
# advisory lock only once the claim is won.
_CLAIM_CTES = """
    claimed AS (
        INSERT INTO {events} (event_id, event_type, processed_at)
        SELECT event_id, event_type, %(now)s FROM ev
        ON CONFLICT (event_id) DO NOTHING
        RETURNING id
    ), resolved AS (
        UPDATE {failures} SET resolved_at = %(now)s
        WHERE event_id = (SELECT event_id FROM ev) AND resolved_at IS NULL
          AND EXISTS (SELECT 1 FROM claimed)
    ), done AS (
        UPDATE {received} SET state = %(processed)s, processed_at = %(now)s, payload = '',
                              attempts = attempts + %(counted)s
        WHERE event_id = (SELECT event_id FROM ev) AND state <> %(processed)s
    )
"""
_CLAIM_WON = """
    (SELECT count(*) FROM claimed, LATERAL (
        SELECT CASE WHEN ev.customer_id = '' THEN NULL
                    ELSE pg_advisory_xact_lock(%(lock)s, hashtext(ev.customer_id)) END
    ) AS serial)
"""


def _claim_sql(first_cte: str, columns: str) -> str:
    return (
        "WITH " + first_cte + "," + _CLAIM_CTES + f"SELECT {columns}, {_CLAIM_WON} AS won FROM ev"
    ).format(
        events=connection.ops.quote_name(ProcessedStripeEvent._meta.db_table),
        failures=connection.ops.quote_name(WebhookFailure._meta.db_table),
        received=connection.ops.quote_name(ReceivedStripeEvent._meta.db_table),
    )


def _claim_params(**params: Any) -> dict[str, Any]:
    return {
        "now": timezone.now(),
        "processed": ReceivedStripeEvent.State.PROCESSED,
        "lock": CUSTOMER_LOCK,
        **params,
    }


def _claim(event_id: str, event_type: str, customer_id: str = "") -> bool:
    """Claim the event ``event_id`` in the caller's transaction; False when it was claimed
    before (processed, or being processed by a concurrent delivery, whose commit this waits
    for).

    SQL on purpose: one statement where the ORM needs four (a savepoint, an
    insert that may fail, the savepoint's release, the update), since only that
    failure tells it whether this delivery won the claim. Every write belongs to
    the caller's transaction, so it commits only together with the event's effect.

    A claimed event about a customer also takes a transaction-level advisory
    lock on that customer (``CUSTOMER_LOCK``), so one customer's events apply
    one at a time: each reads what the one before committed (two plan invoices
    of one subscription arriving together still agree on which plan is newest).
    Events of different customers never wait for each other.
    """
    received = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    # The stored row first, waiting for a worker applying it: locks in the worker's
    # order (row, claim, customer), or the two could deadlock. ``ev`` counts ``held``,
    # so the row is locked before the claim's insert gets its row.
    sql = _claim_sql(
        f"""held AS MATERIALIZED (
            SELECT id FROM {received} WHERE event_id = %(event_id)s FOR UPDATE
        ), ev AS MATERIALIZED (
            SELECT %(event_id)s::text AS event_id, %(event_type)s::text AS event_type,
                   %(customer_id)s::text AS customer_id
            FROM (SELECT count(*) FROM held) AS stored
        )""",
        "ev.event_id",
    )
    params = _claim_params(
        event_id=event_id, event_type=event_type, customer_id=customer_id, counted=0
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bool(row and row[1])


def _claim_due(event_id: str, hold_limit: timedelta) -> tuple[DueEvent, bool] | None:
    """Take the oldest due stored event (or ``event_id``, when due) and claim it, in one
    statement in the caller's transaction; the event and whether the claim was won.

    As :func:`_claim`, with the event taken from its ``ReceivedStripeEvent`` row
    (pending and due, locked ``SKIP LOCKED``), whose attempt is counted as it is
    marked processed. A purchase or a plan renewal takes 8 statements in all,
    the request's included (``bench/webhooks.py``).
    """
    received = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    only = "AND event_id = %(event_id)s" if event_id else ""
    sql = _claim_sql(
        f"""ev AS MATERIALIZED (
            SELECT event_id, event_type, customer_id, payload, attempts FROM {received}
            WHERE state = %(pending)s AND next_attempt_at <= %(now)s {only}
            ORDER BY next_attempt_at, id LIMIT 1
            FOR UPDATE SKIP LOCKED
        )""",
        "ev.event_id, ev.event_type, ev.payload, ev.attempts, "
        "set_config('idle_in_transaction_session_timeout', %(hold_ms)s, true)",
    )
    params = _claim_params(
        event_id=event_id,
        pending=ReceivedStripeEvent.State.PENDING,
        hold_ms=str(int(hold_limit.total_seconds() * 1000)),
        counted=1,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    due = DueEvent(str(row[0]), str(row[1]), str(row[2]), failures=int(row[3]))
    return due, bool(row[5])


def record_failure(event_id: str, event_type: str, error: BaseException) -> None:
    """Count a failed attempt in its own transaction (the attempt was rolled back)."""
    message = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        updated = WebhookFailure.objects.filter(event_id=event_id).update(
            attempts=F("attempts") + 1,
            error=message,
            last_failed_at=timezone.now(),
            resolved_at=None,
        )
        if not updated:
            WebhookFailure.objects.create(event_id=event_id, event_type=event_type, error=message)


def handler_for(event_type: str) -> Handler | None:
    if event_type.startswith(("product.", "price.")):
        return _catalog_changed
    return HANDLERS.get(event_type)


# --------------------------------------------------------------------------- helpers


def customer_of(obj: Obj) -> str:
    """The Stripe customer an event's object belongs to ("" when it names none)."""
    if obj.get("object") == "customer":
        return str(obj.get("id") or "")
    return _id(obj.get("customer"))


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _id(value: Any) -> str:
    """An expandable field: either an id or an object with one."""
    if isinstance(value, dict):
        return str(value.get("id", ""))
    return str(value or "")


def _user_for_customer(customer: Any) -> CustomUser:
    """The user of a Stripe customer; ``NotOurs`` for a customer we never created.

    Our customer row commits before any checkout can start (``services``), so an
    event naming a customer we do not have is about someone else's customer:
    retrying would never find it.
    """
    customer_id = _id(customer)
    row = StripeCustomer.objects.select_related("user").filter(stripe_customer_id=customer_id)
    found = row.first() if customer_id else None
    if found is None:
        raise NotOurs(f"Stripe customer {customer_id!r} is not one of ours.")
    return found.user


def _event_context(
    customer: Any, *, price_id: str = "", subscription_id: str = ""
) -> selectors.EventContext:
    """``selectors.event_context`` for the event's customer; ``NotOurs`` when it is not ours."""
    customer_id = _id(customer)
    context = selectors.event_context(
        customer_id, price_id=price_id, subscription_id=subscription_id
    )
    if context is None:
        raise NotOurs(f"Stripe customer {customer_id!r} is not one of ours.")
    return context


def _decimal(value: Any, default: Decimal) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default
    return result if result.is_finite() else default


# --------------------------------------------------------------------------- checkout


def _checkout_completed(session: Obj, event: Obj) -> None:
    if session.get("mode") != "payment":
        return  # subscriptions are settled by customer.subscription.* and invoice.paid
    if session.get("payment_status") == "paid":
        _fulfil_purchase(session)
    else:
        _purchase_payment(session, status=Payment.Status.PENDING)


def _async_payment_succeeded(session: Obj, event: Obj) -> None:
    if session.get("mode") == "payment":
        _fulfil_purchase(session)


def _async_payment_failed(session: Obj, event: Obj) -> None:
    if session.get("mode") != "payment":
        return
    payment, _ = _purchase_payment(session, status=Payment.Status.FAILED)
    if payment.status == Payment.Status.PENDING:
        payment.status = Payment.Status.FAILED
        payment.save(update_fields=["status"])


def _purchase_payment(session: Obj, *, status: str, **final: str) -> tuple[Payment, bool]:
    """The purchase's ``Payment`` (locked), created with ``status`` and ``final`` when new."""
    metadata = session.get("metadata") or {}
    price_id = str(metadata.get("price_id", ""))
    context = _event_context(session.get("customer"), price_id=price_id)
    product = context.product
    quantity = int(_decimal(metadata.get("quantity"), Decimal(1)))
    default_credits = product.credit_amount * quantity if product else Decimal(0)
    return _record_payment(
        {"stripe_checkout_session_id": session["id"]},
        {
            "user": context.user,
            "product": product,
            "kind": Payment.Kind.CREDIT_PURCHASE,
            "status": status,
            "amount": from_minor(
                int(session.get("amount_total") or 0), str(session.get("currency") or "usd")
            ),
            "currency": session.get("currency") or "usd",
            "quantity": quantity,
            "credits": _decimal(metadata.get("credits"), default_credits),
            "price_id": price_id,
            "description": f"{quantity} x {product.name}" if product else "Credit purchase",
            "stripe_payment_intent_id": _id(session.get("payment_intent")),
            "stripe_created": _ts(session.get("created")),
            **final,
        },
    )


def _record_payment(lookup: dict[str, str], fields: dict[str, Any]) -> tuple[Payment, bool]:
    """The ``Payment`` of ``lookup`` (locked), created with ``fields`` when new.

    The first attempt at an event inserts it outright (see ``process_event``).
    """
    if _first_attempt.get():
        return Payment.objects.create(**lookup, **fields), True
    return Payment.objects.select_for_update().get_or_create(**lookup, defaults=fields)


def _fulfil_purchase(session: Obj) -> None:
    # A new row is written paid at once (the grant below is in the same transaction).
    payment, created = _purchase_payment(
        session, status=Payment.Status.SUCCEEDED, credit_reference=session["id"]
    )
    if not created:
        if payment.credit_reference:
            return  # already granted (completed and async_payment_succeeded both came)
        payment.credit_reference = session["id"]
        payment.status = Payment.Status.SUCCEEDED
        payment.stripe_payment_intent_id = (
            _id(session.get("payment_intent")) or payment.stripe_payment_intent_id
        )
        payment.save(update_fields=["credit_reference", "status", "stripe_payment_intent_id"])
    if payment.credits > 0:
        ledger.grant(
            payment.user,
            payment.credits,
            source="purchase",
            reference=session["id"],
            description=f"Bought {payment.description}",
        )
    emails.queue_receipt(payment.pk)


# --------------------------------------------------------------------------- invoices


def _invoice_subscription(invoice: Obj) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription"))


def _plan_line(invoice: Obj) -> Obj | None:
    """The line of the plan being paid for: the last priced line with a positive amount."""
    priced = [
        line
        for line in (invoice.get("lines") or {}).get("data", [])
        if ((line.get("pricing") or {}).get("price_details") or {}).get("price")
    ]
    positive = [line for line in priced if int(line.get("amount") or 0) > 0]
    chosen = positive or priced
    return chosen[-1] if chosen else None


def _is_trial_invoice(invoice: Obj, line: Obj, product: StripeProduct) -> bool:
    """A paid plan's price billed at $0 on a $0 line: the invoice of its free trial.

    Stripe bills a trial (at its start, or a plan change during it) with the
    plan's own price on a $0 line. A $0 plan's invoices look the same but for
    the price, and grant its credits each period like any plan; a coupon keeps
    the line's amount and only lowers ``amount_paid``, so it grants too.
    """
    free = not int(invoice.get("amount_paid") or 0) and not int(line.get("amount") or 0)
    return free and product.price > 0


def _invoice_paid(invoice: Obj, event: Obj) -> None:
    subscription_id = _invoice_subscription(invoice)
    if not subscription_id:
        return  # a one-off invoice: nothing to grant
    line = _plan_line(invoice)
    if line is None:
        _event_context(invoice.get("customer"))  # NotOurs first, as for every event
        logger.warning("paid invoice without a priced line", extra={"invoice": invoice["id"]})
        return
    price_id = _id(line["pricing"]["price_details"]["price"])
    context = _event_context(
        invoice.get("customer"), price_id=price_id, subscription_id=subscription_id
    )
    user, product = context.user, context.product
    if product is None:
        raise MissingPrerequisite(f"Unknown price {price_id!r}; run sync_stripe_products.")
    if _is_trial_invoice(invoice, line, product):
        return  # the trial's credits came with its subscription (trials)
    period_start, period_end = _ts(line["period"]["start"]), _ts(line["period"]["end"])
    settled = {
        "product": product,
        "status": Payment.Status.SUCCEEDED,
        "amount": from_minor(
            int(invoice.get("amount_paid") or 0), str(invoice.get("currency") or "usd")
        ),
        "credits": product.credit_amount,
        "credit_reference": invoice["id"],
        "price_id": price_id,
        "description": f"{product.name} ({period_start:%Y-%m-%d} to {period_end:%Y-%m-%d})"
        if period_start and period_end
        else product.name,
        "period_start": period_start,
        "period_end": period_end,
    }
    payment, created = _record_payment(
        {"stripe_invoice_id": invoice["id"]},
        {
            "user": user,
            "kind": Payment.Kind.SUBSCRIPTION,
            "currency": invoice.get("currency") or "usd",
            "stripe_subscription_id": subscription_id,
            "stripe_created": _ts(invoice.get("created")),
            **settled,
        },
    )
    if not created and payment.status in (Payment.Status.PENDING, Payment.Status.FAILED):
        # An earlier invoice.payment_failed recorded it; the retry succeeded. Its period
        # matters below: the newest paid period decides which plan's credits stay.
        Payment.objects.filter(pk=payment.pk).update(**settled)
    if product.credit_amount > 0:
        ledger.grant(
            user,
            product.credit_amount,
            source="subscription",
            reference=invoice["id"],
            expires_at=period_end,
            price_id=price_id,
            description=f"{product.name} plan credits",
        )
    # The plan in force is the newest paid invoice's; whatever the order events
    # arrive in, every other plan's live credits become pay-as-you-go. The usual
    # renewal (the newest paid period before this one was this plan's, or there
    # was none) keeps this plan's credits, so only other plans' live credits,
    # which the context says whether there are, need converting.
    if context.newest_plan_price in ("", price_id) and created:
        if context.other_plan_credits:
            ledger.convert_subscription_credits(
                user, reference=f"convert:{invoice['id']}", except_price_id=price_id
            )
    else:
        newest = (
            Payment.objects.filter(
                stripe_subscription_id=subscription_id,
                kind=Payment.Kind.SUBSCRIPTION,
                credit_reference__gt="",
            )
            .order_by(F("period_start").desc(nulls_last=True), "-stripe_created", "-id")
            .first()
        )
        ledger.convert_subscription_credits(
            user,
            reference=f"convert:{invoice['id']}",
            except_price_id=newest.price_id if newest else price_id,
        )
    emails.queue_receipt(payment.pk)


def _invoice_payment_failed(invoice: Obj, event: Obj) -> None:
    user = _user_for_customer(invoice.get("customer"))
    subscription_id = _invoice_subscription(invoice)
    if subscription_id:
        line = _plan_line(invoice)
        price_id = _id(line["pricing"]["price_details"]["price"]) if line else ""
        product = selectors.product_for_price(price_id)
        Payment.objects.get_or_create(
            stripe_invoice_id=invoice["id"],
            defaults={
                "user": user,
                "product": product,
                "kind": Payment.Kind.SUBSCRIPTION,
                "status": Payment.Status.FAILED,
                "amount": from_minor(
                    int(invoice.get("amount_due") or 0), str(invoice.get("currency") or "usd")
                ),
                "currency": invoice.get("currency") or "usd",
                "price_id": price_id,
                "description": f"{product.name} (payment failed)" if product else "Plan renewal",
                "stripe_subscription_id": subscription_id,
                "stripe_created": _ts(invoice.get("created")),
            },
        )
    currency = str(invoice.get("currency") or "usd")
    amount = from_minor(int(invoice.get("amount_due") or 0), currency)
    emails.queue_payment_failed(str(event["id"]), user.pk, amount, currency)


def _invoice_upcoming(invoice: Obj, event: Obj) -> None:
    user = _user_for_customer(invoice.get("customer"))
    currency = str(invoice.get("currency") or "usd")
    amount = from_minor(int(invoice.get("amount_due") or 0), currency)
    when = _ts(invoice.get("next_payment_attempt") or invoice.get("period_end"))
    emails.queue_upcoming_renewal(str(event["id"]), user.pk, amount, currency, when)


# --------------------------------------------------------------------------- subscriptions


def _subscription_changed(subscription: Obj, event: Obj) -> None:
    user = _user_for_customer(subscription.get("customer"))
    event_at = _ts(event.get("created")) or timezone.now()
    items = (subscription.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price_id = _id(item.get("price"))
    period_start = _ts(item.get("current_period_start"))
    status = str(subscription.get("status"))
    if event["type"] == "customer.subscription.deleted":
        status = UserSubscription.Status.CANCELED
    row = (
        UserSubscription.objects.select_for_update()
        .filter(stripe_subscription_id=subscription["id"])
        .first()
    )
    if row is not None and _is_stale(row, status=status, event_at=event_at, start=period_start):
        logger.info(
            "stale subscription event ignored",
            extra={"event_id": event["id"], "subscription": subscription["id"]},
        )
        return
    row = row or UserSubscription(user=user, stripe_subscription_id=subscription["id"])
    was_trialing, trial_ended_at = row.status == UserSubscription.Status.TRIALING, row.trial_end
    row.status = status
    row.price_id = price_id
    row.product = selectors.product_for_price(price_id)
    row.stripe_item_id = str(item.get("id", ""))
    row.current_period_start = period_start
    row.current_period_end = _ts(item.get("current_period_end"))
    row.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    if not subscription.get("schedule") or row.scheduled_price_id == price_id:
        row.scheduled_price_id = ""
    row.trial_end = _ts(subscription.get("trial_end"))
    row.last_event_at = event_at
    row.save()
    trials.trial_follow(row, user=user, was_trialing=was_trialing, trial_ended_at=trial_ended_at)


def _is_stale(
    row: UserSubscription, *, status: str, event_at: datetime, start: datetime | None
) -> bool:
    if row.status in UserSubscription.TERMINAL and status not in UserSubscription.TERMINAL:
        return True  # Stripe never reactivates a canceled subscription
    if row.last_event_at is None:
        return False
    if event_at != row.last_event_at:
        return event_at < row.last_event_at
    # Same second: the later billing period wins.
    return bool(start and row.current_period_start and start < row.current_period_start)


# --------------------------------------------------------------------------- refunds, catalog


def _invoice_payment_paid(invoice_payment: Obj, event: Obj) -> None:
    """Record the payment intent that paid a plan invoice (refunds need it)."""
    intent = _id((invoice_payment.get("payment") or {}).get("payment_intent"))
    invoice_id = _id(invoice_payment.get("invoice"))
    if invoice_payment.get("status") != "paid" or not intent or not invoice_id:
        return
    filled = Payment.objects.filter(
        stripe_invoice_id=invoice_id, stripe_payment_intent_id=""
    ).update(stripe_payment_intent_id=intent)
    if not filled:
        # Not recorded yet (or not a plan invoice, or already filled): nothing to wait
        # for, since a refund finds the intent through the gateway's list of the
        # invoice's payments (``plan_payment_for_intent``).
        logger.info(
            "invoice payment without an unfilled plan payment",
            extra={"invoice": invoice_id, "payment_intent": intent},
        )


def _refund_changed(refund: Obj, event: Obj) -> None:
    """Apply a succeeded refund once, by its Stripe id, wherever it was made.

    Stripe sends ``refund.created`` for every refund (ours, the dashboard's, a
    dispute's) and ``refund.updated`` when a pending one settles, so a refund
    is applied from whichever first says it succeeded; ``refund_apply`` is
    keyed by the refund id, so the other changes nothing.
    """
    if refund.get("status") != "succeeded":
        return  # pending: its refund.updated comes; failed or canceled: nothing moved
    refund_id = str(refund["id"])
    intent = _id(refund.get("payment_intent"))
    customer_id = _id(refund.get("customer"))
    payment = Payment.objects.filter(stripe_payment_intent_id=intent).first() if intent else None
    if payment is None:
        user = _user_for_customer(customer_id)  # not ours: NotOurs, 200 and a log line
        payment = plan_payment_for_intent(user=user, payment_intent_id=intent)
    if payment is None or (not payment.credit_reference and payment.credits > 0):
        raise MissingPrerequisite(f"No settled payment for {intent!r} yet; retry later.")
    refund_apply(
        payment_id=payment.pk,
        stripe_refund_id=refund_id,
        amount=int(refund["amount"]),
        refund_key=str((refund.get("metadata") or {}).get("refund_key", "")),
    )


def _payment_intent_succeeded(intent: Obj, event: Obj) -> None:
    """An auto top-up paid (grant its credits once) or a checkout that saved the card.

    Stripe sends this for every payment; those that are neither return before
    any query (metadata is ours: ``auto_top_up`` on a top-up's intent,
    ``auto_top_up_card`` on a checkout's when the user had opted in).
    """
    metadata = intent.get("metadata") or {}
    if metadata.get(auto_top_up.CHARGE_KEY):
        auto_top_up.top_up_paid(user=_user_for_customer(intent.get("customer")), intent=intent)
    elif (
        metadata.get(auto_top_up.SAVE_CARD_KEY)
        and intent.get("setup_future_usage") == "off_session"
        and intent.get("payment_method")
    ):
        auto_top_up.card_saved(
            user=_user_for_customer(intent.get("customer")),
            payment_method_id=_id(intent["payment_method"]),
        )


def _payment_intent_failed(intent: Obj, event: Obj) -> None:
    """An auto top-up's payment failed (a ``processing`` intent that failed later, or a
    decline the task has not recorded yet): refuse it, turn auto top-up off, tell the
    user. Other payments' failures return before any query (no ``auto_top_up`` key)."""
    if (intent.get("metadata") or {}).get(auto_top_up.CHARGE_KEY):
        auto_top_up.top_up_failed(user=_user_for_customer(intent.get("customer")), intent=intent)


def _customer_deleted(customer: Obj, event: Obj) -> None:
    # The customer row stays: payments and subscriptions hang on its history.
    logger.info("stripe customer deleted", extra={"customer": customer.get("id")})


def _catalog_changed(obj: Obj, event: Obj) -> None:
    product_id = obj["id"] if obj.get("object") == "product" else _id(obj.get("product"))
    catalog_sync(product_id=product_id)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _async_payment_succeeded,
    "checkout.session.async_payment_failed": _async_payment_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "invoice.upcoming": _invoice_upcoming,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice_payment.paid": _invoice_payment_paid,
    "refund.created": _refund_changed,
    "refund.updated": _refund_changed,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "customer.deleted": _customer_deleted,
}

# What the webhook endpoint subscribes to (Stripe's dashboard, ``stripe listen
# --events``): every type with a handler. ``charge.refunded`` is not among them:
# its charge no longer lists refunds, and refund.* events carry each one.
HANDLED_EVENT_TYPES: tuple[str, ...] = (
    *HANDLERS,
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
)
