"""The audit log: append-only rows, a filterable page, read-only in Django admin."""

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from admin_dashboard.models import AuditLog, AuditLogError
from admin_dashboard.services import audit
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_audit_records_who_what_whom_why_and_details(staff, customer):
    row = audit(
        staff,
        AuditLog.Action.CREDIT_ADJUSTMENT,
        target_user=customer,
        reason="goodwill",
        details={"amount": "5"},
    )

    row.refresh_from_db()
    assert (row.actor, row.action, row.target_user, row.reason) == (
        staff,
        "credit_adjustment",
        customer,
        "goodwill",
    )
    assert row.target_label == customer.email
    assert row.details == {"amount": "5"}
    assert row.created_at <= timezone.now()


def test_audit_with_a_reference_seen_before_writes_one_row(staff, customer):
    first = audit(staff, AuditLog.Action.REFUND, target_user=customer, reference="tok")
    second = audit(staff, AuditLog.Action.REFUND, target_user=customer, reference="tok")

    assert first.pk == second.pk
    assert AuditLog.objects.count() == 1


def test_an_audit_row_cannot_be_changed_or_deleted(staff):
    row = audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="first")
    row.reason = "rewritten"

    with pytest.raises(AuditLogError):
        row.save()
    with pytest.raises(AuditLogError):
        row.delete()
    assert AuditLog.objects.get().reason == "first"


def _page(staff_client: Any, **query: Any) -> Any:
    return staff_client.get(reverse("admin_dashboard:audit"), query)


def test_the_audit_page_lists_entries_newest_first(staff_client, staff, customer):
    audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="older")
    audit(staff, AuditLog.Action.CREDIT_ADJUSTMENT, target_user=customer, reason="newer")

    html = _page(staff_client).content.decode()

    assert html.index("newer") < html.index("older")


def test_the_audit_page_filters_by_action_staff_customer_and_date(staff_client, staff, customer):
    other_staff = make_user(is_staff=True, email="other-staff@example.com")
    audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="sync-row")
    audit(other_staff, AuditLog.Action.CREDIT_ADJUSTMENT, target_user=customer, reason="adj-row")
    yesterday = (timezone.now() - timedelta(days=1)).date()
    tomorrow = (timezone.now() + timedelta(days=1)).date()

    by_action = _page(staff_client, action="product_sync").content.decode()
    by_staff = _page(staff_client, actor="other-staff@example.com").content.decode()
    by_customer = _page(staff_client, target=customer.email).content.decode()
    in_range = _page(staff_client, date_from=yesterday, date_to=tomorrow).content.decode()
    past = _page(staff_client, date_to=yesterday).content.decode()

    assert "sync-row" in by_action and "adj-row" not in by_action
    assert "adj-row" in by_staff and "sync-row" not in by_staff
    assert "adj-row" in by_customer and "sync-row" not in by_customer
    assert "adj-row" in in_range and "sync-row" in in_range
    assert "adj-row" not in past and "sync-row" not in past


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "yesterday"},
        {"date_to": "2024-13-45"},
        {"date_to": "9999-12-31"},
        {"date_from": "2024-02-10", "date_to": "2024-02-01"},
        {"actor": "not an email"},
        {"action": "drop_tables"},
    ],
)
def test_a_malformed_audit_filter_gets_a_clear_message_not_a_500(staff_client, query):
    response = _page(staff_client, **query)

    assert response.status_code == 400
    assert b"is-danger" in response.content


def test_the_audit_page_offers_no_way_to_edit_or_delete(staff_client, staff):
    audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="sync")

    html = _page(staff_client).content.decode()

    assert '<form method="post"' not in html.split('id="audit-table"')[1]


@pytest.fixture
def superuser_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_django_admin_shows_the_audit_log_read_only(superuser_client, staff):
    row = audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="sync")

    listing = superuser_client.get(reverse("admin:admin_dashboard_auditlog_changelist"))
    detail = superuser_client.get(reverse("admin:admin_dashboard_auditlog_change", args=[row.pk]))
    searched = superuser_client.get(
        reverse("admin:admin_dashboard_auditlog_changelist"), {"q": "sync"}
    )

    assert listing.status_code == detail.status_code == searched.status_code == 200
    assert b'name="_save"' not in detail.content


def test_django_admin_cannot_add_change_or_delete_audit_rows(superuser_client, staff):
    row = audit(staff, AuditLog.Action.PRODUCT_SYNC, reason="sync")

    add = superuser_client.get(reverse("admin:admin_dashboard_auditlog_add"))
    change = superuser_client.post(
        reverse("admin:admin_dashboard_auditlog_change", args=[row.pk]), {"reason": "edited"}
    )
    delete = superuser_client.post(
        reverse("admin:admin_dashboard_auditlog_delete", args=[row.pk]), {"post": "yes"}
    )

    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert AuditLog.objects.get().reason == "sync"
