import pytest
from django.core.exceptions import ImproperlyConfigured

from core.checks import production_problems, validate_production

SAFE_PRODUCTION = {
    "IS_PRODUCTION": "true",
    "DEBUG": "false",
    "SECRET_KEY": "k3J9x-q7Lm2vR8tY1zW4bN6cH0dF5gS!aE@uI#oP$lK%jM^nB&vC*xZ(",
    "ALLOWED_HOSTS": "example.com,www.example.com",
    "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
}


def production(**overrides: str) -> dict[str, str]:
    return {**SAFE_PRODUCTION, **overrides}


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
    )
    (problem,) = production_problems(environ)
    assert "STRIPE_PUBLIC_KEY" in problem


def test_validate_production_names_every_problem_in_one_clear_message():
    environ = production(DEBUG="on", ALLOWED_HOSTS="*", SECRET_KEY="dummy")
    with pytest.raises(ImproperlyConfigured) as raised:
        validate_production(environ)
    message = str(raised.value)
    assert message.startswith("Refusing to start with IS_PRODUCTION on:")
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        assert name in message
