"""The Stripe webhook secret never falls back to a public value, checked in fresh processes."""

import json
import os
import secrets

import pytest

from common.testing.database import session_database_url
from common.testing.process import run_python
from common.testing.production import production_env
from credits.models import CreditLot
from stripe_manager.models import Payment, ProcessedStripeEvent
from stripe_manager.tests.factories import (
    balance,
    make_catalog,
    make_customer,
    purchase_completed,
)
from users.tests.factories import make_user

PRINT_SECRET = (
    "import django; django.setup();"
    "from django.conf import settings; print(settings.STRIPE_WEBHOOK_SECRET)"
)
# Posts the event given as the first argument, signed with the public placeholder.
FORGE = (
    "import sys, django; django.setup();"
    "from django.test import Client;"
    "from stripe_manager import signing;"
    "body = sys.argv[1].encode();"
    "response = Client().post('/stripe/webhook/', data=body, content_type='application/json',"
    " HTTP_STRIPE_SIGNATURE=signing.sign(body, 'whsec_dummy'));"
    "print(response.status_code)"
)


def development_env(**extra: str) -> dict[str, str]:
    """This process's environment as a development project without a webhook secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    env.update(
        DJANGO_SETTINGS_MODULE="core.settings",
        IS_PRODUCTION="False",
        STRIPE_ENABLED="False",
        # Set but empty: counts as unset, and keeps a value in .env from applying.
        STRIPE_WEBHOOK_SECRET="",
    )
    env.update(extra)
    return env


@pytest.mark.parametrize("secret", ["", "whsec_dummy"], ids=["empty", "whsec_dummy"])
def test_production_with_stripe_on_refuses_to_start_without_a_real_webhook_secret(secret):
    env = production_env(STRIPE_ENABLED="True", STRIPE_WEBHOOK_SECRET=secret)
    for command in (["manage.py", "check", "--deploy"], ["-c", "import core.asgi"]):
        result = run_python(command, env)
        assert result.returncode != 0, command
        assert "Refusing to start with IS_PRODUCTION on: STRIPE_WEBHOOK_SECRET" in result.stderr


def test_production_with_stripe_on_and_a_real_looking_secret_passes_the_deploy_check():
    env = production_env(
        STRIPE_ENABLED="True",
        STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_hex(32),
        STRIPE_PUBLIC_KEY="pk_test_" + secrets.token_hex(12),
        STRIPE_SECRET_KEY="sk_test_" + secrets.token_hex(12),
    )
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stderr + result.stdout


def test_development_without_a_webhook_secret_uses_a_random_one_per_process():
    first, second = (
        run_python(["-c", PRINT_SECRET], development_env()).stdout.strip() for _ in range(2)
    )
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert first != second
    assert "dummy" not in first


@pytest.mark.django_db(transaction=True)  # the started process must see the committed rows
def test_an_event_forged_with_the_public_placeholder_grants_nothing():
    customer = make_customer(make_user())
    event = purchase_completed(customer, make_catalog()["pack"], quantity=20000)
    env = development_env(DATABASE_URL=session_database_url())

    result = run_python(["-c", FORGE, json.dumps(event)], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "400"
    assert balance(customer.user)[2] == 0
    assert not CreditLot.objects.exists()
    assert not Payment.objects.exists()
    assert not ProcessedStripeEvent.objects.exists()
