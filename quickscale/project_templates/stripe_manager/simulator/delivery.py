"""Delivering the simulator's events as Stripe does: signed, to the webhook endpoint.

Events go through Django's URL resolver to the real webhook view, in process,
once the simulator's transaction commits (the view must see what the
simulator wrote). An event the view does not accept stays queued and is sent
again before the next delivery, as Stripe retries. An accepted event is then
applied at once, in process, by the processing the worker runs
(``webhooks.process_event``), so the simulated payment is in by the time its
page loads, even when a running worker took the stored row first: the
``ProcessedStripeEvent`` claim lets one of the two apply it (the other waits
for its commit, then finds it done) and marks the row processed either way.
An attempt that fails here is left to the worker, which retries it as with
real Stripe.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from django.test import RequestFactory
from django.urls import resolve, reverse

from stripe_manager import signing
from stripe_manager.models import SimulatedObject
from stripe_manager.simulator.store import Obj
from stripe_manager.webhooks import process_event

logger = logging.getLogger(__name__)


def deliver(events: list[Obj]) -> None:
    """Send ``events`` to the webhook endpoint once the current transaction commits."""
    for event in events:
        SimulatedObject.objects.create(object_id=event["id"], kind="event", data=event)
    transaction.on_commit(lambda: deliver_now(events))


def deliver_now(events: list[Obj]) -> list[int]:
    """POST the queued events, then ``events``, signed; return the status codes."""
    queued = list(
        SimulatedObject.objects.filter(kind="event")
        .exclude(object_id__in=[e["id"] for e in events])
        .order_by("created_at")
        .values_list("data", flat=True)
    )
    statuses = []
    path = reverse("stripe_manager:webhook")
    view = resolve(path).func
    factory = RequestFactory()
    for event in [*queued, *events]:
        body = json.dumps(event).encode()
        request = factory.post(
            path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signing.sign(body, settings.STRIPE_WEBHOOK_SECRET),
        )
        status = view(request).status_code
        statuses.append(status)
        if 200 <= status < 300:
            SimulatedObject.objects.filter(object_id=event["id"], kind="event").delete()
            _apply_in_process(event)
        else:
            logger.warning(
                "simulated event not accepted",
                extra={"event_id": event["id"], "type": event["type"], "status": status},
            )
    return statuses


def _apply_in_process(event: Obj) -> None:
    try:
        process_event(event)
    except Exception as error:
        # Nothing of it was kept; the stored row is the worker's to retry and count.
        logger.info(
            "simulated event left to the worker",
            extra={"event_id": event["id"], "type": event["type"], "error": repr(error)[:500]},
        )
