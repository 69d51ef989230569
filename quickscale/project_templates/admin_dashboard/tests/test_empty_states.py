"""An empty list says so once: in its table, not again under it."""

import pytest
from django.urls import reverse

from admin_dashboard.models import AuditLog
from admin_dashboard.services import audit
from common.testing.html import texts

pytestmark = pytest.mark.django_db

EMPTY_PHRASES = ("Nothing recorded", "No results", "No account matches", "No payment")


def said(html: str) -> int:
    """How many times the page says, one way or another, that there is nothing."""
    return sum(html.count(phrase) for phrase in EMPTY_PHRASES)


def test_an_empty_audit_log_says_it_once_and_what_will_appear(staff_client):
    html = staff_client.get(reverse("admin_dashboard:audit")).content.decode()

    assert said(html) == 1
    assert texts(html)["audit-empty"].startswith("Nothing recorded yet:")
    assert "result-count" not in html


def test_filters_that_match_nothing_say_so_once(staff_client, staff):
    audit(staff, AuditLog.Action.SERVICE_TOGGLE, reason="off for maintenance")
    html = staff_client.get(reverse("admin_dashboard:audit"), {"action": "refund"}).content.decode()

    assert said(html) == 1
    assert texts(html)["audit-empty"] == "Nothing recorded matches these filters."


def test_a_log_with_rows_shows_the_count_and_no_empty_state(staff_client, staff):
    audit(staff, AuditLog.Action.SERVICE_TOGGLE, reason="off for maintenance")
    html = staff_client.get(reverse("admin_dashboard:audit")).content.decode()

    assert said(html) == 0
    assert texts(html)["result-count"] == "Showing 1\u20131 of 1"  # an en dash


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("admin_dashboard:users", {"email": "nobody-here"}),
        ("admin_dashboard:payments", {"email": "nobody-here"}),
    ],
)
def test_the_users_and_payments_searches_say_nothing_matched_once(staff_client, name, query):
    html = staff_client.get(reverse(name), query).content.decode()

    assert said(html) == 1


def test_no_payments_at_all_is_not_called_a_filter_result(staff_client):
    html = staff_client.get(reverse("admin_dashboard:payments")).content.decode()

    assert said(html) == 1
    assert texts(html)["payments-empty"].startswith("No payments yet:")
