"""The customer's refund notice: the amount, the credits really taken back, the receipt link.

Refunds are applied through ``refund_apply``, the one reversal that staff
refunds and Stripe's refund events share, on a pack bought for $10.00 that
granted 100 credits.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from common.email import absolute_url
from common.testing.mail import send_queued_emails
from credits import ledger
from stripe_manager.models import Payment
from stripe_manager.refunds import refund_apply
from users.models import CustomUser
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer() -> CustomUser:
    return make_user(email="buyer@example.com")


@pytest.fixture
def pack(buyer: CustomUser) -> Payment:
    payment = Payment.objects.create(
        user=buyer,
        kind=Payment.Kind.CREDIT_PURCHASE,
        status=Payment.Status.SUCCEEDED,
        amount=Decimal("10.00"),
        credits=Decimal("100"),
        description="100 credits",
        stripe_checkout_session_id="cs_notice",
        stripe_payment_intent_id="pi_notice",
        credit_reference="cs_notice",
    )
    ledger.grant(buyer, 100, source="purchase", reference="cs_notice")
    return payment


@pytest.fixture
def refund(django_capture_on_commit_callbacks: Any) -> Callable[[str, int], None]:
    """Apply a succeeded Stripe refund (minor units) and commit it, queuing its notice."""

    def apply(refund_id: str, amount: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            refund_apply(
                payment_id=Payment.objects.get().pk, stripe_refund_id=refund_id, amount=amount
            )

    return apply


def _notices() -> list[EmailMultiAlternatives]:
    send_queued_emails()
    return [m for m in mail.outbox if isinstance(m, EmailMultiAlternatives)]


def test_a_full_refund_of_an_unspent_pack_tells_the_amount_credits_and_receipt(buyer, pack, refund):
    refund("re_all", 1000)

    (notice,) = _notices()
    receipt = absolute_url(reverse("stripe_manager:receipt", args=[pack.receipt_number]))
    assert notice.to == [buyer.email]
    assert "Refunded: $10.00 of $10.00" in notice.body
    assert "Credits taken back: 100\n" in notice.body
    assert "already used" not in notice.body
    assert f"Your receipt, with the refund on it: {receipt}" in notice.body
    html = str(notice.alternatives[0][0])
    assert "<td>100</td>" in html
    assert f'href="{receipt}"' in html


def test_credits_already_spent_are_not_reported_as_taken_back(buyer, pack, refund):
    ledger.consume(buyer, 30, reference="use-1")

    refund("re_spent", 1000)

    (notice,) = _notices()
    assert "Credits taken back: 70\n" in notice.body
    assert "30 of the refunded credits were already used or expired" in notice.body
    html = str(notice.alternatives[0][0])
    assert "<td>70</td>" in html
    assert "30 of the refunded credits were already used" in html


def test_each_refund_of_a_payment_gets_its_own_notice(buyer, pack, refund):
    refund("re_a", 250)
    refund("re_a", 250)  # replayed: no 2nd
    refund("re_b", 750)

    first, second = _notices()
    assert "Refunded: $2.50 of $10.00" in first.body
    assert "Credits taken back: 25\n" in first.body
    assert "Refunded: $7.50 of $10.00" in second.body
    assert "Credits taken back: 75\n" in second.body


def test_the_notice_links_to_a_receipt_that_shows_the_refund(client, buyer, pack, refund):
    refund("re_seen", 400)
    (notice,) = _notices()
    link = next(line for line in notice.body.splitlines() if line.startswith("Your receipt"))
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    client.force_login(buyer)
    page = client.get(path)

    assert page.status_code == 200
    assert b"<th>Refunded</th><td>$4.00</td>" in page.content
