import smtplib
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from common.management.commands import bootstrap
from credits import ledger
from credits.models import CreditLot, ExpiryReminder
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _expired_lot(user: CustomUser, reference: str) -> CreditLot:
    lot = ledger.grant(
        user,
        10,
        source="subscription",
        reference=reference,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    CreditLot.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return lot


def test_expire_credits_expires_past_lots_and_is_idempotent(user):
    lot = _expired_lot(user, "in_1")

    assert _run("expire_credits") == "expired 1 lot\n"
    assert _run("expire_credits") == "expired 0 lots\n"
    lot.refresh_from_db()
    assert lot.remaining == Decimal(0)


def test_bootstrap_runs_the_expire_credits_step(user):
    _expired_lot(user, "in_1")

    assert ("expire credits", bootstrap.expire_credits) in bootstrap.STEPS
    assert bootstrap.expire_credits(bootstrap.BootstrapOptions(skip_collectstatic=True)) == (
        "expired 1 lot"
    )


def test_send_credit_reminders_emails_each_user_once_per_expiring_lot(user, other_user):
    now = timezone.now()
    ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=1)
    )
    ledger.grant(
        user, 7, source="subscription", reference="in_2", expires_at=now + timedelta(days=2)
    )
    ledger.grant(
        other_user, 9, source="subscription", reference="in_3", expires_at=now + timedelta(days=10)
    )
    ledger.grant(other_user, 9, source="purchase", reference="cs_1")

    assert _run("send_credit_reminders") == "reminded 1 user\n"
    assert _run("send_credit_reminders") == "reminded 0 users\n"

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert "12 credits expire soon" in mail.outbox[0].subject
    assert ExpiryReminder.objects.count() == 2


def test_a_lot_granted_after_a_reminder_gets_its_own_reminder(user):
    now = timezone.now()
    ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=1)
    )
    _run("send_credit_reminders")
    ledger.grant(
        user, 6, source="subscription", reference="in_2", expires_at=now + timedelta(days=2)
    )

    assert _run("send_credit_reminders") == "reminded 1 user\n"
    assert "6 credits expire soon" in mail.outbox[1].subject


def test_a_failed_reminder_is_not_recorded_so_the_next_run_retries(user):
    ledger.grant(
        user,
        5,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=1),
    )

    with mock.patch(
        "django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPConnectError(421, "down")
    ):
        assert _run("send_credit_reminders") == "reminded 0 users, 1 failed (retried next run)\n"
    assert ExpiryReminder.objects.count() == 0

    assert _run("send_credit_reminders") == "reminded 1 user\n"
    assert len(mail.outbox) == 1
