"""Users: search, the user page with balance by lot, credit adjustments with a reason."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from admin_dashboard.forms import new_token
from admin_dashboard.models import AuditLog
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_user_search_finds_accounts_by_part_of_their_email(staff_client, customer):
    make_user(email="someone-else@example.org")

    html = staff_client.get(reverse("admin_dashboard:users"), {"email": "CUSTOMER@"}).content

    assert b"customer@example.com" in html
    assert b"someone-else@example.org" not in html


def test_the_user_page_splits_the_balance_by_lot(staff_client, customer):
    ledger.grant(customer, 10, source="purchase", reference="cs_1")
    ledger.grant(
        customer,
        Decimal("7.50"),
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=30),
    )

    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert page.status_code == 200
    assert page.context["balance"].total == Decimal("17.50")
    assert page.context["balance"].subscription == Decimal("7.50")
    assert [lot.reference for lot in page.context["lots"]] == ["in_1", "cs_1"]
    assert b"cs_1" in page.content and b"in_1" in page.content


def _adjust(client: Any, user: Any, *, headers: Any = None, **data: Any) -> Any:
    payload = {"direction": "grant", "amount": "5", "reason": "goodwill", "token": new_token()}
    payload.update(data)
    return client.post(
        reverse("admin_dashboard:user_adjust", args=[user.pk]), payload, headers=headers or {}
    )


def test_staff_grant_credits_with_a_reason_through_the_ledger_and_the_audit_log(
    staff_client, staff, customer
):
    response = _adjust(staff_client, customer, amount="12.50", reason="Compensation for outage")

    assert response.status_code == 302
    entry = LedgerEntry.objects.get(user=customer)
    assert entry.kind == LedgerEntry.Kind.ADJUSTMENT
    assert entry.amount == Decimal("12.50")
    assert (entry.actor, entry.reason) == (staff, "Compensation for outage")
    row = AuditLog.objects.get()
    assert (row.actor, row.action, row.target_user, row.reason) == (
        staff,
        AuditLog.Action.CREDIT_ADJUSTMENT,
        customer,
        "Compensation for outage",
    )
    assert ledger.balance(customer).total == Decimal("12.50")
    assert_invariants(customer)


def test_staff_deduct_credits_up_to_the_balance(staff_client, customer):
    ledger.grant(customer, 10, source="purchase", reference="cs_1")

    response = _adjust(staff_client, customer, direction="deduct", amount="10", reason="abuse")

    assert response.status_code == 302
    assert ledger.balance(customer).total == 0
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.ADJUSTMENT).amount == Decimal("-10")
    assert_invariants(customer)


def test_a_deduction_above_what_running_calls_leave_available_is_refused(staff_client, customer):
    ledger.grant(customer, 10, source="purchase", reference="cs_1")
    ledger.hold(customer, 4, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    before = ledger_state()

    response = _adjust(staff_client, customer, direction="deduct", amount="7", reason="abuse")

    assert b"6 credits available" in response.content
    assert ledger_state() == before
    assert b'id="balance-reserved">4 held by running calls; 6 available' in response.content


def test_an_htmx_adjustment_answers_with_the_refreshed_credits_panel(staff_client, customer):
    response = _adjust(staff_client, customer, amount="3", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert response.content.lstrip().startswith(b'<div id="credits-panel">')
    assert b'id="balance-total">3' in response.content


def test_the_same_form_submitted_twice_adjusts_and_audits_once(staff_client, customer):
    token = new_token()

    _adjust(staff_client, customer, amount="5", token=token)
    _adjust(staff_client, customer, amount="5", token=token)

    assert ledger.balance(customer).total == 5
    assert AuditLog.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason": ""}, b"This field is required"),
        ({"reason": "   "}, b"reason"),
        ({"amount": "ten"}, b"Enter a number"),
        ({"amount": "0"}, b"greater than or equal to 0.01"),
        ({"amount": "-5"}, b"greater than or equal to 0.01"),
        ({"amount": "1.001"}, b"decimal places"),
        ({"direction": "steal"}, b"Select a valid choice"),
        ({"token": "forged"}, b"expired"),
        ({"direction": "deduct", "amount": "10.01"}, b"below zero"),
    ],
    ids=[
        "no reason",
        "blank reason",
        "non-numeric",
        "zero",
        "negative",
        "three decimals",
        "bad direction",
        "bad token",
        "deduction beyond balance",
    ],
)
def test_a_refused_adjustment_says_why_and_changes_nothing(staff_client, customer, data, message):
    ledger.grant(customer, 10, source="purchase", reference="cs_1")
    before = (ledger_state(), AuditLog.objects.count())

    response = _adjust(staff_client, customer, **data)

    assert response.status_code == 400
    assert message in response.content
    assert (ledger_state(), AuditLog.objects.count()) == before


def test_a_refused_htmx_adjustment_shows_the_error_in_the_panel(staff_client, customer):
    response = _adjust(
        staff_client, customer, direction="deduct", amount="1", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert b'id="adjust-error"' in response.content
    assert LedgerEntry.objects.count() == 0


def test_the_user_page_lists_staff_actions_on_the_account(staff_client, customer):
    _adjust(staff_client, customer, reason="Loyalty bonus")

    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert b"Loyalty bonus" in page.content.split(b'id="user-audit"')[1]


def test_an_unknown_user_is_404(staff_client):
    assert (
        staff_client.get(reverse("admin_dashboard:user_detail", args=[999999])).status_code == 404
    )


def _subscribe(user: Any, status: str) -> None:
    from stripe_manager.models import UserSubscription

    UserSubscription.objects.create(
        user=user, stripe_subscription_id=f"sub_{user.pk}_{status}", status=status
    )


def test_the_user_list_filters_by_subscription_status(staff_client, customer):
    canceled = make_user(email="canceled@example.com")
    never = make_user(email="never@example.com")
    _subscribe(customer, "active")
    _subscribe(canceled, "canceled")

    def emails(subscription: str) -> set[str]:
        response = staff_client.get(
            reverse("admin_dashboard:users"), {"subscription": subscription}
        )
        return {u.email for u in response.context["page"].rows}

    assert emails("live") == {customer.email}
    assert emails("canceled") == {canceled.email}
    assert never.email in emails("none")
    assert customer.email not in emails("none") and canceled.email not in emails("none")


def test_an_unknown_subscription_filter_is_a_clear_400(staff_client):
    response = staff_client.get(reverse("admin_dashboard:users"), {"subscription": "vip"})

    assert response.status_code == 400
    assert b"Select a valid choice" in response.content


def test_the_user_page_shows_plan_payments_and_usage(staff_client, customer):
    _subscribe(customer, "active")

    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert page.context["subscription"].status == "active"
    assert b'id="user-payments"' in page.content and b'id="user-usage"' in page.content


def test_the_user_page_shows_a_trials_end(staff_client, customer):
    from datetime import UTC, datetime

    from stripe_manager.models import UserSubscription

    UserSubscription.objects.create(
        user=customer,
        stripe_subscription_id="sub_trial",
        status="trialing",
        trial_end=datetime(2031, 5, 17, tzinfo=UTC),
    )

    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert "Trialing · trial ends 2031-05-17" in page.content.decode()
