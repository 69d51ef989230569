"""The dashboard home: headline figures and links to every page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from credits import ledger

pytestmark = pytest.mark.django_db


def test_the_home_page_shows_users_and_credits_sold_and_consumed(staff_client, customer):
    ledger.grant(customer, 20, source="purchase", reference="cs_1")
    ledger.grant(customer, 5, source="admin", reference="admin_1")
    ledger.consume(customer, 3, reference="use_1")

    page = staff_client.get(reverse("admin_dashboard:dashboard"))

    figures = page.context["headline"]
    assert figures.users == 2  # staff and customer
    assert figures.credits_sold == Decimal("20")
    assert figures.credits_consumed == Decimal("3")


def test_credits_older_than_thirty_days_do_not_count(staff_client, customer):
    from admin_dashboard.selectors import headline

    ledger.grant(customer, 20, source="purchase", reference="cs_1")

    assert headline(now=timezone.now() + timedelta(days=31)).credits_sold == 0


def test_the_home_page_links_every_dashboard_section(staff_client):
    html = staff_client.get(reverse("admin_dashboard:dashboard")).content.decode()

    for name in ("users", "audit"):
        assert reverse(f"admin_dashboard:{name}") in html


def test_the_home_page_counts_live_subscriptions_and_unresolved_webhook_failures(
    staff_client, customer
):
    from stripe_manager.models import UserSubscription, WebhookFailure

    UserSubscription.objects.create(user=customer, stripe_subscription_id="sub_1", status="active")
    UserSubscription.objects.create(
        user=customer, stripe_subscription_id="sub_2", status="canceled"
    )
    WebhookFailure.objects.create(event_id="evt_1", event_type="invoice.paid", error="boom")
    WebhookFailure.objects.create(
        event_id="evt_2", event_type="invoice.paid", error="boom", resolved_at=timezone.now()
    )

    figures = staff_client.get(reverse("admin_dashboard:dashboard")).context["headline"]

    assert (figures.active_subscriptions, figures.webhook_failures) == (1, 1)


def test_the_home_page_shows_stripe_events_waiting_for_a_worker(staff_client):
    from stripe_manager.models import ReceivedStripeEvent

    now = timezone.now()
    for number, waited in enumerate((90, 10)):
        ReceivedStripeEvent.objects.create(
            event_id=f"evt_due_{number}",
            event_type="checkout.session.completed",
            payload="{}",
            next_attempt_at=now - timedelta(seconds=waited),
        )
    ReceivedStripeEvent.objects.create(  # waiting for its retry: not due
        event_id="evt_later",
        event_type="invoice.paid",
        payload="{}",
        next_attempt_at=now + timedelta(minutes=5),
    )
    ReceivedStripeEvent.objects.create(
        event_id="evt_done",
        event_type="invoice.paid",
        state="processed",
        next_attempt_at=now - timedelta(hours=1),
    )

    page = staff_client.get(reverse("admin_dashboard:dashboard"))

    figures = page.context["headline"]
    assert figures.stripe_events_due == 2
    assert 90 <= figures.stripe_event_oldest_due_seconds < 120
    assert "2 events waiting for a worker, oldest 9" in page.content.decode()
