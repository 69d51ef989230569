"""Start-up validation: production refuses to run with unsafe settings.

Settings call :func:`validate_production` while they load, so a misconfigured
production deployment fails before it serves a single request. Tests call
:func:`production_problems` with a dict of values instead of reloading settings.

The webhook secret and the Stripe keys' mode are also Django system checks
(:func:`check_stripe_webhook_secret`, :func:`check_stripe_keys`, registered when
settings import this module): they judge the settings as finally loaded, so
``manage.py check --deploy`` and every management command report a value that
a settings module or an override changed after the environment was read. Start-up
and system checks ask the same rules (:func:`webhook_secret_problem` for a
real-looking secret, :func:`key_problems` for the keys' mode), which live in
``stripe_manager.keys`` because ``manage.py stripe_check`` asks them too.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from core.env import DEVELOPMENT_SECRET_KEY, SecurityConfig, read_security_config
from stripe_manager.keys import (
    PLACEHOLDER_MARKERS,
    WEBHOOK_SECRET_HINT,
    key_problems,
    webhook_secret_problem,
)

# Django's own deploy check (security.W009) uses the same thresholds.
MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5


def _secret_key_problem(secret_key: str) -> str | None:
    if not secret_key:
        return "SECRET_KEY is not set."
    lowered = secret_key.lower()
    if secret_key == DEVELOPMENT_SECRET_KEY or any(m in lowered for m in PLACEHOLDER_MARKERS):
        return "SECRET_KEY is a placeholder."
    if (
        len(secret_key) < MIN_SECRET_KEY_LENGTH
        or len(set(secret_key)) < MIN_SECRET_KEY_UNIQUE_CHARACTERS
    ):
        return (
            "SECRET_KEY is too short or too simple "
            f"(use at least {MIN_SECRET_KEY_LENGTH} random characters)."
        )
    return None


def production_problems(config: SecurityConfig | Mapping[str, str]) -> list[str]:
    """Return one sentence per unsafe value; empty when fine or not in production."""
    if not isinstance(config, SecurityConfig):
        config = read_security_config(config)
    if not config.is_production:
        return []
    problems: list[str] = []
    secret_problem = _secret_key_problem(config.secret_key)
    if secret_problem:
        problems.append(secret_problem)
    if not config.allowed_hosts:
        problems.append("ALLOWED_HOSTS is empty; list the domain names the site is served on.")
    elif "*" in config.allowed_hosts:
        problems.append("ALLOWED_HOSTS contains '*'; list the domain names the site is served on.")
    if config.debug:
        problems.append("DEBUG is on; set DEBUG=False.")
    if config.account_email_verification != "mandatory":
        problems.append(
            f"ACCOUNT_EMAIL_VERIFICATION is {config.account_email_verification!r}; "
            "set ACCOUNT_EMAIL_VERIFICATION=mandatory."
        )
    # One secret signs the events of whichever key pair STRIPE_LIVE_MODE selects.
    webhook_problem = (
        webhook_secret_problem(config.stripe_webhook_secret) if config.stripe_enabled else None
    )
    if webhook_problem:
        problems.append(f"{webhook_problem} {WEBHOOK_SECRET_HINT}")
    if config.stripe_enabled:
        # Keys for the other mode charge real cards in a test setup, or none in a live one.
        problems.extend(
            key_problems(
                live_mode=config.stripe_live_mode,
                secret_key=config.stripe_secret_key,
                public_key=config.stripe_public_key,
            )
        )
    return problems


def validate_production(config: SecurityConfig | Mapping[str, str]) -> None:
    """Raise ImproperlyConfigured listing every unsafe production value at once."""
    problems = production_problems(config)
    if problems:
        details = " ".join(problems)
        raise ImproperlyConfigured(
            f"Refusing to start with IS_PRODUCTION on: {details} "
            "Fix these in the environment or .env."
        )


@register(Tags.security)
def check_stripe_webhook_secret(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """System check: production with Stripe on needs a real-looking webhook secret."""
    if not (settings.IS_PRODUCTION and settings.STRIPE_ENABLED):
        return []
    problem = webhook_secret_problem(settings.STRIPE_WEBHOOK_SECRET)
    if problem is None:
        return []
    return [Error(problem, hint=WEBHOOK_SECRET_HINT, id="core.E001")]


@register(Tags.security)
def check_stripe_keys(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """System check: production with Stripe on needs both keys, for ``STRIPE_LIVE_MODE``'s mode."""
    if not (settings.IS_PRODUCTION and settings.STRIPE_ENABLED):
        return []
    problems = key_problems(
        live_mode=settings.STRIPE_LIVE_MODE,
        secret_key=settings.STRIPE_SECRET_KEY,
        public_key=settings.STRIPE_PUBLIC_KEY,
    )
    return [Error(problem, id="core.E002") for problem in problems]
