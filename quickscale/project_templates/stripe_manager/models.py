"""Billing models: the catalog, customers, payments, refunds, subscriptions, webhook log.

Design overview
---------------
Stripe is the source of truth; these rows are what we know of it, kept
current by signed webhooks (``stripe_manager/webhooks.py``).

``StripeProduct``
    One row per active Stripe *price* (a product with a monthly and a yearly
    price gives two rows), pulled by ``sync_stripe_products`` and the
    ``product.*``/``price.*`` events.
``StripeCustomer``
    The one Stripe customer of a user, created once even under double-clicks.
``Payment``
    Money received: a credit purchase (a Checkout Session in payment mode) or
    a paid subscription invoice. It knows the credits it granted and the ledger
    reference they were granted with, so a refund can take them back.
``Refund``
    Saved with its idempotency key *before* Stripe is called; the credit
    reversal of a refund is keyed by its Stripe refund id.
``UserSubscription``
    A Stripe subscription as last seen, with its period read from the
    subscription item.
``ReceivedStripeEvent``
    A verified event as Stripe sent it, stored once by its id when the webhook
    answers, and the work item a worker applies (``stripe_manager.webhook_queue``).
``ProcessedStripeEvent`` / ``WebhookFailure``
    The first is written in the same transaction as an event's effect, so an
    event has an effect at most once. The second is written in its own
    transaction after a failed attempt was rolled back, for staff to see.

Money amounts are ``Decimal`` in the currency's main unit (2 places); Stripe's
integer minor units are converted at the edge, per currency
(``stripe_manager.money``). Every foreign key that money history hangs on is
``PROTECT``.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class StripeProduct(models.Model):
    """One active (or formerly active) Stripe price and the credits it gives."""

    class Interval(models.TextChoices):
        NONE = "none", "One-time"
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=10, choices=Interval.choices, default=Interval.NONE)
    credit_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    display_order = models.PositiveIntegerField(default=0)
    # A plan's free trial (metadata ``trial_days``, validated by the sync) and the
    # credits it comes with (``trial_credits``, may be 0); one-time prices ignore both.
    trial_days = models.PositiveIntegerField(null=True, blank=True)
    trial_credit_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    # The pricing page's stand-out plan (metadata ``highlight``) and the selling points
    # its card lists (metadata ``features``, ``;``-separated); validated by the sync.
    highlighted = models.BooleanField(default=False)
    features = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    stripe_product_id = models.CharField(max_length=255)
    stripe_price_id = models.CharField(max_length=255, unique=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "price", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_interval_display()}, {self.price} {self.currency.upper()})"

    @property
    def is_subscription(self) -> bool:
        return self.interval != self.Interval.NONE

    @property
    def is_one_time(self) -> bool:
        return self.interval == self.Interval.NONE

    @property
    def price_per_credit(self) -> Decimal | None:
        if not self.credit_amount:
            return None
        return (self.price / self.credit_amount).quantize(Decimal("0.0001"))

    @property
    def offers_trial(self) -> bool:
        return self.is_subscription and bool(self.trial_days)

    @property
    def monthly_price(self) -> Decimal:
        """Price per month, to rank plans (upgrade or downgrade)."""
        return self.price / 12 if self.interval == self.Interval.YEAR else self.price


class StripeCustomer(models.Model):
    """A user's Stripe customer: at most one per user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    # An erasure of Stripe's copy is pending (the account was deleted) since this time:
    # set in the deletion's transaction, cleared once erased (``customer_sync``), moved
    # forward by the sweep each time it sends a lost or given-up erasure again.
    erasure_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_customer_id


def new_receipt_number() -> str:
    """A short, human-readable, unique-enough receipt number (the column is unique)."""
    return f"R-{timezone.now():%Y%m%d}-{secrets.token_hex(3).upper()}"


class Payment(models.Model):
    """Money received through Stripe."""

    class Kind(models.TextChoices):
        CREDIT_PURCHASE = "credit_purchase", "Credit purchase"
        SUBSCRIPTION = "subscription", "Subscription"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    product = models.ForeignKey(StripeProduct, on_delete=models.PROTECT, null=True, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="usd")
    description = models.CharField(max_length=255, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)
    credits = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    # The ledger reference the credits were granted with (session or invoice id).
    credit_reference = models.CharField(max_length=255, blank=True, default="")
    price_id = models.CharField(max_length=255, blank=True, default="")
    stripe_checkout_session_id = models.CharField(max_length=255, blank=True, default="")
    stripe_invoice_id = models.CharField(max_length=255, blank=True, default="")
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # When Stripe created the invoice or session: orders a subscription's invoices.
    stripe_created = models.DateTimeField(null=True, blank=True)
    receipt_number = models.CharField(max_length=32, unique=True, default=new_receipt_number)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_checkout_session_id"],
                condition=~Q(stripe_checkout_session_id=""),
                name="stripe_payment_unique_session",
            ),
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~Q(stripe_invoice_id=""),
                name="stripe_payment_unique_invoice",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="stripe_payment_refunded_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["stripe_payment_intent_id"])]

    def __str__(self) -> str:
        return f"{self.receipt_number} {self.amount} {self.currency.upper()}"

    @property
    def refundable(self) -> Decimal:
        """What is left to refund (ignores refunds still pending)."""
        return self.amount - self.amount_refunded


