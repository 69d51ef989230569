"""Account state on the user page: lockout with unlock, and the security log."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from admin_dashboard.models import AuditLog
from users import security
from users.models import LoginLockout, SecurityEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked(customer):
    now = timezone.now()
    return LoginLockout.objects.create(
        scope=LoginLockout.Scope.ACCOUNT,
        key=customer.email,
        failures=5,
        window_started=now,
        locked_until=now + timedelta(minutes=15),
    )


def test_the_user_page_shows_a_locked_account_with_an_unlock_button(staff_client, customer, locked):
    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert b"Sign-in is locked until" in page.content
    assert reverse("admin_dashboard:user_unlock", args=[customer.pk]).encode() in page.content


def test_staff_unlock_an_account_in_the_security_and_audit_logs(
    staff_client, staff, customer, locked
):
    response = staff_client.post(reverse("admin_dashboard:user_unlock", args=[customer.pk]))

    assert response.status_code == 302
    assert not LoginLockout.objects.filter(pk=locked.pk).exists()
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LOCKOUT_LIFTED)
    assert event.email == customer.email
    row = AuditLog.objects.get()
    assert (row.actor, row.action, row.target_user) == (
        staff,
        AuditLog.Action.USER_UNLOCK,
        customer,
    )


def test_unlocking_needs_a_post(staff_client, customer, locked):
    response = staff_client.get(reverse("admin_dashboard:user_unlock", args=[customer.pk]))

    assert response.status_code == 405
    assert LoginLockout.objects.filter(pk=locked.pk).exists()


def test_the_user_page_shows_the_security_log(staff_client, customer):
    security.record(SecurityEvent.Kind.LOGIN_FAILED, user=customer, detail="wrong password")

    page = staff_client.get(reverse("admin_dashboard:user_detail", args=[customer.pk]))

    assert b"wrong password" in page.content.split(b'id="security-log"')[1]
