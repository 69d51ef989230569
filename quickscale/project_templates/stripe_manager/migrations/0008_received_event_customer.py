"""The Stripe customer a stored event is about, read when it is received.

The worker takes the customer's advisory lock in the same statement that
takes the event (``webhooks._claim_due``), so it needs the customer before it
reads the payload. Events not applied yet when this runs (waiting, or given up
and perhaps resent later) get theirs from their payload, read as
``webhooks.customer_of`` reads it; a payload that is not JSON keeps none.

The column has a database default: web processes of the previous release,
whose inserts do not name it, keep storing events during a rolling deploy.
"""

import json
from typing import Any

from django.db import migrations, models


def _customer_of(payload: str) -> str:
    return _found_customer(payload).replace("\x00", "")[:255]


def _found_customer(payload: str) -> str:
    try:
        obj = json.loads(payload)["data"]["object"]
    except (ValueError, KeyError, TypeError):
        return ""
    if not isinstance(obj, dict):
        return ""
    if obj.get("object") == "customer":
        return str(obj.get("id") or "")
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return str(customer.get("id", ""))
    return str(customer or "")


def backfill(apps: Any, schema_editor: Any) -> None:
    events = apps.get_model("stripe_manager", "ReceivedStripeEvent")
    waiting = events.objects.filter(state__in=["pending", "failed"]).exclude(payload="")
    for event in waiting.only("id", "payload").iterator():
        customer_id = _customer_of(event.payload)
        if customer_id:
            events.objects.filter(id=event.id).update(customer_id=customer_id)


class Migration(migrations.Migration):
    dependencies = [("stripe_manager", "0007_received_stripe_events")]

    operations = [
        migrations.AddField(
            model_name="receivedstripeevent",
            name="customer_id",
            field=models.CharField(blank=True, db_default="", max_length=255),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