class Refund(models.Model):
    """A refund of all or part of a payment."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")
    credits_reversed = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    reversed_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="stripe_refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} of {self.payment.receipt_number} ({self.status})"


class UserSubscription(models.Model):
    """A Stripe subscription as last seen through its events."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        PAUSED = "paused", "Paused"

    # Statuses a subscription never leaves (Stripe cannot reactivate them).
    TERMINAL = frozenset({Status.CANCELED, Status.INCOMPLETE_EXPIRED})
    # Statuses in which the plan is in use.
    LIVE = frozenset({Status.ACTIVE, Status.TRIALING, Status.PAST_DUE})

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    stripe_item_id = models.CharField(max_length=255, blank=True, default="")
    price_id = models.CharField(max_length=255, blank=True, default="")
    product = models.ForeignKey(StripeProduct, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # End of its free trial (Stripe's ``trial_end``), if it had one.
    trial_end = models.DateTimeField(null=True, blank=True)
    # A downgrade waiting for the period end (a subscription schedule).
    scheduled_price_id = models.CharField(max_length=255, blank=True, default="")
    # Event time of the last applied change: older events are stale.
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-current_period_start", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE


class ReceivedStripeEvent(models.Model):
    """A verified webhook event, stored by the webhook before it answers 200: the work item.

    The worker applies it once due (``stripe_manager.webhook_queue``), holding
    its row locked while it does, and while what it needs has not arrived sets
    it due again later (``next_attempt_at``), until it gives it up (``failed``).
    ``payload`` is the body as Stripe signed it, dropped once it is processed;
    ``customer_id`` the Stripe customer it is about, whose events apply one at a time.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (given up)"

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    # db_default: web processes of the release before it (their inserts name no customer)
    # keep storing events while a deploy rolls out.
    customer_id = models.CharField(max_length=255, blank=True, db_default="")
    payload = models.TextField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    # Attempts that ended, applied or failed (one cut short by a dying worker is not counted).
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The worker's claim: the oldest pending event that is due.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="stripe_event_pending_due",
                condition=models.Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.state})"


class ProcessedStripeEvent(models.Model):
    """A webhook event whose effect is stored (written in the same transaction)."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class WebhookFailure(models.Model):
    """A webhook event whose processing failed (its effect was rolled back)."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(auto_now_add=True)
    last_failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failed_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} x{self.attempts}"


class SimulatedObject(models.Model):
    """State of the offline Stripe simulator (``stripe_manager.simulator``) only."""

    object_id = models.CharField(max_length=255, primary_key=True)
    kind = models.CharField(max_length=40)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}"


class AutoTopUp(models.Model):
    """A user's standing order: below ``threshold`` available credits, buy ``product``.

    The purchase is made off-session with the card saved by a checkout the user
    made while opted in (``payment_method_id``). ``sequence`` counts the top-ups
    started: the next one's number is part of its idempotency key, so one
    threshold crossing is one charge at Stripe however often it is asked for.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auto_top_up"
    )
    enabled = models.BooleanField(default=False)
    product = models.ForeignKey(StripeProduct, on_delete=models.PROTECT, related_name="+")
    threshold = models.DecimalField(max_digits=14, decimal_places=2)
    payment_method_id = models.CharField(max_length=255, blank=True, default="")
    sequence = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gt=0), name="stripe_auto_top_up_threshold_positive"
            )
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"Auto top-up {state}: below {self.threshold}, buy {self.product_id}"


class AutoTopUpCharge(models.Model):
    """One automatic top-up: queued, charged off-session, then granted or failed.

    Staff read these rows to see what happened (a card that needed
    authentication, a decline, a pack gone). At most one per user is in flight
    (queued, charging, or charged but not yet granted): a partial unique index
    says so.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        CHARGING = "charging", "Asking Stripe to charge the card"
        CHARGED = "charged", "Charged, waiting for Stripe's confirmation"
        SUCCEEDED = "succeeded", "Credits granted"
        AUTHENTICATION_REQUIRED = "authentication_required", "Card needs authentication"
        DECLINED = "declined", "Card declined"
        PACK_UNAVAILABLE = "pack_unavailable", "Pack no longer available"
        PACK_TOO_SMALL = "pack_too_small", "Pack now smaller than the threshold"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not needed any more"

    IN_FLIGHT = (Status.QUEUED, Status.CHARGING, Status.CHARGED)
    # Outcomes that turned auto top-up off and asked the user to pay on-session.
    REFUSED = (
        Status.AUTHENTICATION_REQUIRED,
        Status.DECLINED,
        Status.PACK_UNAVAILABLE,
        Status.PACK_TOO_SMALL,
        Status.FAILED,
    )

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auto_top_up_charges"
    )
    sequence = models.PositiveIntegerField()
    product = models.ForeignKey(StripeProduct, on_delete=models.PROTECT, related_name="+")
    # What was asked of the card and what it buys, as the pack read when queued.
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="usd")
    credits = models.DecimalField(max_digits=14, decimal_places=2)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.QUEUED)
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tries = models.PositiveIntegerField(default=0)
    # When its task was last sent (or is due), or when it entered charging or charged:
    # the sweep acts on a charge that stays in one of those states too long.
    enqueued_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "sequence"], name="stripe_auto_top_up_charge_unique_sequence"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=["queued", "charging", "charged"]),
                name="stripe_auto_top_up_one_in_flight",
            ),
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~Q(stripe_payment_intent_id=""),
                name="stripe_auto_top_up_charge_unique_intent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.status})"

    @property
    def refused(self) -> bool:
        """It turned auto top-up off: the user was asked to pay on-session."""
        return self.status in self.REFUSED
