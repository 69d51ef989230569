import logging

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from users.models import SecurityEvent
from users.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_successful_sign_in_is_logged_with_ip_and_a_structured_line(client, user, caplog):
    caplog.set_level(logging.INFO, logger="users.security")
    client.post(
        reverse("account_login"),
        {"login": user.email, "password": PASSWORD},
        REMOTE_ADDR="192.0.2.5",
        HTTP_USER_AGENT="pytest",
    )
    event = SecurityEvent.objects.get(kind="login_succeeded")
    assert (event.user, event.ip_address, event.user_agent) == (user, "192.0.2.5", "pytest")
    record = next(r for r in caplog.records if r.name == "users.security")
    assert record.event == "login_succeeded" and record.ip == "192.0.2.5"


def test_a_failed_sign_in_is_logged(client, user):
    client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    assert SecurityEvent.objects.filter(kind="login_failed", email=user.email).exists()


def test_an_email_change_is_logged(client, user):
    client.force_login(user)
    EmailAddress.objects.create(user=user, email="new@example.com", verified=True)
    client.post(reverse("account_email"), {"action_primary": "", "email": "new@example.com"})
    assert SecurityEvent.objects.filter(kind="email_changed", email="new@example.com").exists()


def test_the_log_is_read_only_in_the_admin(admin_client, user, client):
    client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    event = SecurityEvent.objects.get()
    changelist = admin_client.get(reverse("admin:users_securityevent_changelist"))
    assert changelist.status_code == 200
    assert admin_client.get(reverse("admin:users_securityevent_add")).status_code == 403
    admin_client.post(
        reverse("admin:users_securityevent_change", args=[event.pk]), {"email": "forged"}
    )
    event.refresh_from_db()
    assert event.email == user.email
    assert (
        admin_client.post(reverse("admin:users_securityevent_delete", args=[event.pk])).status_code
        == 403
    )
