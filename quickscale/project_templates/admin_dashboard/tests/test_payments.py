"""Payment search (filters, 25 a page, capped count) and the investigation page."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from admin_dashboard.models import AuditLog
from common import pagination
from credits import ledger
from stripe_manager.models import Payment
from stripe_manager.refunds import refund_apply
from stripe_manager.selectors import PaymentFilters, payment_search
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

_n = iter(range(1, 1_000_000))


def make_payment(user: Any, **fields: Any) -> Payment:
    n = next(_n)
    values: dict[str, Any] = {
        "kind": Payment.Kind.CREDIT_PURCHASE,
        "status": Payment.Status.SUCCEEDED,
        "amount": Decimal("10.00"),
        "credits": Decimal("100"),
        "stripe_checkout_session_id": f"cs_test_{n}",
        "stripe_payment_intent_id": f"pi_test_{n}",
        "receipt_number": f"R-TEST-{n}",
    }
    values.update(fields)
    return Payment.objects.create(user=user, **values)


def _search(client: Any, **query: Any) -> Any:
    return client.get(reverse("admin_dashboard:payments"), query)


def _receipts(response: Any) -> set[str]:
    return {p.receipt_number for p in response.context["page"].rows}


@pytest.fixture
def payments(customer):
    other = make_user(email="other@example.org")
    old = make_payment(customer, amount=Decimal("5.00"))
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    return {
        "old": old,
        "sub": make_payment(
            customer,
            kind=Payment.Kind.SUBSCRIPTION,
            amount=Decimal("15.00"),
            stripe_checkout_session_id="",
            stripe_invoice_id="in_test_1",
            stripe_subscription_id="sub_test_1",
        ),
        "failed": make_payment(other, status=Payment.Status.FAILED, amount=Decimal("99.00")),
        "refunded": make_payment(other, status=Payment.Status.REFUNDED, amount=Decimal("20.00")),
    }


def test_every_filter_of_the_payment_search_narrows_the_results(staff_client, payments):
    p = payments
    today = timezone.now().date()

    def receipts(**query: Any) -> set[str]:
        return _receipts(_search(staff_client, **query))

    assert receipts(kind="subscription") == {p["sub"].receipt_number}
    assert receipts(status="failed") == {p["failed"].receipt_number}
    assert receipts(email="OTHER@example.org") == {
        p["failed"].receipt_number,
        p["refunded"].receipt_number,
    }
    assert receipts(email="customer@") == {p["old"].receipt_number, p["sub"].receipt_number}
    assert receipts(stripe_id="in_test_1") == {p["sub"].receipt_number}
    assert receipts(stripe_id="sub_test_1") == {p["sub"].receipt_number}
    assert receipts(stripe_id=p["old"].stripe_payment_intent_id) == {p["old"].receipt_number}
    assert receipts(stripe_id=p["old"].stripe_checkout_session_id) == {p["old"].receipt_number}
    assert receipts(amount_min="15", amount_max="20") == {
        p["sub"].receipt_number,
        p["refunded"].receipt_number,
    }
    assert receipts(date_to=today - timedelta(days=30)) == {p["old"].receipt_number}
    assert p["old"].receipt_number not in receipts(date_from=today - timedelta(days=1))


def test_search_results_come_25_a_page_newest_first(staff_client, customer):
    for _ in range(30):
        make_payment(customer)

    first = _search(staff_client, email="customer@example.com")
    second = _search(staff_client, email="customer@example.com", page=2)

    assert len(first.context["page"].rows) == 25
    assert len(second.context["page"].rows) == 5
    ids = [p.pk for p in first.context["page"].rows]
    assert ids == sorted(ids, reverse=True)
    assert b"Showing 1\xe2\x80\x9325 of 30" in first.content


def test_the_count_stops_at_a_thousand(customer, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)
    for _ in range(12):
        make_payment(customer)

    page = pagination.capped_page(payment_search(PaymentFilters()), page=1)

    assert page.capped
    assert page.count_label == "10+"


def test_a_search_costs_the_same_queries_whatever_the_page(
    staff_client, customer, django_assert_max_num_queries
):
    for _ in range(60):
        make_payment(customer)

    with django_assert_max_num_queries(8):
        _search(staff_client, page=2, status="succeeded")


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "last tuesday"},
        {"date_to": "2024-02-30"},
        {"date_to": "9999-12-31"},
        {"date_from": "2024-03-01", "date_to": "2024-02-01"},
        {"amount_min": "ten"},
        {"amount_max": "1e999"},
        {"amount_min": "-5"},
        {"amount_min": "50", "amount_max": "5"},
        {"status": "stolen"},
        {"kind": "<script>"},
    ],
)
def test_a_malformed_search_gets_a_clear_message_not_a_500(staff_client, payments, query):
    response = _search(staff_client, **query)

    assert response.status_code == 400
    assert b"help is-danger" in response.content
    assert AuditLog.objects.count() == 0


def test_each_search_is_audited_with_its_filters(staff_client, staff, payments):
    _search(staff_client, status="failed", email="other@example.org")

    row = AuditLog.objects.get()
    assert (row.actor, row.action) == (staff, AuditLog.Action.PAYMENT_SEARCH)
    assert row.details["filters"] == {"status": "failed", "email": "other@example.org"}
    assert row.details["results"] == "1"


def test_the_investigation_page_shows_payment_history_entries_and_live_stripe_data(
    staff_client, staff, purchase
):
    response = staff_client.get(reverse("admin_dashboard:payment_detail", args=[purchase.pk]))

    assert response.status_code == 200
    inv = response.context["inv"]
    assert [e.key for e in inv.entries] == [purchase.credit_reference]
    assert inv.credits_granted == Decimal("100")
    assert inv.warnings == []
    live = response.context["live"]
    assert (live["id"], live["status"], live["amount"]) == (
        purchase.stripe_payment_intent_id,
        "succeeded",
        1000,
    )
    row = AuditLog.objects.get()
    assert (row.actor, row.action, row.target_id) == (
        staff,
        AuditLog.Action.PAYMENT_INVESTIGATION,
        str(purchase.pk),
    )


def test_the_investigation_warns_when_credits_are_already_spent(staff_client, customer, purchase):
    ledger.consume(customer, 30, reference="use-1")

    inv = staff_client.get(reverse("admin_dashboard:payment_detail", args=[purchase.pk])).context[
        "inv"
    ]

    assert [w.code for w in inv.warnings] == ["credits_spent"]
    assert inv.credits_spent == Decimal("30")


def _investigate(client: Any, payment: Payment) -> Any:
    return client.get(reverse("admin_dashboard:payment_detail", args=[payment.pk]))


def test_credits_a_full_refund_took_back_are_reversed_not_spent(staff_client, customer, purchase):
    # refund_apply is the one reversal staff refunds and Stripe's refund events share.
    refund_apply(payment_id=purchase.pk, stripe_refund_id="re_full", amount=1000)

    response = _investigate(staff_client, purchase)

    inv = response.context["inv"]
    assert inv.warnings == []
    assert (inv.credits_granted, inv.credits_reversed, inv.credits_spent) == (100, 100, 0)
    assert b"100 taken back by refunds, 0 spent or expired" in response.content
    assert b"already spent or expired" not in response.content
    row = AuditLog.objects.get(action=AuditLog.Action.PAYMENT_INVESTIGATION)
    assert row.details["warnings"] == []


def test_a_refunded_pack_partly_spent_warns_of_the_spent_part_only(
    staff_client, customer, purchase
):
    ledger.consume(customer, 30, reference="use-1")
    refund_apply(payment_id=purchase.pk, stripe_refund_id="re_part", amount=400)
    refund_apply(payment_id=purchase.pk, stripe_refund_id="re_rest", amount=600)

    response = _investigate(staff_client, purchase)

    inv = response.context["inv"]
    assert (inv.credits_reversed, inv.credits_spent) == (70, 30)
    assert [w.message.split(":")[0] for w in inv.warnings] == [
        "30.00 of the 100.00 credits it granted are already spent or expired"
    ]
    row = AuditLog.objects.get(action=AuditLog.Action.PAYMENT_INVESTIGATION)
    assert row.details["warnings"] == ["credits_spent"]


def test_the_investigation_warns_of_missing_ids_failure_and_zero_amount(staff_client, customer):
    payment = make_payment(
        customer,
        status=Payment.Status.FAILED,
        amount=Decimal("0"),
        credits=Decimal("0"),
        stripe_checkout_session_id="",
        stripe_payment_intent_id="",
    )

    response = staff_client.get(reverse("admin_dashboard:payment_detail", args=[payment.pk]))

    codes = [w.code for w in response.context["inv"].warnings]
    assert codes == ["missing_stripe_ids", "failed", "zero_amount"]
    assert b"No payment intent id is recorded" in response.content


def test_an_unknown_payment_is_404(staff_client):
    response = staff_client.get(reverse("admin_dashboard:payment_detail", args=[999999]))
    assert response.status_code == 404


def test_an_unreachable_stripe_leaves_the_investigation_usable(staff_client, purchase, monkeypatch):
    from stripe_manager.gateway import GatewayError
    from stripe_manager.simulator.gateway import SimulatorGateway

    def down(self: Any, **kwargs: Any) -> Any:
        raise GatewayError("timed out")

    monkeypatch.setattr(SimulatorGateway, "retrieve_payment", down)

    response = staff_client.get(reverse("admin_dashboard:payment_detail", args=[purchase.pk]))

    assert response.status_code == 200
    assert response.context["live"] is None
    assert b"Stripe could not be reached: timed out" in response.content
