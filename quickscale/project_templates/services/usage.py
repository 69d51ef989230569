"""Writes of ``ServiceUsage``: the two transactions around a call, and the reconciler.

A call's money and its record must never disagree, even when the database goes
away in the middle of it. So:

1. ``usage_start``: one transaction charges the call (``ledger.consume``),
   writes its *pending* usage row and whatever the caller links to it (the
   ``api`` app's key link); all of it commits, or none of it does.
2. The service runs outside any transaction: no lot is locked during a call.
3. ``usage_succeed`` or ``usage_fail`` records the outcome; a failure reverses
   the charge in the same transaction. Both change only a row that is still
   pending, so a call and the reconciler never both decide its outcome.

When step 3 cannot reach the database, the caller gets that error (the web
and the API answer 503) and the row stays pending. ``usage_reconcile_stale``
(``manage.py reconcile_service_usage``, run by ``bootstrap``) later fails and
refunds every row pending for longer than ``SERVICE_CALL_TIMEOUT_SECONDS`` (or
the service's longer ``run_time_limit()``): a
call whose success was never recorded was never reported as a success either,
so it is not charged. A call that finishes after the reconciler failed it is
refused the same way (``usage_succeed`` returns False).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from credits import ledger
from services.exceptions import UnknownService
from services.models import Service, ServiceUsage
from users.models import CustomUser

logger = logging.getLogger(__name__)

ERROR_MAX_LENGTH = 300
STALE_ERROR = "The call did not finish within its time limit; not charged."

# Called with the pending usage inside the charging transaction.
UsageHook = Callable[[ServiceUsage], object]


def usage_start(
    user: CustomUser,
    service: Service,
    *,
    origin: str,
    summary: str,
    charge: bool,
    on_created: UsageHook | None = None,
    savepoint: bool = True,
) -> tuple[ServiceUsage, str]:
    """Charge the call (when ``charge``) and write its pending usage, in one transaction.

    Returns the usage and the charge's ledger reference ("" for an uncharged
    call). ``InsufficientCredits`` propagates and nothing is written.
    ``savepoint=False``: a caller inside its own transaction, which any error
    here rolls back whole, saves the savepoint's two statements (``atomic``'s).
    """
    reference = f"service:{service.name}:{uuid.uuid4().hex}" if charge else ""
    with transaction.atomic(savepoint=savepoint):
        entry = (
            ledger.consume(user, service.credit_cost, reference=reference, description=service.name)
            if charge
            else None
        )
        usage = ServiceUsage.objects.create(
            user=user,
            service=service,
            origin=origin,
            credits_charged=service.credit_cost if charge else Decimal("0.00"),
            ledger_entry=entry,
            status=ServiceUsage.Status.PENDING,
            input_summary=summary,
        )
        if on_created is not None:
            on_created(usage)
    return usage, reference


def usage_succeed(usage: ServiceUsage, *, duration_ms: int) -> bool:
    """Mark a pending call succeeded; False when it was no longer pending (reconciled)."""
    changed = ServiceUsage.objects.filter(pk=usage.pk, status=ServiceUsage.Status.PENDING).update(
        status=ServiceUsage.Status.SUCCEEDED, duration_ms=duration_ms
    )
    if changed:
        usage.status = ServiceUsage.Status.SUCCEEDED
        usage.duration_ms = duration_ms
    return bool(changed)


def usage_fail(
    usage: ServiceUsage, *, reference: str, error: str, reason: str, duration_ms: int = 0
) -> bool:
    """Mark a pending call failed and reverse its charge; False when it was no longer pending.

    The conditional UPDATE takes the row's lock before the reversal, so of two
    concurrent attempts (the call and the reconciler) exactly one reverses.
    """
    with transaction.atomic():
        changed = ServiceUsage.objects.filter(
            pk=usage.pk, status=ServiceUsage.Status.PENDING
        ).update(
            status=ServiceUsage.Status.FAILED,
            credits_charged=Decimal("0.00"),
            duration_ms=duration_ms,
            error=error[:ERROR_MAX_LENGTH],
        )
        if changed and reference:
            ledger.reverse(reference, reason=reason)
    if changed:
        usage.status = ServiceUsage.Status.FAILED
        usage.credits_charged = Decimal("0.00")
        usage.duration_ms = duration_ms
        usage.error = error[:ERROR_MAX_LENGTH]
    return bool(changed)


def usage_reconcile_stale(*, now: datetime | None = None) -> int:
    """Fail and refund every call pending for longer than it may take.

    That is ``SERVICE_CALL_TIMEOUT_SECONDS``, or the service's own
    ``run_time_limit()`` when it is longer (an LLM call's retries, a schema's
    second attempt): a call still running within its limit is left alone.
    Idempotent, and safe while calls finish: each row is changed only if it is
    still pending. Returns the number of calls failed.
    """
    moment = timezone.now() if now is None else now
    cutoff = moment - timedelta(seconds=settings.SERVICE_CALL_TIMEOUT_SECONDS)
    stale = (
        ServiceUsage.objects.filter(status=ServiceUsage.Status.PENDING, created_at__lt=cutoff)
        .select_related("service", "ledger_entry")
        .order_by("created_at", "id")
    )
    limits: dict[str, int] = {}
    failed = 0
    for usage in stale:
        name = usage.service.name
        if name not in limits:
            limits[name] = _call_time_limit(name)
        if usage.created_at >= moment - timedelta(seconds=limits[name]):
            continue  # still within its own limit
        reference = usage.ledger_entry.key if usage.ledger_entry is not None else ""
        if usage_fail(
            usage,
            reference=reference,
            error=STALE_ERROR,
            reason=f"Service {name} call never finished (reconciled)",
        ):
            failed += 1
            logger.warning(
                "service call reconciled as failed",
                extra={"usage": usage.pk, "service": name, "user_id": usage.user_id},
            )
    return failed


def _call_time_limit(service_name: str) -> int:
    """The longest one call of ``service_name`` may take, in seconds."""
    # Imported here: the registry imports services.base, which imports this module.
    from services.registry import create_service_instance

    default = int(settings.SERVICE_CALL_TIMEOUT_SECONDS)
    try:
        service = create_service_instance(service_name)
    except UnknownService:
        return default  # its code is gone: nothing can still be running it
    return max(default, service.run_time_limit())
