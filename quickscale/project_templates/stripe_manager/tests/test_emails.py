"""Billing emails go through the outbox: the webhook only records them, the worker sends.

SMTP is the process edge: Django's SMTP backend talks to a fake server on a
local socket that hangs, refuses or accepts.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from common.models import QueuedEmail
from common.testing.mail import (
    FakeSMTPServer,
    body_of,
    fake_smtp_server,
    pending_email_builders,
    send_queued_emails,
    send_queued_emails_later,
    send_through,
)
from common.testing.tasks import queued_task_names
from stripe_manager.models import Payment, Refund
from stripe_manager.refunds import refund_apply
from stripe_manager.tests.factories import (
    deliver,
    invoice_paid,
    purchase_completed,
    refund_event,
)

pytestmark = pytest.mark.django_db

RECEIPT = "stripe_manager.emails.receipt_email"


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def test_a_webhook_answers_while_the_mail_server_hangs_and_the_receipt_arrives_later(
    client, customer, catalog, smtp, django_capture_on_commit_callbacks
):
    smtp.script = ["hang"]

    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, purchase_completed(customer, catalog["pack"])) == 200

    # The request is over and the mail server was never asked: it only queued the receipt.
    assert smtp.connections == 0
    assert pending_email_builders() == [RECEIPT]  # the outbox row alone
    assert queued_task_names() == []
    payment = Payment.objects.get()
    assert QueuedEmail.objects.get().key == f"receipt:{payment.pk}"

    send_queued_emails()  # the worker meets the hung server and gives up after EMAIL_TIMEOUT
    assert (smtp.connections, smtp.messages) == (1, [])
    send_queued_emails_later()

    [message] = smtp.messages
    assert message["To"] == customer.user.email
    assert payment.receipt_number in message["Subject"]
    assert payment.receipt_number in body_of(message)


def test_an_event_delivered_again_sends_its_email_once(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    event = invoice_paid(
        customer, catalog["basic"], invoice_id="in_u", event_type="invoice.upcoming"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event) == 200
        assert deliver(client, event) == 200
    send_queued_emails()

    [message] = mail.outbox
    assert "renews" in message.body
    assert QueuedEmail.objects.get().key == f"upcoming_renewal:{event['id']}"


def test_each_failed_payment_attempt_of_an_invoice_is_told(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    """Stripe retries a failed invoice and sends a new event each time; each is emailed."""
    first = invoice_paid(
        customer, catalog["basic"], invoice_id="in_f", event_type="invoice.payment_failed"
    )
    second = {**first, "id": "evt_failed_again"}
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, first) == 200
        assert deliver(client, second) == 200
    send_queued_emails()

    assert len(mail.outbox) == 2
    assert all(m.subject.endswith("Your payment failed") for m in mail.outbox)


def test_a_refund_sends_one_notice_however_often_stripe_reports_it(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_r"))
        refunded = refund_event(customer, "pi_cs_r", "re_1", 250)
        assert deliver(client, refunded) == 200
        assert deliver(client, {**refunded, "id": "evt_refund_again"}) == 200
    send_queued_emails()

    _receipt, notice = mail.outbox
    payment = Payment.objects.get()
    assert notice.subject.endswith(f"Refund of {payment.receipt_number}")
    assert "Refunded: $2.50 of $10.00" in notice.body
    assert "Credits taken back: 25" in notice.body
    assert notice.to == [customer.user.email]
    assert isinstance(notice, EmailMultiAlternatives)
    html = str(notice.alternatives[0][0])
    assert payment.receipt_number in html


def test_a_refund_rolled_back_leaves_no_email(client, customer, catalog):
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_rb"))
    payment = Payment.objects.get()

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        refund_apply(payment_id=payment.pk, stripe_refund_id="re_rb", amount=1000)
        assert QueuedEmail.objects.filter(key__startswith="refund:").count() == 1
        raise Abandoned

    assert not Refund.objects.exists()
    assert not QueuedEmail.objects.filter(key__startswith="refund:").exists()


def test_a_receipt_for_an_account_closed_before_sending_is_skipped(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, purchase_completed(customer, catalog["pack"]))
    customer.user.is_active = False
    customer.user.save()

    send_queued_emails()

    assert mail.outbox == []
    assert QueuedEmail.objects.get().state == "skipped"
