"""Free trials: a plan's trial credits, granted when the trial starts and ended with it.

A plan offers a trial through its Stripe metadata (``trial_days``, and
``trial_credits`` for the credits that come with it; see ``catalog``). Checkout
starts the subscription ``trialing``; Stripe then bills a $0 invoice, which
grants nothing (``webhooks._invoice_paid``), and at the trial's end the first
invoice with ``amount_paid > 0`` grants the plan's credits as every paid period
does.

The trial's credits are one ``trial`` lot per account, keyed by the user
(``trial:user:<pk>``), expiring at the trial's end: every replay, later
trialing event, or second trialing subscription (checkouts opened in parallel
tabs before any webhook said the account had a plan) grants nothing more. A
trial that ends early (ended or cancelled before its ``trial_end``) takes back
what is left of them at once, unless another trial of the account is still
running; one that runs its course needs nothing, since the lot expires then.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from credits import ledger
from credits.exceptions import UnknownReference
from stripe_manager.models import UserSubscription
from users.models import CustomUser

logger = logging.getLogger(__name__)


def trial_reference(user_id: int) -> str:
    """The ledger reference of an account's trial credits (one trial per account)."""
    return f"trial:user:{user_id}"


def trial_follow(
    row: UserSubscription, *, user: CustomUser, was_trialing: bool, trial_ended_at: datetime | None
) -> None:
    """Grant or end the trial credits after a subscription event changed ``row``.

    ``was_trialing`` and ``trial_ended_at`` are the row's status and trial end
    before the event: a trial that stops before that end had its credits ended early.
    """
    now = timezone.now()
    trialing = row.status == UserSubscription.Status.TRIALING
    if trialing and row.trial_end and row.trial_end > now:
        _grant(row, user=user)
    elif was_trialing and not trialing and trial_ended_at and trial_ended_at > now:
        _end_early(row)


def _grant(row: UserSubscription, *, user: CustomUser) -> None:
    product = row.product
    if product is None or product.trial_credit_amount <= 0:
        return  # a trial without credits
    ledger.grant(
        user,
        product.trial_credit_amount,
        source="trial",
        reference=trial_reference(row.user_id),
        expires_at=row.trial_end,
        price_id=row.price_id,
        description=f"{product.name} trial credits",
    )


def _end_early(row: UserSubscription) -> None:
    """Take back the unspent trial credits (what was spent is the entry's shortfall)."""
    still_trialing = UserSubscription.objects.filter(
        user_id=row.user_id,
        status=UserSubscription.Status.TRIALING,
        trial_end__gt=timezone.now(),
    ).exclude(pk=row.pk)
    if still_trialing.exists():
        return  # the account's credits stay with its other trial (parallel checkouts)
    reference = trial_reference(row.user_id)
    try:
        ledger.reverse(reference, key=f"trial-end:user:{row.user_id}", reason="Trial ended")
    except UnknownReference:
        return  # the trial came without credits
    logger.info(
        "trial ended early; its credits taken back",
        extra={"subscription": row.stripe_subscription_id, "status": row.status},
    )
