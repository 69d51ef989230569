"""Credit ledger models.

Design overview
---------------
Credits are money, so they are stored the way an accountant would keep them.

``CreditLot``
    One grant of credits: a subscription period's allowance, a purchase, a
    staff grant, the sign-up gift, or the pay-as-you-go lot a plan change
    converts subscription credits into. A lot knows how much it granted
    (``amount``), how much of it is still unspent (``remaining``), when it
    stops counting (``expires_at``; null for pay-as-you-go lots, which never
    expire; a subscription lot expires at the end of its billing period) and
    the spending ``priority`` (subscription lots first). A subscription lot
    also keeps the Stripe ``price_id`` it was granted for. Its
    ``reference`` (a Stripe invoice or session id, an admin action id) is
    unique, so a retried grant can never create a second lot.

``LedgerEntry``
    An append-only record of one change to a user's credits: a grant, a
    consume, an expiry, a transfer (plan change), a reversal or an
    adjustment. ``amount`` is signed (positive adds credits). Its ``key`` is
    unique and doubles as the idempotency key: repeating an operation finds
    the first entry instead of writing a second one.

``LedgerEntryLot``
    How much one entry took from (negative) or returned to (positive) one
    lot, so every entry can be undone into exactly the lots it touched.

``CreditHold``
    Credits reserved for a call whose price is known only when it ends (LLM
    tokens, a background job). A hold is ``open`` until it is settled (turned
    into one consume entry whose key is the hold's key), released (nothing
    charged) or expired (released by the periodic sweep). A hold is not money
    moved: it writes no ledger entry, so the history shows a call only once it
    is settled. It records what it reserved on each lot; a lot's ``held`` is
    the sum of its open holds' reservations, so the credits a lot can still
    give are ``remaining - held``, and every spending path takes only from
    that. A plan change that converts a subscription lot moves its held
    credits too and points the old lot at the new one (``converted_into``);
    closing a hold follows that pointer.

Invariants held by the database (CHECK and UNIQUE constraints, so even code
that bypasses the ledger cannot break them): ``amount > 0`` and
``0 <= held <= remaining <= amount`` on a lot; a lot's ``reference``, an
entry's ``key`` and a hold's ``key`` are unique; an entry touches a lot at
most once, never by zero; a hold reserves a positive amount, with one
amount per lot it names. Every foreign key to a user is ``PROTECT``:
deleting an account deactivates it, it never deletes financial history.

Invariants held by ``credits/ledger.py`` and the database functions it calls
(``credits/sql/``), the only code that creates lots, entries or holds or
changes ``remaining`` and ``held``: the entry rows of a lot sum to its
``remaining``; an entry's ``amount`` is the sum of its lot rows; a lot's
``held`` is the sum of what open holds reserve on it (following
``converted_into``), and a hold's reservations sum to its ``amount``; the
balance is the sum of ``remaining`` over live (not yet expired) lots, of
which ``held`` is reserved and the rest available.

Amounts are ``Decimal`` with 2 decimal places, never float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.lookups import Exact
from django.utils import timezone

from credits.labels import display_label

AMOUNT_MAX_DIGITS = 14
AMOUNT_DECIMAL_PLACES = 2
ZERO = Decimal("0.00")


class CreditLotQuerySet(models.QuerySet["CreditLot"]):
    """Reads shared by the ledger and the selectors."""

    def live(self, at: datetime | None = None) -> CreditLotQuerySet:
        """Lots with credits left that have not expired at ``at`` (default: now).

        Served by the partial index on open lots, so the cost follows the
        number of open lots, not the length of the history.
        """
        moment = timezone.now() if at is None else at
        return self.filter(remaining__gt=0).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=moment)
        )


class CreditLot(models.Model):
    """One grant of credits, spent down by consumption and expiry."""

    class Source(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription"
        TRIAL = "trial", "Plan trial"
        PURCHASE = "purchase", "Purchase"
        ADMIN = "admin", "Staff grant"
        SIGNUP = "signup", "Sign-up bonus"
        TRANSFER = "transfer", "Converted subscription credits"
        ADJUSTMENT = "adjustment", "Adjustment"

    class Priority(models.IntegerChoices):
        SUBSCRIPTION = 10, "Subscription (spent first)"
        PAY_AS_YOU_GO = 20, "Pay-as-you-go"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_lots"
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    remaining = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    held = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        default=ZERO,
        help_text="Part of remaining reserved by open holds: not spendable until they close.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    price_id = models.CharField(max_length=255, blank=True, default="")
    reference = models.CharField(max_length=255)
    description = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    converted_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # followed from this lot only; lots are never deleted
        help_text="The pay-as-you-go lot a plan change moved this lot's credits (and the "
        "reservations of its open holds) into.",
    )

    objects = CreditLotQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="credits_lot_reference_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0), name="credits_lot_remaining_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(remaining__lte=F("amount")),
                name="credits_lot_remaining_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(held__gte=0, held__lte=F("remaining")),
                name="credits_lot_held_within_remaining",
            ),
        ]
        indexes = [
            # balance() and consume(): only lots with something left are in it,
            # so their cost follows the number of open lots, not history.
            models.Index(
                fields=["user", "expires_at"],
                include=["remaining", "held", "source"],
                condition=Q(remaining__gt=0),
                name="credits_lot_open_with_held",
            ),
            # expire() and reminders: open lots with an expiry, across users.
            models.Index(
                fields=["expires_at"],
                condition=Q(remaining__gt=0, expires_at__isnull=False),
                name="credits_lot_open_expiring",
            ),
        ]
        ordering = ["priority", F("expires_at").asc(nulls_last=True), "id"]

    def __str__(self) -> str:
        return f"{self.get_source_display()} lot {self.reference} ({self.remaining}/{self.amount})"


class LedgerEntry(models.Model):
    """An append-only record of one change to a user's credits."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        CONSUME = "consume", "Usage"
        EXPIRY = "expiry", "Expiry"
        TRANSFER = "transfer", "Transfer"
        REVERSAL = "reversal", "Reversal"
        ADJUSTMENT = "adjustment", "Adjustment"

    # Indexed by credits_entry_user_recent (user first).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        help_text="Signed change to the balance: positive adds credits.",
    )
    shortfall = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        default=ZERO,
        help_text="What a reversal, a negative adjustment or a settled hold could not "
        "take because the credits were already spent or reserved.",
    )
    key = models.CharField(max_length=600)
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_index=False,  # partial index below: most entries reverse nothing
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # partial index below: most entries have no actor
    )
    description = models.CharField(max_length=255, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    lots: models.ManyToManyField[CreditLot, LedgerEntryLot] = models.ManyToManyField(
        CreditLot, through="LedgerEntryLot", related_name="entries"
    )

    class Meta:
        constraints = [
            # A plain unique constraint (not unique=True, which adds a LIKE index):
            # the spending function (credits/sql/) inserts with ON CONFLICT (key) against it.
            models.UniqueConstraint(fields=["key"], name="credits_entry_key_unique"),
            models.CheckConstraint(
                condition=Q(shortfall__gte=0), name="credits_entry_shortfall_not_negative"
            ),
        ]
        # Every index here is written by each consume, the hot path: keep them few.
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="credits_entry_user_recent"),
            # Period totals; BRIN suits an append-only, time-ordered table and costs
            # almost nothing to maintain.
            BrinIndex(fields=["created_at"], name="credits_entry_created_brin"),
            models.Index(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="credits_entry_reverses",
            ),
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="credits_entry_actor"
            ),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.key})"

    @property
    def stored_label(self) -> str:
        """The entry's description as written (identifiers kept), or its kind."""
        return self.description or self.get_kind_display()

    @property
    def label(self) -> str:
        """Return the text a user sees for this entry in their history (``credits.labels``)."""
        return display_label(self.stored_label)

    @property
    def credits_moved(self) -> Decimal:
        """The credits a transfer moved between lots, from its lot rows.

        A transfer's ``amount`` is 0 by design (the balance does not change), so a
        history shows this instead. Reads ``lot_rows`` through the prefetch that
        ``credits.selectors.entries`` sets up.
        """
        return sum((row.amount for row in self.lot_rows.all() if row.amount > 0), ZERO)


