"""Only staff reach the dashboard: every URL and HTMX endpoint, GET and POST."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, reverse

from admin_dashboard import urls
from admin_dashboard.models import AuditLog, RefundRequest
from credits.tests.factories import ledger_state
from services.models import Service
from stripe_manager.models import Refund, StripeProduct
from users.models import LoginLockout

pytestmark = pytest.mark.django_db

# Placeholder values for each URL converter: the access check runs before any lookup.
SAMPLE = {"int": 1, "str": "text_sentiment_analysis"}


def _dashboard_urls() -> Iterator[Any]:
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {
            name: SAMPLE["int" if converter.regex == "[0-9]+" else "str"]
            for name, converter in pattern.pattern.converters.items()
        }
        yield pytest.param(
            reverse(f"admin_dashboard:{pattern.name}", kwargs=kwargs), id=pattern.name
        )


DASHBOARD_URLS = list(_dashboard_urls())


def _everything() -> tuple[object, ...]:
    """All a dashboard action could change."""
    return (
        ledger_state(),
        AuditLog.objects.count(),
        RefundRequest.objects.count(),
        Refund.objects.count(),
        tuple(Service.objects.order_by("name").values_list("name", "is_active", "credit_cost")),
        tuple(StripeProduct.objects.order_by("id").values_list("stripe_price_id", "active")),
        LoginLockout.objects.count(),
    )


@pytest.mark.parametrize("url", DASHBOARD_URLS)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_signed_in_member_who_is_not_staff_gets_403_and_changes_nothing(
    member_client, customer, url, htmx
):
    Service.objects.create(name=str(SAMPLE["str"]), credit_cost=1)
    headers = {"HX-Request": "true"} if htmx else {}
    before = _everything()

    assert member_client.get(url, headers=headers).status_code == 403
    post = member_client.post(
        url,
        {"amount": "5", "reason": "x", "direction": "grant", "credit_cost": "9", "seen": "0"},
        headers=headers,
    )
    assert post.status_code == 403

    assert _everything() == before


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_an_anonymous_visitor_is_sent_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_an_inactive_staff_account_gets_403(client, staff):
    staff.is_active = False
    staff.save()
    client.force_login(staff)

    assert client.get(reverse("admin_dashboard:dashboard")).status_code in (302, 403)


def test_staff_see_the_dashboard_link_in_the_navbar(staff_client):
    page = staff_client.get(reverse("public:index"))

    assert reverse("admin_dashboard:dashboard").encode() in page.content


def test_members_do_not_see_the_dashboard_link(member_client):
    page = member_client.get(reverse("public:index"))

    assert reverse("admin_dashboard:dashboard").encode() not in page.content
