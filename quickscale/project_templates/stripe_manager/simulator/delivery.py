"""Delivering the simulator's events as Stripe does: signed, to the webhook endpoint.

Events go through Django's URL resolver to the real webhook view, in process,
once the simulator's transaction commits (the view must see what the
simulator wrote). An event the view does not accept stays queued and is sent
again before the next delivery, as Stripe retries. An accepted event is then
applied at once, in process, by the function the worker's task runs
(``webhook_queue.apply_received_event``), so the simulated payment is in by the
time its page loads; the worker's own task for it then finds it applied, and
an attempt that failed is retried by the worker, as with real Stripe.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from django.test import RequestFactory
from django.urls import resolve, reverse

from stripe_manager import signing, webhook_queue
from stripe_manager.models import SimulatedObject
from stripe_manager.simulator.store import Obj

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
            webhook_queue.apply_received_event(str(event["id"]))
        else:
            logger.warning(
                "simulated event not accepted",
                extra={"event_id": event["id"], "type": event["type"], "status": status},
            )
    return statuses
