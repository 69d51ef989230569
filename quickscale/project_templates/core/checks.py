"""Start-up validation: production refuses to run with unsafe settings.

Settings call :func:`validate_production` while they load, so a misconfigured
production deployment fails before it serves a single request. Tests call
:func:`production_problems` with a dict of values instead of reloading settings.
"""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

from core.env import DEVELOPMENT_SECRET_KEY, SecurityConfig, read_security_config

# Django's own deploy check (security.W009) uses the same thresholds.
MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5
# Substrings of values that were clearly never replaced by a real secret.
PLACEHOLDER_MARKERS = (
    "dummy",
    "placeholder",
    "!!!",
    "changeme",
    "change-me",
    "replace",
    "insecure",
)


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
    if config.stripe_enabled and config.stripe_live_mode:
        test_keys = [
            name
            for name, value in (
                ("STRIPE_PUBLIC_KEY", config.stripe_public_key),
                ("STRIPE_SECRET_KEY", config.stripe_secret_key),
            )
            if value.startswith(("pk_test_", "sk_test_")) or not value or "dummy" in value
        ]
        if test_keys:
            problems.append(
                f"STRIPE_LIVE_MODE is on but {', '.join(test_keys)} is a test key or empty."
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
