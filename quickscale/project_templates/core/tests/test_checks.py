import secrets
from io import StringIO

import pytest
from django.core.checks import Tags, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from core.checks import (
    check_stripe_keys,
    check_stripe_webhook_secret,
    production_problems,
    validate_production,
)
from core.env import read_security_config
from stripe_manager.keys import webhook_secret_problem

SAFE_PRODUCTION = {
    "IS_PRODUCTION": "true",
    "DEBUG": "false",
    "SECRET_KEY": "k3J9x-q7Lm2vR8tY1zW4bN6cH0dF5gS!aE@uI#oP$lK%jM^nB&vC*xZ(",
    "ALLOWED_HOSTS": "example.com,www.example.com",
    "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
}


def production(**overrides: str) -> dict[str, str]:
    return {**SAFE_PRODUCTION, **overrides}


# Stripe on, with test mode keys (STRIPE_LIVE_MODE is off unless a test says otherwise).
STRIPE_ON = {
    "STRIPE_ENABLED": "yes",
    "STRIPE_PUBLIC_KEY": "pk_test_" + secrets.token_hex(12),
    "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
}
REAL_LOOKING_SECRETS = [
    "whsec_" + "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH",  # the dashboard's shape: 32 characters
    "whsec_" + secrets.token_hex(32),  # the Stripe CLI's shape, and what build writes
]


def test_safe_production_values_pass():
    assert production_problems(SAFE_PRODUCTION) == []
    validate_production(SAFE_PRODUCTION)


def test_development_is_never_refused_even_with_dummy_values():
    assert production_problems({"SECRET_KEY": "dummy", "ALLOWED_HOSTS": "*", "DEBUG": "on"}) == []


@pytest.mark.parametrize(
    "secret_key",
    [
        "dev-only-dummy-key-replace-in-production",
        "!!!SET SECRET_KEY!!!",
        "placeholder-" + "x1y2z3" * 10,
        "short-but-random-7Hq",
        "a" * 60,
    ],
)
def test_production_refuses_a_dummy_placeholder_or_short_secret_key(secret_key):
    problems = production_problems(production(SECRET_KEY=secret_key))
    assert len(problems) == 1
    assert problems[0].startswith("SECRET_KEY")


def test_production_refuses_a_missing_secret_key():
    environ = production()
    del environ["SECRET_KEY"]
    assert production_problems(environ) == ["SECRET_KEY is not set."]


@pytest.mark.parametrize("hosts", ["*", "example.com,*"])
def test_production_refuses_a_wildcard_in_allowed_hosts(hosts):
    (problem,) = production_problems(production(ALLOWED_HOSTS=hosts))
    assert "ALLOWED_HOSTS contains '*'" in problem


def test_production_refuses_empty_allowed_hosts():
    environ = production()
    del environ["ALLOWED_HOSTS"]
    (problem,) = production_problems(environ)
    assert problem.startswith("ALLOWED_HOSTS is empty")


def test_production_refuses_debug_on():
    (problem,) = production_problems(production(DEBUG="yes"))
    assert problem.startswith("DEBUG is on")


@pytest.mark.parametrize("mode", ["optional", "none"])
def test_production_refuses_email_verification_other_than_mandatory(mode):
    (problem,) = production_problems(production(ACCOUNT_EMAIL_VERIFICATION=mode))
    assert "ACCOUNT_EMAIL_VERIFICATION" in problem


def test_production_refuses_stripe_test_keys_in_live_mode():
    environ = production(
        STRIPE_ENABLED="yes",
        STRIPE_LIVE_MODE="yes",
        STRIPE_PUBLIC_KEY="pk_test_abc",
        STRIPE_SECRET_KEY="sk_live_abc",
        STRIPE_WEBHOOK_SECRET=REAL_LOOKING_SECRETS[0],
    )
    (problem,) = production_problems(environ)
    assert "STRIPE_PUBLIC_KEY" in problem


