"""The Stripe customer kept in step with its account: email, name, and erasure on deletion.

Stripe keeps its own copy of a customer's email and name (on receipts, invoices,
the portal). When the account's change, a background task pushes them:

- Queued by the account's own signals (the primary email through allauth's
  ``email_changed``, the profile name, the deletion; ``users.signals``), in the
  transaction that made the change (``common.task_queue``): on the database
  queue the task commits or rolls back with it; on another queue it is sent
  once that commits.
- The task carries the user's id only and reads the account when it runs, so a
  later change supersedes an earlier one and a retry never pushes stale data.
  Pushes for one customer take its row lock, so two running at once push in turn
  and the last reads the newest data.
- A deleted account's customer is erased, not deleted: first its Checkout
  sessions still open are expired (one opened before the deletion could
  otherwise be paid after it, starting a plan on an account nobody can sign
  in to), then every subscription of it that has not ended is cancelled at
  once, with no final invoice, no proration and no refund (a deleted account
  must stop being billed; the rest of its period is given up with the account,
  as the deletion page says); then its name, email, phone, addresses and metadata are cleared
  through ``customers.update`` (Stripe's modify), while the customer stays with
  its payments and invoices. Deleting it would also detach its cards, and the
  project's deletion keeps financial history and refunds possible
  (``users.services.user_delete`` keeps the user row for the same reason).
- An erasure is never lost: the deletion's transaction marks the customer
  (``StripeCustomer.erasure_due_at``) and the mark goes only once Stripe's copy
  is erased. :func:`sweep_customer_erasures` (periodic, ``PERIODIC_TASKS``)
  sends again the erasures whose task was lost (a send after commit failing on
  Redis) or given up, each at most every ``ERASURE_SWEEP_AFTER``.
- Django's task framework has no retry: a ``GatewayError`` re-enqueues the task
  with ``run_after`` after ``RETRY_SECONDS`` doubled per failure (at most an
  hour), up to ``MAX_ATTEMPTS``; then it is given up and logged as an error. A
  customer Stripe does not have (404: deleted in its dashboard) is given up at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task
from django_tasks.base import Task

from common.task_queue import enqueue_with_transaction
from stripe_manager.gateway import (
    Gateway,
    GatewayError,
    PaymentsDisabled,
    get_gateway,
    payments_enabled,
)
from stripe_manager.models import StripeCustomer
from stripe_manager.webhook_queue import forget_given_up_events
from users.models import CustomUser, Profile
from users.services import deleted_email
from users.signals import account_deleted

logger = logging.getLogger(__name__)

# Attempts before a push is given up (about two hours of retries).
MAX_ATTEMPTS = 8
RETRY_SECONDS = 60
MAX_RETRY_DELAY = timedelta(hours=1)
# A pending erasure untouched this long has lost its task (or it was given up).
ERASURE_SWEEP_AFTER = timedelta(minutes=15)
ERASURE_SWEEP_BATCH = 100


# --------------------------------------------------------------------------- queueing


def customer_sync_queue(user_id: int) -> bool:
    """Queue pushing ``user_id``'s details to their Stripe customer; False when they have none.

    Call inside the transaction that changed the account.
    """
    if not payments_enabled() or not StripeCustomer.objects.filter(user_id=user_id).exists():
        return False  # nothing in Stripe to keep in step (a customer made later starts current)
    _enqueue(user_id, attempt=1)
    logger.info("stripe customer sync queued", extra={"user_id": user_id})
    return True


def customer_created(user_id: int) -> None:
    """Queue the name of a new customer (created with the email only), if the account has one."""
    if Profile.objects.filter(user_id=user_id).exclude(full_name="").exists():
        customer_sync_queue(user_id)


def customer_erasure_queue(user_id: int) -> bool:
    """Mark ``user_id``'s Stripe customer for erasure and queue it; False when they have none.

    Call inside the account deletion's transaction: the mark commits with it and
    stays until the erasure is done, so the sweep finds an erasure whose task was lost.
    The customer's given-up webhook events lose their stored details with it.
    """
    if not StripeCustomer.objects.filter(user_id=user_id).update(erasure_due_at=timezone.now()):
        return False
    customers = StripeCustomer.objects.filter(user_id=user_id)
    for customer_id in customers.values_list("stripe_customer_id", flat=True):
        forget_given_up_events(customer_id)
    return customer_sync_queue(user_id)


def _enqueue(user_id: int, *, attempt: int, run_after: datetime | None = None) -> None:
    sender: Task[Any, Any] = sync_customer
    if run_after is not None:
        sender = sender.using(run_after=run_after)
    # On another queue than the database, a send that fails after the commit is logged
    # and lost: an erasure is sent again by the sweep; an email or name change is
    # pushed with all of it by the account's next change.
    enqueue_with_transaction(sender, user_id, attempt)


def retry_delay(attempt: int) -> timedelta:
    """Wait after the ``attempt``-th failure: RETRY_SECONDS, doubled each time, at most an hour."""
    return min(timedelta(seconds=RETRY_SECONDS * 2 ** max(attempt - 1, 0)), MAX_RETRY_DELAY)


# --------------------------------------------------------------------------- the task


@task()
def sync_customer(user_id: int, attempt: int = 1) -> str:
    """Push the account's email and name to its Stripe customer, or erase a deleted one's."""
    try:
        outcome = customer_sync(user_id)
    except PaymentsDisabled:
        logger.info("stripe customer sync skipped: payments are off", extra={"user_id": user_id})
        return "payments off"
    except GatewayError as error:
        _failed(user_id, attempt, error)
        return "failed"
    logger.info("stripe customer synced", extra={"user_id": user_id, "outcome": outcome})
    return outcome


def customer_sync(user_id: int) -> str:
    """Bring the user's Stripe customer in step with the account now; return what was done."""
    with transaction.atomic():
        customer = (
            StripeCustomer.objects.select_for_update()
            .select_related("user")
            .filter(user_id=user_id)
            .first()
        )
        if customer is None:
            return "no customer"
        user = customer.user
        gateway = get_gateway()
        if _is_deleted(user):
            if customer.erasure_due_at is None:
                return "erased already"
            _erase(gateway, customer)
            return "erased"
        gateway.update_customer(
            customer_id=customer.stripe_customer_id, email=user.email, name=_name(user)
        )
        return "updated"


