"""The low-balance and expiry emails: left out when switched off, with a one-click unsubscribe."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from common.testing.mail import send_queued_emails
from credits import ledger
from credits.emails import send_low_balance_email
from users.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "http://localhost:8000"
    settings.LOW_CREDIT_THRESHOLD = 10


def low_balance_mail(user: Any, capture: Any) -> Any:
    """Queue the low-balance email and let the worker (played here) send it."""
    mail.outbox.clear()
    with capture(execute=True):
        send_low_balance_email(user.pk, Decimal(3))
    send_queued_emails()
    return mail.outbox[-1] if mail.outbox else None


def test_the_low_balance_email_carries_a_one_click_unsubscribe_that_works(
    user, django_capture_on_commit_callbacks
):
    message = low_balance_mail(user, django_capture_on_commit_callbacks)
    assert message is not None
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://localhost:8000/accounts/unsubscribe/")
    url = header.strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.body
    assert url in str(message.alternatives[0][0])
    raw = message.message().as_string()  # the headers reach the wire
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw

    answer = Client(enforce_csrf_checks=True).post(
        url.removeprefix("http://localhost:8000"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert Profile.objects.get(user=user).email_low_balance is False
    assert low_balance_mail(user, django_capture_on_commit_callbacks) is None


def test_expiry_reminders_skip_users_who_switched_them_off(user, other_user):
    soon = timezone.now() + timedelta(days=1)
    for account, reference in ((user, "in_1"), (other_user, "in_2")):
        ledger.grant(account, 5, source="subscription", reference=reference, expires_at=soon)
    Profile.objects.create(user=user, email_expiry=False)

    out = StringIO()
    call_command("send_credit_reminders", stdout=out)
    assert out.getvalue() == "reminded 1 user\n"
    assert [message.to for message in mail.outbox] == [[other_user.email]]
    assert (
        mail.outbox[0]
        .extra_headers["List-Unsubscribe"]
        .startswith("<http://localhost:8000/accounts/unsubscribe/")
    )
    # The opted-out user's lots count as reminded: the next run does not ask again.
    out = StringIO()
    call_command("send_credit_reminders", stdout=out)
    assert out.getvalue() == "reminded 0 users\n"
