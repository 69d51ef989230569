"""MFA_REQUIRED_FOR_STAFF: staff without a second factor are sent to set one up."""

from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse

from users.middleware import STAFF_MFA_MESSAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Any, staff: Any) -> Any:
    staff.is_superuser = True  # the Django admin's index needs a permission
    staff.save()
    client.force_login(staff)
    return client


@pytest.mark.parametrize("page", ["admin_dashboard:dashboard", "admin:index"])
def test_staff_without_two_factor_are_sent_to_set_it_up(settings, staff_client, page):
    settings.MFA_REQUIRED_FOR_STAFF = True
    answer = staff_client.get(reverse(page), follow=True)
    assert answer.redirect_chain[0][0] == reverse("mfa_index")
    assert STAFF_MFA_MESSAGE in answer.content.decode()


@pytest.mark.parametrize("page", ["admin_dashboard:dashboard", "admin:index"])
def test_staff_with_an_authenticator_app_reach_the_admin(settings, staff_client, staff, page):
    settings.MFA_REQUIRED_FOR_STAFF = True
    TOTP.activate(staff, generate_totp_secret())
    assert staff_client.get(reverse(page)).status_code == 200


def test_recovery_codes_alone_are_not_a_second_factor(settings, staff_client, staff):
    settings.MFA_REQUIRED_FOR_STAFF = True
    Authenticator.objects.create(
        user=staff, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "x", "used_mask": 0}
    )
    assert staff_client.get(reverse("admin:index")).status_code == 302


def test_the_rest_of_the_site_stays_open_and_the_setting_is_off_by_default(settings, staff_client):
    settings.MFA_REQUIRED_FOR_STAFF = True
    assert staff_client.get(reverse("users:profile")).status_code == 200
    assert staff_client.get(reverse("mfa_index")).status_code == 200
    settings.MFA_REQUIRED_FOR_STAFF = False
    assert staff_client.get(reverse("admin:index")).status_code == 200
