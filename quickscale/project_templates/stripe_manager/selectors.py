"""Billing reads: the catalog, subscriptions, payments and their refunds.

Customer-facing pages read one user's rows; the staff pages search across
users (``payment_search``, ``users_by_subscription``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from common.dates import day_end, day_start
from common.pagination import COUNT_CAP
from credits import ledger
from credits.ledger import Balance
from credits.models import CreditLot
from stripe_manager.models import (
    Payment,
    ReceivedStripeEvent,
    Refund,
    StripeCustomer,
    StripeProduct,
    UserSubscription,
    WebhookFailure,
)
from users.models import CustomUser
from users.selectors import users_by_email

# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class EventContext:
    """What a payment event names, read in one query (``event_context``)."""

    user: CustomUser
    # The catalog row of the event's price with the fields a grant reads
    # (_EVENT_PRODUCT_FIELDS; any other is loaded on access), or None.
    product: StripeProduct | None
    # For a plan invoice: the price of the subscription's newest paid period
    # recorded before this event ("" when none), and whether the user holds live
    # plan credits of a price other than the invoice's.
    newest_plan_price: str = ""
    other_plan_credits: bool = False


# The fields of the product a grant reads; any other is loaded on access.
_EVENT_PRODUCT_FIELDS = ("id", "name", "credit_amount", "stripe_price_id", "interval")

# event_context's query, written out: every paid event runs it, and the ORM took
# about 1 ms of Python to build the same statement each time. What it reads: the
# customer's user (whole); the product of %(price)s (the fields above); for a
# plan invoice (%(subscription)s set) the price of the subscription's newest
# paid period (the order of the plan-change rule in webhooks._invoice_paid) and
# whether the user holds live plan credits of another price (CreditLot.live()).
_EVENT_CONTEXT_SQL = """
    SELECT u.*,
           {product_columns},
           newest.price_id AS ctx_newest_price,
           EXISTS (
               SELECT 1 FROM {lots} AS lot
               WHERE %(subscription)s <> '' AND lot.user_id = u.id
                 AND lot.source = %(plan_source)s AND lot.price_id <> %(price)s
                 AND lot.remaining > 0 AND (lot.expires_at IS NULL OR lot.expires_at > %(now)s)
           ) AS ctx_other_plans
    FROM {customers} AS customer
    JOIN {users} AS u ON u.id = customer.user_id
    LEFT JOIN {products} AS product
           ON %(price)s <> '' AND product.stripe_price_id = %(price)s
    LEFT JOIN LATERAL (
        SELECT payment.price_id FROM {payments} AS payment
        WHERE %(subscription)s <> '' AND payment.stripe_subscription_id = %(subscription)s
          AND payment.kind = %(plan_kind)s AND payment.credit_reference > ''
        ORDER BY payment.period_start DESC NULLS LAST, payment.stripe_created DESC,
                 payment.id DESC
        LIMIT 1
    ) AS newest ON true
    WHERE customer.stripe_customer_id = %(customer)s
""".format(
    product_columns=", ".join(
        f"product.{name} AS ctx_product_{name}" for name in _EVENT_PRODUCT_FIELDS
    ),
    lots=CreditLot._meta.db_table,
    customers=StripeCustomer._meta.db_table,
    users=CustomUser._meta.db_table,
    products=StripeProduct._meta.db_table,
    payments=Payment._meta.db_table,
)


def event_context(
    customer_id: str, *, price_id: str = "", subscription_id: str = ""
) -> EventContext | None:
    """The user of Stripe customer ``customer_id`` and what the event's price means, or None.

    One statement, however much is asked: a webhook that grants credits runs in
    eight, and this answers what took three to five (the customer, the product,
    the subscription's newest paid period, the user's live credits of other
    plans). None when the customer is not ours.
    """
    if not customer_id:
        return None
    params = {
        "customer": customer_id,
        "price": price_id,
        "subscription": subscription_id,
        "plan_kind": Payment.Kind.SUBSCRIPTION.value,
        "plan_source": CreditLot.Source.SUBSCRIPTION.value,
        "now": timezone.now(),
    }
    found = next(iter(CustomUser.objects.raw(_EVENT_CONTEXT_SQL, params)), None)
    if found is None:
        return None
    product = None
    # The raw query's extra columns are attributes of the user it returns.
    extra: dict[str, Any] = found.__dict__
    if extra["ctx_product_id"] is not None:
        # from_db takes a subset of the fields in the model's order (the rest deferred).
        names = [
            field.attname
            for field in StripeProduct._meta.concrete_fields
            if field.attname in _EVENT_PRODUCT_FIELDS
        ]
        values = [extra[f"ctx_product_{name}"] for name in names]
        product = StripeProduct.from_db(connection.alias, names, values)
    return EventContext(
        user=found,
        product=product,
        newest_plan_price=extra["ctx_newest_price"] or "",
        other_plan_credits=bool(extra["ctx_other_plans"]),
    )


def active_product(price_id: str) -> StripeProduct | None:
    """The active catalog row for ``price_id``, or None (unknown or inactive)."""
    if not isinstance(price_id, str) or not price_id:
        return None
    return StripeProduct.objects.filter(stripe_price_id=price_id, active=True).first()


def product_for_price(price_id: str) -> StripeProduct | None:
    """The catalog row for ``price_id``, active or not."""
    return StripeProduct.objects.filter(stripe_price_id=price_id).first() if price_id else None


def plans() -> QuerySet[StripeProduct]:
    return StripeProduct.objects.filter(active=True).exclude(interval=StripeProduct.Interval.NONE)


def credit_packs() -> QuerySet[StripeProduct]:
    return StripeProduct.objects.filter(active=True, interval=StripeProduct.Interval.NONE)


def all_products() -> QuerySet[StripeProduct]:
    """The whole local catalog, active first, in display order."""
    return StripeProduct.objects.order_by("-active", "display_order", "price", "id")


# --------------------------------------------------------------------------- subscriptions

# Subscription filter of a user search: a status, "live" (in use) or "none" (never subscribed).
SUBSCRIPTION_LIVE = "live"
SUBSCRIPTION_NONE = "none"


def current_subscription(user: CustomUser) -> UserSubscription | None:
    """The user's plan in use (active, trialing or past due), newest first."""
    return (
        UserSubscription.objects.filter(user=user, status__in=UserSubscription.LIVE)
        .select_related("product")
        .first()
    )


