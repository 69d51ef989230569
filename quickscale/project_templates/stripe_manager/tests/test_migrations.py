"""Data migrations of stripe_manager, run against the real schema: backwards, data in, forwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)  # migrations run outside a test transaction

BEFORE = ("stripe_manager", "0007_received_stripe_events")
AFTER = ("stripe_manager", "0008_received_event_customer")


@pytest.fixture
def at_0007() -> Iterator[None]:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _store(event_id: str, obj: dict[str, object], state: str = "pending") -> None:
    payload = json.dumps({"id": event_id, "type": "x", "data": {"object": obj}})
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stripe_manager_receivedstripeevent (event_id, event_type, payload, state,"
            " attempts, received_at, next_attempt_at) VALUES (%s, 'x', %s, %s, 0, now(), now())",
            [event_id, payload, state],
        )


def test_events_not_applied_when_0008_runs_get_their_customer_from_the_payload(
    at_0007: None,
) -> None:
    _store("evt_id", {"object": "invoice", "customer": "cus_plain"})
    _store("evt_expanded", {"object": "charge", "customer": {"id": "cus_expanded"}})
    _store("evt_customer", {"object": "customer", "id": "cus_itself"})
    _store("evt_none", {"object": "price", "customer": None})
    _store("evt_done", {"object": "invoice", "customer": "cus_done"}, state="processed")
    _store("evt_given_up", {"object": "refund", "customer": "cus_resent"}, state="failed")
    # Valid JSON, yet neither jsonb nor a text column takes the NUL: dropped from the id.
    _store("evt_nul", {"object": "invoice", "customer": "cus_\u0000"})

    MigrationExecutor(connection).migrate([AFTER])

    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id, customer_id FROM stripe_manager_receivedstripeevent")
        found = dict(cursor.fetchall())
    assert found == {
        "evt_id": "cus_plain",
        "evt_expanded": "cus_expanded",
        "evt_customer": "cus_itself",
        "evt_none": "",
        "evt_done": "",  # applied already: its lock is of no use any more
        "evt_given_up": "cus_resent",  # Stripe's Resend may bring it back
        "evt_nul": "cus_",
    }
