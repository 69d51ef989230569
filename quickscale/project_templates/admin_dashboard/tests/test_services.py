"""Services: HTMX on/off switch, cost editing, analytics over a period."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from admin_dashboard.models import AuditLog
from services.models import Service, ServiceUsage
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    return Service.objects.create(name="echo", credit_cost=Decimal("2.00"), description="Echo")


def test_the_services_page_lists_every_service_with_its_switch(staff_client, service):
    Service.objects.create(name="sleeper", is_active=False)

    page = staff_client.get(reverse("admin_dashboard:services"))

    assert b'id="service-echo"' in page.content
    assert b"Switch off" in page.content and b"Switch on" in page.content


def test_an_htmx_toggle_switches_the_service_off_and_returns_its_row(staff_client, staff, service):
    response = staff_client.post(
        reverse("admin_dashboard:service_toggle", args=["echo"]), {}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<tr id="service-echo"')
    service.refresh_from_db()
    assert service.is_active is False
    row = AuditLog.objects.get()
    assert (row.actor, row.action, row.details) == (
        staff,
        AuditLog.Action.SERVICE_TOGGLE,
        {"is_active": False},
    )


def test_a_plain_post_toggle_switches_the_service_on_and_redirects(staff_client, service):
    Service.objects.filter(pk=service.pk).update(is_active=False)

    response = staff_client.post(
        reverse("admin_dashboard:service_toggle", args=["echo"]), {"active": "on"}
    )

    assert response.status_code == 302
    service.refresh_from_db()
    assert service.is_active is True


def test_switching_off_asks_for_confirmation(staff_client, service):
    page = staff_client.get(reverse("admin_dashboard:services"))

    assert b"hx-confirm" in page.content


def test_staff_change_a_service_cost(staff_client, staff, service):
    response = staff_client.post(
        reverse("admin_dashboard:service_detail", args=["echo"]), {"credit_cost": "3.50"}
    )

    assert response.status_code == 302
    service.refresh_from_db()
    assert service.credit_cost == Decimal("3.50")
    assert AuditLog.objects.get().details == {"from": "2.00", "to": "3.50"}


@pytest.mark.parametrize("cost", ["-1", "free", "1.234", ""])
def test_a_bad_cost_is_refused_and_changes_nothing(staff_client, service, cost):
    response = staff_client.post(
        reverse("admin_dashboard:service_detail", args=["echo"]), {"credit_cost": cost}
    )

    assert response.status_code == 400
    service.refresh_from_db()
    assert service.credit_cost == Decimal("2.00")
    assert AuditLog.objects.count() == 0


def _usage(
    service: Service, user: Any, status: str, *, days_ago: int = 0, charged: str = "2"
) -> None:
    usage = ServiceUsage.objects.create(
        user=user,
        service=service,
        status=status,
        credits_charged=Decimal(charged) if status == "succeeded" else Decimal("0"),
    )
    ServiceUsage.objects.filter(pk=usage.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )


def test_analytics_count_calls_credits_users_and_failures_in_the_period(
    staff_client, service, customer
):
    other = make_user()
    _usage(service, customer, "succeeded")
    _usage(service, customer, "succeeded")
    _usage(service, other, "failed")
    _usage(service, other, "refunded")
    _usage(service, other, "succeeded", days_ago=10)

    week = staff_client.get(reverse("admin_dashboard:service_detail", args=["echo"]), {"days": 7})
    month = staff_client.get(reverse("admin_dashboard:service_detail", args=["echo"]), {"days": 30})

    stats = week.context["stats"]
    assert (stats.calls, stats.credits_consumed, stats.unique_users) == (4, Decimal("4"), 2)
    assert stats.failure_rate == 50.0
    assert month.context["stats"].calls == 5
    assert len(week.context["recent"]) == 5


def test_analytics_take_an_explicit_date_range(staff_client, service, customer):
    _usage(service, customer, "succeeded", days_ago=3)
    today = timezone.now().date()

    response = staff_client.get(
        reverse("admin_dashboard:service_detail", args=["echo"]),
        {"date_from": today - timedelta(days=4), "date_to": today - timedelta(days=2)},
    )

    assert response.context["stats"].calls == 1


@pytest.mark.parametrize(
    "query", [{"days": "forever"}, {"date_from": "soon"}, {"date_to": "9999-12-31"}]
)
def test_a_malformed_period_gets_a_clear_message(staff_client, service, query):
    response = staff_client.get(reverse("admin_dashboard:service_detail", args=["echo"]), query)

    assert response.status_code == 400
    assert b"help is-danger" in response.content


def test_an_unknown_service_is_404(staff_client):
    response = staff_client.get(reverse("admin_dashboard:service_detail", args=["nope"]))
    assert response.status_code == 404