def latest_subscriptions(user: CustomUser, *, limit: int = 5) -> list[UserSubscription]:
    """The user's subscriptions, live or not, newest first."""
    return list(
        UserSubscription.objects.filter(user=user).select_related("product").order_by("-id")[:limit]
    )


def trial_available(user: CustomUser, product: StripeProduct) -> bool:
    """Whether subscribing ``user`` to ``product`` starts a free trial.

    One trial per account: a user who ever had a subscription (trial or paid,
    live or ended) pays from the first day, so cancelling and subscribing again
    never buys another free period.
    """
    return product.offers_trial and not had_subscription(user)


def had_subscription(user: CustomUser) -> bool:
    """Whether ``user`` ever had a subscription (trial or paid, live or ended)."""
    return UserSubscription.objects.filter(user=user).exists()


def has_bought(user: CustomUser) -> bool:
    """Whether ``user`` ever paid or subscribed (a pack, a plan or a trial); one query."""
    return (
        CustomUser.objects.filter(pk=user.pk)
        .filter(
            Exists(Payment.objects.filter(user=OuterRef("pk")))
            | Exists(UserSubscription.objects.filter(user=OuterRef("pk")))
        )
        .exists()
    )


def live_subscription_count() -> int:
    return UserSubscription.objects.filter(status__in=UserSubscription.LIVE).count()


def users_by_subscription(users: QuerySet[CustomUser], subscription: str) -> QuerySet[CustomUser]:
    """Narrow ``users`` to those with a subscription in ``subscription``'s state.

    ``SUBSCRIPTION_LIVE``: one in use; ``SUBSCRIPTION_NONE``: never subscribed;
    otherwise a ``UserSubscription.Status`` value.
    """
    subs = UserSubscription.objects.filter(user=OuterRef("pk"))
    if subscription == SUBSCRIPTION_LIVE:
        return users.filter(Exists(subs.filter(status__in=UserSubscription.LIVE)))
    if subscription == SUBSCRIPTION_NONE:
        return users.filter(~Exists(subs))
    return users.filter(Exists(subs.filter(status=subscription)))


# --------------------------------------------------------------------------- payments


def payments(user: CustomUser) -> QuerySet[Payment]:
    return Payment.objects.filter(user=user).select_related("product")


def latest_payments(user: CustomUser, *, limit: int = 10) -> list[Payment]:
    """The user's latest payments, newest first."""
    return list(payments(user).order_by("-id")[:limit])


def payment_for_receipt(user: CustomUser, receipt_number: str) -> Payment | None:
    """The user's own payment with that receipt number (None for anyone else's)."""
    return payments(user).filter(receipt_number=receipt_number).first()


def other_payments(payment: Payment, *, limit: int = 10) -> list[Payment]:
    """The latest other payments of ``payment``'s user."""
    return list(
        Payment.objects.filter(user_id=payment.user_id)
        .exclude(pk=payment.pk)
        .order_by("-id")[:limit]
    )


def payment_refunds(payment: Payment) -> list[Refund]:
    """The refunds of ``payment``, newest first, with who asked for each."""
    return list(payment.refunds.select_related("requested_by").order_by("-id"))