@pytest.mark.parametrize(
    ("live", "secret_key", "public_key", "expected"),
    [
        ("no", "sk_live_abc", "pk_test_abc", "STRIPE_SECRET_KEY is a live mode key but"),
        ("no", "rk_live_abc", "pk_test_abc", "STRIPE_SECRET_KEY is a live mode key but"),
        ("no", "sk_test_abc", "pk_live_abc", "STRIPE_PUBLIC_KEY is a live mode key but"),
        ("yes", "rk_test_abc", "pk_live_abc", "STRIPE_SECRET_KEY is a test mode key but"),
        ("no", "", "pk_test_abc", "STRIPE_SECRET_KEY is not set."),
        ("no", "sk_abc", "pk_test_abc", "STRIPE_SECRET_KEY is not a Stripe key."),
    ],
    ids=["live-secret", "live-restricted", "live-public", "test-restricted", "empty", "shape"],
)
def test_production_with_stripe_on_refuses_keys_for_the_other_mode(
    live, secret_key, public_key, expected
):
    environ = production(
        STRIPE_ENABLED="yes",
        STRIPE_LIVE_MODE=live,
        STRIPE_PUBLIC_KEY=public_key,
        STRIPE_SECRET_KEY=secret_key,
        STRIPE_WEBHOOK_SECRET=REAL_LOOKING_SECRETS[0],
    )
    (problem,) = production_problems(environ)
    assert problem.startswith(expected)
    assert "Fix:" in problem
    with pytest.raises(ImproperlyConfigured, match=expected.split()[0]):
        validate_production(environ)


@pytest.mark.parametrize("live", ["no", "yes"])
def test_production_accepts_restricted_keys_of_its_mode(live):
    mode = "live" if live == "yes" else "test"
    environ = production(
        STRIPE_ENABLED="yes",
        STRIPE_LIVE_MODE=live,
        STRIPE_PUBLIC_KEY=f"pk_{mode}_abc",
        STRIPE_SECRET_KEY=f"rk_{mode}_abc",
        STRIPE_WEBHOOK_SECRET=REAL_LOOKING_SECRETS[0],
    )
    assert production_problems(environ) == []


def test_validate_production_names_every_problem_in_one_clear_message():
    environ = production(DEBUG="on", ALLOWED_HOSTS="*", SECRET_KEY="dummy")
    with pytest.raises(ImproperlyConfigured) as raised:
        validate_production(environ)
    message = str(raised.value)
    assert message.startswith("Refusing to start with IS_PRODUCTION on:")
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        assert name in message


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("", "is not set"),
        ("whsec_dummy", "is a placeholder"),
        ("whsec_replace_me_with_the_real_secret_value", "is a placeholder"),
        ("whsec_test_secret", "does not look like"),
        ("whsec_" + "a" * 40, "does not look like"),
        (secrets.token_hex(32), "does not look like"),  # no whsec_ prefix
    ],
    ids=["empty", "whsec_dummy", "placeholder", "short", "repetitive", "no-prefix"],
)
def test_production_with_stripe_on_refuses_a_webhook_secret_that_is_not_real(secret, reason):
    (problem,) = production_problems(production(**STRIPE_ON, STRIPE_WEBHOOK_SECRET=secret))
    assert problem.startswith(f"STRIPE_WEBHOOK_SECRET {reason}")
    assert "Developers > Webhooks" in problem  # says where the real one comes from
    with pytest.raises(ImproperlyConfigured, match="STRIPE_WEBHOOK_SECRET"):
        validate_production(production(**STRIPE_ON, STRIPE_WEBHOOK_SECRET=secret))


