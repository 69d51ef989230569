"""The page inventory (core/testing/pages.py): every listed page renders for whom it is listed."""

from typing import Any

import pytest
from django.test import Client

from core.testing.pages import PAGES, ROLES, Site, pages_for, prepare_site, site_settings
from users.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(settings: Any) -> Site:
    site_settings(settings)
    return prepare_site()


def test_every_page_renders_for_each_role_it_is_listed_for(site: Site):
    assert len({spec.name for spec in PAGES}) == len(PAGES)
    wrong = []
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            # Through allauth's form, as signed_in_page does: a fresh sign-in opens the
            # pages that ask for a recent one (two-factor set-up).
            account = site.user if role == "user" else site.staff
            signed_in = client.post(
                "/accounts/login/", {"login": account.email, "password": PASSWORD}
            )
            assert signed_in.status_code == 302, signed_in.content
            confirmed = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
            assert confirmed.status_code == 302, confirmed.content
        for spec in pages_for(role):
            response = client.get(spec.url(site))
            expected = 404 if spec.name == "not-found" else 200
            if response.status_code != expected:
                wrong.append((role, spec.name, response.status_code, response.get("Location")))
    assert wrong == []


def test_the_prepared_user_has_credits_a_plan_payments_usage_and_a_job(site: Site):
    from credits import ledger
    from services.models import Job
    from stripe_manager.models import Payment

    balance = ledger.balance(site.user)
    # Basic's 500 credits, spent first by the runs; the pack's 100 and the staff's 25 on top.
    assert 490 < balance.subscription < 500
    assert balance.pay_as_you_go == 125
    assert Payment.objects.filter(user=site.user, status=Payment.Status.SUCCEEDED).count() == 2
    assert Job.objects.get(pk=site.job_id).state == Job.State.SUCCEEDED