def open_webhook_failure_count() -> int:
    """Webhook events that failed and are not resolved yet."""
    return WebhookFailure.objects.filter(resolved_at__isnull=True).count()


@dataclass(frozen=True)
class EventBacklog:
    """Stored Stripe events due now and not applied yet, and how long the oldest has waited."""

    due: int
    oldest_due_seconds: float


def stripe_event_backlog() -> EventBacklog:
    """Pending events whose next attempt has come (one a worker is applying right now
    included): a figure that grows while no worker applies them."""
    now = timezone.now()
    due = ReceivedStripeEvent.objects.filter(
        state=ReceivedStripeEvent.State.PENDING, next_attempt_at__lte=now
    )
    figures = due.aggregate(count=Count("id"), oldest=Min("next_attempt_at"))
    oldest = figures["oldest"]
    waited = (now - oldest).total_seconds() if oldest is not None else 0.0
    return EventBacklog(due=int(figures["count"]), oldest_due_seconds=max(waited, 0.0))


@dataclass(frozen=True)
class PaymentFilters:
    kind: str = ""
    status: str = ""
    email: str = ""
    stripe_id: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    start: date | None = None
    end: date | None = None


STRIPE_ID_PREFIXES = (
    ("pi_", "stripe_payment_intent_id"),
    ("cs_", "stripe_checkout_session_id"),
    ("in_", "stripe_invoice_id"),
    ("sub_", "stripe_subscription_id"),
    ("R-", "receipt_number"),
)


def payment_search(filters: PaymentFilters) -> QuerySet[Payment]:
    """Payments matching ``filters``, newest first (by id: it follows creation and is indexed)."""
    rows = Payment.objects.select_related("user", "product").order_by("-id")
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.email:
        # The matching accounts first (one scan of users), then their payments through
        # the user_id index: as a subquery the planner may walk every payment instead.
        user_ids = list(users_by_email(filters.email).values_list("pk", flat=True)[:COUNT_CAP])
        rows = rows.filter(user_id__in=user_ids)
    if filters.stripe_id:
        value = filters.stripe_id
        # Stripe ids say what they are: look in that one (indexed) column.
        field = next((f for prefix, f in STRIPE_ID_PREFIXES if value.startswith(prefix)), None)
        if field:
            rows = rows.filter(**{field: value})
        else:
            rows = rows.filter(
                Q(stripe_payment_intent_id=value)
                | Q(stripe_checkout_session_id=value)
                | Q(stripe_invoice_id=value)
                | Q(stripe_subscription_id=value)
                | Q(receipt_number=value)
            )
    if filters.amount_min is not None:
        rows = rows.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        rows = rows.filter(amount__lte=filters.amount_max)
    if filters.start:
        rows = rows.filter(created_at__gte=day_start(filters.start))
    if filters.end:
        rows = rows.filter(created_at__lt=day_end(filters.end))
    return rows


# --------------------------------------------------------------------------- checkout outcome

# A plan's first invoice is recorded this soon after its checkout; older ones are not this one.
_RECENT_PLAN_PAYMENT = timedelta(minutes=30)


@dataclass(frozen=True)
class CheckoutOutcome:
    """What the success page shows: the recorded payment, or ``None`` while pending."""

    payment: Payment | None
    balance: Balance | None
    trial: UserSubscription | None = None  # a plan's free trial: no payment to wait for

    @property
    def recorded(self) -> bool:
        if self.trial is not None:
            return True
        return self.payment is not None and self.payment.status != Payment.Status.PENDING


def checkout_outcome(user: CustomUser, session_id: str, *, plan: bool) -> CheckoutOutcome:
    """The user's payment for checkout ``session_id``, once its webhook has landed.

    A credit purchase is recorded under its session id; a plan's first payment
    under its invoice, so for a ``plan`` the newest recent subscription payment is it.
    """
    payment = None
    if session_id and not plan:
        payment = (
            Payment.objects.filter(user=user, stripe_checkout_session_id=session_id)
            .select_related("product")
            .first()
        )
    if plan:
        payment = (
            Payment.objects.filter(
                user=user,
                kind=Payment.Kind.SUBSCRIPTION,
                created_at__gte=timezone.now() - _RECENT_PLAN_PAYMENT,
            )
            .select_related("product")
            .order_by("-created_at")
            .first()
        )
    if plan and payment is None:
        # A trial's $0 invoice records no payment; its subscription is the news.
        # (No plan can be bought while one is current, so a trialing one is this one.)
        subscription = current_subscription(user)
        if subscription is not None and subscription.status == UserSubscription.Status.TRIALING:
            return CheckoutOutcome(payment=None, balance=ledger.balance(user), trial=subscription)
    if payment is None or payment.status == Payment.Status.PENDING:
        return CheckoutOutcome(payment=payment, balance=None)
    return CheckoutOutcome(payment=payment, balance=ledger.balance(user))
