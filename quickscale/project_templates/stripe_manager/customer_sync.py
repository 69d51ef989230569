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
- A deleted account's customer is erased, not deleted: its name, email, phone,
  addresses and metadata are cleared through ``customers.update`` (Stripe's
  modify), while the customer stays with its payments, invoices and
  subscriptions. Deleting it would cancel those subscriptions at once and
  detach its cards, and the project's deletion keeps financial history and
  refunds possible (``users.services.user_delete`` keeps the user row for the
  same reason).
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
from stripe_manager.gateway import GatewayError, PaymentsDisabled, get_gateway, payments_enabled
from stripe_manager.models import StripeCustomer
from users.models import CustomUser, Profile
from users.services import deleted_email

logger = logging.getLogger(__name__)

# Attempts before a push is given up (about two hours of retries).
MAX_ATTEMPTS = 8
RETRY_SECONDS = 60
MAX_RETRY_DELAY = timedelta(hours=1)


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


def _enqueue(user_id: int, *, attempt: int, run_after: datetime | None = None) -> None:
    sender: Task[Any, Any] = sync_customer
    if run_after is not None:
        sender = sender.using(run_after=run_after)
    # On another queue than the database, a send that fails after the commit is logged
    # and lost (there is no sweep): the next change of the account pushes all of it.
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
            gateway.erase_customer(customer_id=customer.stripe_customer_id)
            return "erased"
        gateway.update_customer(
            customer_id=customer.stripe_customer_id, email=user.email, name=_name(user)
        )
        return "updated"


def _is_deleted(user: CustomUser) -> bool:
    """``users.services.user_delete`` leaves exactly this: inactive, at its placeholder address."""
    return not user.is_active and user.email == deleted_email(user)


def _name(user: CustomUser) -> str:
    full_name = Profile.objects.filter(user=user).values_list("full_name", flat=True).first()
    return (full_name or user.get_full_name()).strip()


def _failed(user_id: int, attempt: int, error: GatewayError) -> None:
    # Stripe has no such customer (deleted in its dashboard): no retry can find it.
    gone = getattr(error.__cause__, "http_status", None) == HTTPStatus.NOT_FOUND
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


# --------------------------------------------------------------------------- receivers
# Connected in StripeManagerConfig.ready; each runs inside the change's transaction.


def on_email_changed(sender: Any, user: CustomUser, **kwargs: Any) -> None:
    """allauth's ``email_changed``: a new primary address (marked primary, or confirmed)."""
    customer_sync_queue(user.pk)


def on_account_changed(sender: Any, user_id: int, **kwargs: Any) -> None:
    """``users.signals.account_name_changed`` and ``account_deleted``."""
    customer_sync_queue(user_id)
