"""Refunds from the dashboard go through stripe_manager's one refund function, once."""

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from admin_dashboard import services
from admin_dashboard.models import AuditLog, RefundRequest
from admin_dashboard.tests.conftest import buy_credits
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state
from stripe_manager.models import Payment, Refund

pytestmark = pytest.mark.django_db


def _refund(client: Any, payment: Payment, **data: Any) -> Any:
    payload = {"reason": "Customer asked", "seen": str(services.refund_requests_seen(payment))}
    payload.update(data)
    return client.post(reverse("admin_dashboard:payment_refund", args=[payment.pk]), payload)


def _state(payment: Payment) -> tuple[Any, ...]:
    payment.refresh_from_db()
    return (
        payment.status,
        payment.amount_refunded,
        Refund.objects.filter(status=Refund.Status.SUCCEEDED).count(),
        ledger_state(),
    )


def test_a_full_refund_returns_the_money_takes_back_the_credits_and_is_audited(
    staff_client, staff, customer, purchase, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _refund(staff_client, purchase, reason="Duplicate purchase")

    assert response.status_code == 302
    purchase.refresh_from_db()
    assert purchase.status == Payment.Status.REFUNDED
    assert purchase.amount_refunded == Decimal("10.00")
    refund = Refund.objects.get()
    assert (refund.status, refund.requested_by, refund.credits_reversed) == (
        Refund.Status.SUCCEEDED,
        staff,
        Decimal("100"),
    )
    assert ledger.balance(customer).total == 0
    row = AuditLog.objects.get(action=AuditLog.Action.REFUND)
    assert (row.actor, row.target_user, row.reason) == (staff, customer, "Duplicate purchase")
    assert row.details["refunded"] == "10.00"
    assert_invariants(customer)


def test_a_partial_refund_takes_back_its_share_of_the_credits(staff_client, customer, purchase):
    response = _refund(staff_client, purchase, amount="2.50")

    assert response.status_code == 302
    purchase.refresh_from_db()
    assert purchase.status == Payment.Status.PARTIALLY_REFUNDED
    assert ledger.balance(customer).total == Decimal("75")


def test_stripes_later_charge_refunded_event_changes_nothing_more(
    staff_client, customer, purchase, django_capture_on_commit_callbacks
):
    # The simulator delivers charge.refunded after its transaction commits, i.e.
    # during the request here; the staff action then finds the refund applied.
    with django_capture_on_commit_callbacks(execute=True):
        _refund(staff_client, purchase)

    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REVERSAL).count() == 1
    assert Refund.objects.count() == 1
    assert ledger.balance(customer).total == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "10.01"}, b"left to refund"),
        ({"amount": "0"}, b"greater than or equal to 0.01"),
        ({"amount": "lots"}, b"Enter a number"),
        ({"reason": ""}, b"This field is required"),
        ({"reason": "  "}, b"reason"),
        ({"seen": "x"}, b"Enter a whole number"),
        ({"seen": "99999999999"}, b"less than or equal to"),
    ],
    ids=[
        "over refundable",
        "zero",
        "non-numeric",
        "no reason",
        "blank reason",
        "bad seen",
        "seen beyond integer",
    ],
)
def test_a_refused_refund_says_why_and_changes_nothing(staff_client, purchase, data, message):
    before = _state(purchase)

    response = _refund(staff_client, purchase, **data)

    assert response.status_code == 400
    assert message in response.content
    assert _state(purchase) == before


def test_a_failed_payment_cannot_be_refunded(staff_client, staff, purchase):
    Payment.objects.filter(pk=purchase.pk).update(status=Payment.Status.FAILED)
    before = _state(purchase)

    response = _refund(staff_client, purchase)

    assert response.status_code == 400
    assert b"only paid payments can be refunded" in response.content
    assert _state(purchase) == before
    row = AuditLog.objects.get(action=AuditLog.Action.REFUND_FAILED)
    assert row.actor == staff


def test_a_second_click_on_the_same_form_refunds_nothing_more(staff_client, purchase):
    seen = str(services.refund_requests_seen(purchase))

    first = _refund(staff_client, purchase, amount="2", seen=seen)
    second = _refund(staff_client, purchase, amount="2", seen=seen)

    assert first.status_code == 302
    assert second.status_code == 400
    assert b"already requested" in second.content
    purchase.refresh_from_db()
    assert purchase.amount_refunded == Decimal("2.00")
    assert Refund.objects.count() == 1


def test_a_refund_after_reloading_the_page_is_a_new_request(staff_client, purchase):
    _refund(staff_client, purchase, amount="2")
    _refund(staff_client, purchase, amount="3")

    purchase.refresh_from_db()
    assert purchase.amount_refunded == Decimal("5.00")
    assert RefundRequest.objects.count() == 2


def test_a_full_refund_then_another_is_refused_by_the_refund_function(staff_client, purchase):
    _refund(staff_client, purchase)
    response = _refund(staff_client, purchase)

    assert response.status_code == 400
    assert b"left to refund" in response.content or b"only paid payments" in response.content
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("amount", [None, Decimal("4.00")], ids=["full", "partial"])
def test_two_staff_refunding_the_same_payment_at_once_refund_once(
    staff, customer, demo_catalog, django_capture_on_commit_callbacks, amount
):
    """Two threads submit the same page state at the same moment.

    transaction=True because the guard is a committed RefundRequest row seen by
    another connection, and refund_payment's row lock and commit order only
    mean something across real transactions; in the default test transaction
    both threads would share nothing.
    """
    payment = buy_credits(customer, capture=django_capture_on_commit_callbacks)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait()
            services.refund(actor=staff, payment=payment, amount=amount, reason="dup", seen=0)
            outcomes.append("refunded")
        except services.DashboardError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refunded", "refused"]
    payment.refresh_from_db()
    assert payment.amount_refunded == (amount or payment.amount)
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REVERSAL).count() == 1
    assert_invariants(customer)


def test_the_refund_page_asks_for_confirmation_and_shows_what_is_left(staff_client, purchase):
    page = staff_client.get(reverse("admin_dashboard:payment_refund", args=[purchase.pk]))

    assert page.status_code == 200
    assert b'x-data="confirmSubmit"' in page.content
    assert b"$10.00 left to refund" in page.content


def test_a_charge_refunded_event_delivered_again_later_changes_nothing(
    staff_client, customer, purchase, client
):
    from stripe_manager import shapes
    from stripe_manager.models import SimulatedObject
    from stripe_manager.tests.factories import deliver

    _refund(staff_client, purchase)
    before = _state(purchase)
    charge = SimulatedObject.objects.get(
        kind="charge", data__payment_intent=purchase.stripe_payment_intent_id
    ).data

    assert deliver(client, shapes.event("charge.refunded", charge)) == 200

    assert _state(purchase) == before
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REVERSAL).count() == 1