@pytest.mark.parametrize("live", ["no", "yes"], ids=["test-keys", "live-keys"])
def test_production_with_stripe_on_and_no_webhook_secret_is_refused_in_either_mode(live):
    mode = "live" if live == "yes" else "test"
    environ = production(
        **{
            **STRIPE_ON,
            "STRIPE_LIVE_MODE": live,
            "STRIPE_PUBLIC_KEY": f"pk_{mode}_{secrets.token_hex(12)}",
            "STRIPE_SECRET_KEY": f"sk_{mode}_{secrets.token_hex(12)}",
        }
    )
    assert production_problems(environ) == [
        "STRIPE_WEBHOOK_SECRET is not set. Copy the signing secret Stripe shows for this "
        "site's webhook endpoint (Developers > Webhooks) into STRIPE_WEBHOOK_SECRET."
    ]


@pytest.mark.parametrize("secret", REAL_LOOKING_SECRETS, ids=["dashboard", "cli"])
def test_production_with_stripe_on_accepts_a_real_looking_webhook_secret(secret):
    assert production_problems(production(**STRIPE_ON, STRIPE_WEBHOOK_SECRET=secret)) == []


def test_production_with_stripe_off_needs_no_webhook_secret_and_gets_none():
    assert production_problems(production()) == []
    assert read_security_config(production()).stripe_webhook_secret == ""


def test_development_without_a_webhook_secret_gets_a_random_one_never_a_constant():
    first = read_security_config({}).stripe_webhook_secret
    second = read_security_config({"STRIPE_WEBHOOK_SECRET": ""}).stripe_webhook_secret
    assert first != second
    assert webhook_secret_problem(first) is None
    assert webhook_secret_problem(second) is None


# The same rule as a Django system check, on the settings as finally loaded.


@pytest.mark.parametrize("secret", ["", "whsec_dummy"])
def test_the_deploy_check_reports_an_unusable_webhook_secret_in_production(settings, secret):
    settings.IS_PRODUCTION = True
    settings.STRIPE_ENABLED = True
    settings.STRIPE_WEBHOOK_SECRET = secret
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", stdout=StringIO(), stderr=StringIO())
    assert "(core.E001) STRIPE_WEBHOOK_SECRET" in str(raised.value)


@pytest.mark.parametrize(
    ("production_on", "stripe_on", "secret"),
    [
        (True, True, REAL_LOOKING_SECRETS[0]),
        (True, False, ""),
        (False, True, "whsec_dummy"),
    ],
    ids=["real-secret", "stripe-off", "development"],
)
def test_the_webhook_secret_check_passes_otherwise(settings, production_on, stripe_on, secret):
    settings.IS_PRODUCTION = production_on
    settings.STRIPE_ENABLED = stripe_on
    settings.STRIPE_WEBHOOK_SECRET = secret
    assert check_stripe_webhook_secret(None) == []
    assert not [
        message for message in run_checks(tags=[Tags.security]) if message.id == "core.E001"
    ]


def test_the_deploy_check_reports_keys_for_the_other_mode_in_production(settings):
    settings.IS_PRODUCTION = True
    settings.STRIPE_ENABLED = True
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    settings.STRIPE_PUBLIC_KEY = "pk_test_abc"
    settings.STRIPE_WEBHOOK_SECRET = REAL_LOOKING_SECRETS[0]
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", stdout=StringIO(), stderr=StringIO())
    assert "(core.E002) STRIPE_SECRET_KEY is a live mode key but STRIPE_LIVE_MODE is off" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("production_on", "stripe_on", "secret_key"),
    [(True, True, "rk_test_abc"), (True, False, "sk_live_abc"), (False, True, "sk_live_abc")],
    ids=["right-mode", "stripe-off", "development"],
)
def test_the_keys_check_passes_otherwise(settings, production_on, stripe_on, secret_key):
    settings.IS_PRODUCTION = production_on
    settings.STRIPE_ENABLED = stripe_on
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_SECRET_KEY = secret_key
    settings.STRIPE_PUBLIC_KEY = "pk_test_abc"
    assert check_stripe_keys(None) == []