def _erase(gateway: Gateway, customer: StripeCustomer) -> None:
    """Close the customer's open checkouts, end its subscriptions, then clear its personal
    data, then the mark. Checkouts first: one paid before it closed has started its plan by
    the time the subscriptions are listed."""
    closed = gateway.expire_checkout_sessions(customer_id=customer.stripe_customer_id)
    if closed:
        logger.info(
            "open checkouts of a deleted account expired",
            extra={"user_id": customer.user_id, "sessions": closed},
        )
    ended = gateway.cancel_customer_subscriptions(customer_id=customer.stripe_customer_id)
    if ended:
        logger.info(
            "subscriptions of a deleted account cancelled",
            extra={"user_id": customer.user_id, "subscriptions": ended},
        )
    gateway.erase_customer(customer_id=customer.stripe_customer_id)
    customer.erasure_due_at = None
    customer.save(update_fields=["erasure_due_at"])


def _is_deleted(user: CustomUser) -> bool:
    """``users.services.user_delete`` leaves exactly this: inactive, at its placeholder address."""
    return not user.is_active and user.email == deleted_email(user)


def _name(user: CustomUser) -> str:
    full_name = Profile.objects.filter(user=user).values_list("full_name", flat=True).first()
    return (full_name or user.get_full_name()).strip()


def _failed(user_id: int, attempt: int, error: GatewayError) -> None:
    # Stripe has no such customer (deleted in its dashboard): no retry can find it.
    gone = getattr(error.__cause__, "http_status", None) == HTTPStatus.NOT_FOUND
    if gone:
        # Nothing left in Stripe to erase: no sweep should try again.
        StripeCustomer.objects.filter(user_id=user_id).update(erasure_due_at=None)
    if gone or attempt >= MAX_ATTEMPTS:
        logger.error(
            "stripe customer sync given up",
            extra={"user_id": user_id, "attempts": attempt, "error": str(error)},
        )
        return
    delay = retry_delay(attempt)
    _enqueue(user_id, attempt=attempt + 1, run_after=timezone.now() + delay)
    logger.warning(
        "stripe customer sync failed; retrying",
        extra={
            "user_id": user_id,
            "attempts": attempt,
            "retry_in_seconds": int(delay.total_seconds()),
            "error": str(error),
        },
    )


@task()
def sweep_customer_erasures() -> int:
    """Send again the erasures of deleted accounts whose task was lost or given up."""
    if not payments_enabled():
        return 0  # kept pending until payments are on again
    now = timezone.now()
    stalled = list(
        StripeCustomer.objects.filter(erasure_due_at__lt=now - ERASURE_SWEEP_AFTER)
        .order_by("erasure_due_at")
        .values_list("user_id", flat=True)[:ERASURE_SWEEP_BATCH]
    )
    if stalled:
        with transaction.atomic():
            # Moved forward so the next sweeps leave them to this run's tasks for a while.
            StripeCustomer.objects.filter(user_id__in=stalled).update(erasure_due_at=now)
            for user_id in stalled:
                # One try each (no retry chain): the next sweep is the retry.
                _enqueue(user_id, attempt=MAX_ATTEMPTS)
        logger.warning("stalled stripe customer erasures sent again", extra={"count": len(stalled)})
    return len(stalled)


# --------------------------------------------------------------------------- receivers
# Connected in StripeManagerConfig.ready; each runs inside the change's transaction.


def on_email_changed(sender: Any, user: CustomUser, **kwargs: Any) -> None:
    """allauth's ``email_changed``: a new primary address (marked primary, or confirmed)."""
    customer_sync_queue(user.pk)


def on_account_changed(sender: Any, user_id: int, **kwargs: Any) -> None:
    """``users.signals.account_name_changed`` and ``account_deleted``."""
    if kwargs.get("signal") is account_deleted:
        customer_erasure_queue(user_id)
    else:
        customer_sync_queue(user_id)