class LedgerEntryLot(models.Model):
    """The part of one entry that touched one lot (negative takes, positive returns)."""

    # Indexed by credits_entry_lot_unique (entry first).
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="lot_rows", db_index=False
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="entry_rows")
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "lot"], name="credits_entry_lot_unique"),
            models.CheckConstraint(
                condition=~Q(amount=0), name="credits_entry_lot_amount_not_zero"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on lot {self.lot_id} by entry {self.entry_id}"


class ExpiryReminder(models.Model):
    """Records that the owner of a lot was reminded it expires soon (once per lot)."""

    lot = models.OneToOneField(CreditLot, on_delete=models.PROTECT, related_name="reminder")
    sent_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Reminder for lot {self.lot_id} at {self.sent_at:%Y-%m-%d %H:%M}"


class CreditHold(models.Model):
    """Credits reserved for a call whose price is known afterwards (see the module docstring)."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    # The caller's idempotency key, and the key of its settle entry.
    key = models.CharField(max_length=255)
    # Not indexed: holds are found by key, open ones by expiry; users are never deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="credit_holds",
        db_index=False,
    )
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    description = models.CharField(max_length=255, blank=True, default="")
    expires_at = models.DateTimeField(
        help_text="The sweep releases the hold after this moment if nobody settled it."
    )
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # What the hold reserves on each lot, in spending order: lot_amounts[i] of
    # lot_ids[i]. Written once with the hold and never changed; a plan change
    # that converts a lot forwards its reservations (CreditLot.converted_into).
    lot_ids = ArrayField(models.BigIntegerField())
    lot_amounts = ArrayField(
        models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    )

    class Meta:
        # A hold is written twice per call (hold, settle): it carries only its primary
        # key, its key and the sweep's index of open holds.
        constraints = [
            # A plain unique constraint (not unique=True, which adds a LIKE index):
            # credits_hold (credits/sql/) inserts with ON CONFLICT (key) against it.
            models.UniqueConstraint(fields=["key"], name="credits_hold_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(state="open", closed_at__isnull=True)
                | (~Q(state="open") & Q(closed_at__isnull=False)),
                name="credits_hold_closed_when_not_open",
            ),
            models.CheckConstraint(
                condition=Exact(
                    Func(F("lot_ids"), function="cardinality"),
                    Func(F("lot_amounts"), function="cardinality"),
                ),
                name="credits_hold_one_amount_per_lot",
            ),
        ]
        indexes = [
            # The sweep: only open holds, by expiry, so it reads what it releases
            # (and closing a hold adds nothing to it).
            models.Index(
                fields=["expires_at"], condition=Q(state="open"), name="credits_hold_open_expiring"
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_state_display()} hold {self.key} ({self.amount})"

    @property
    def reservations(self) -> dict[int, Decimal]:
        """Return what the hold reserved on each lot when it was made (lot id -> amount)."""
        return dict(zip(self.lot_ids, self.lot_amounts, strict=True))
