"""Typed reads of environment variables: the only place settings parse strings.

Every helper takes an optional mapping so tests can pass a plain dict instead of
patching ``os.environ`` and reloading settings. An empty value counts as unset,
because ``.env`` files often carry ``KEY=`` lines for optional variables.
"""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.core.exceptions import ImproperlyConfigured

# Accepted spellings for "on" and "off" (any case), as .env.example lists them.
TRUE_VALUES = frozenset({"yes", "true", "1", "on", "enabled", "y", "t"})
FALSE_VALUES = frozenset({"no", "false", "0", "off", "disabled", "n", "f"})

# Used only outside production; production refuses it (see core.checks).
DEVELOPMENT_SECRET_KEY = "dev-only-dummy-key-replace-in-production"

EMAIL_VERIFICATION_CHOICES = ("mandatory", "optional", "none")

# Stripe's prefix for webhook signing secrets.
WEBHOOK_SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """Return a random webhook signing secret shaped like the Stripe CLI's (64 hex digits).

    Development without STRIPE_WEBHOOK_SECRET gets one per process instead of a
    constant anyone could sign with; the simulator signs and delivers its events
    in the same process, so it still works. ``quickscale build`` writes one into
    ``.env`` the same way.
    """
    return WEBHOOK_SECRET_PREFIX + secrets.token_hex(32)


def _source(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def env_str(key: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """Return the stripped value of ``key``, or ``default`` when unset or empty."""
    value = _source(environ).get(key, "").strip()
    return value if value else default


def env_bool(key: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Return ``key`` as a boolean; refuse values that are neither on nor off.

    A typo such as ``DEBUG=ture`` must not silently become False.
    """
    raw = env_str(key, "", environ)
    if not raw:
        return default
    lowered = raw.lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    accepted = ", ".join(sorted(TRUE_VALUES | FALSE_VALUES))
    raise ImproperlyConfigured(f"{key}={raw!r} is not a yes/no value. Use one of: {accepted}.")


def env_int(key: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """Return ``key`` as an integer, with a clear error for anything else."""
    raw = env_str(key, "", environ)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{key}={raw!r} is not a whole number.") from None


def env_list(
    key: str, default: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return ``key`` split on commas, items stripped, empty items dropped."""
    raw = env_str(key, "", environ)
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(key: str, environ: Mapping[str, str] | None = None) -> str:
    """Return ``key`` as an http(s) URL, or "" when unset; refuse anything else.

    A provider base URL with a typo (no scheme, a stray space) would otherwise
    fail only at the first call, as a connection error far from its cause.
    """
    raw = env_str(key, "", environ)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in raw:
        raise ImproperlyConfigured(
            f"{key}={raw!r} is not an http(s) URL, e.g. http://localhost:11434/v1."
        )
    return raw


@dataclass(frozen=True)
class SecurityConfig:
    """The values production validation looks at, read with their defaults."""

    is_production: bool
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    account_email_verification: str
    stripe_enabled: bool
    stripe_live_mode: bool
    stripe_public_key: str
    stripe_secret_key: str
    stripe_webhook_secret: str


def read_security_config(environ: Mapping[str, str] | None = None) -> SecurityConfig:
    """Read the security-relevant variables; defaults depend on IS_PRODUCTION.

    Development gets convenient defaults (DEBUG on, any host, a dummy key, optional
    verification). Production gets none for secrets, so a missing value fails
    validation instead of falling back to something unsafe.
    """
    is_production = env_bool("IS_PRODUCTION", False, environ)
    verification = env_str(
        "ACCOUNT_EMAIL_VERIFICATION", "mandatory" if is_production else "optional", environ
    ).lower()
    if verification not in EMAIL_VERIFICATION_CHOICES:
        choices = ", ".join(EMAIL_VERIFICATION_CHOICES)
        raise ImproperlyConfigured(
            f"ACCOUNT_EMAIL_VERIFICATION={verification!r} is not one of: {choices}."
        )
    return SecurityConfig(
        is_production=is_production,
        debug=env_bool("DEBUG", not is_production, environ),
        secret_key=env_str("SECRET_KEY", "" if is_production else DEVELOPMENT_SECRET_KEY, environ),
        allowed_hosts=env_list("ALLOWED_HOSTS", [] if is_production else ["*"], environ),
        account_email_verification=verification,
        stripe_enabled=env_bool("STRIPE_ENABLED", False, environ),
        stripe_live_mode=env_bool("STRIPE_LIVE_MODE", False, environ),
        stripe_public_key=env_str("STRIPE_PUBLIC_KEY", "pk_test_dummy", environ),
        stripe_secret_key=env_str("STRIPE_SECRET_KEY", "sk_test_dummy", environ),
        # Never a public constant: a missing secret in production stays empty (refused
        # when Stripe is on, and the webhook verifies nothing against an empty secret).
        stripe_webhook_secret=env_str(
            "STRIPE_WEBHOOK_SECRET", "" if is_production else new_webhook_secret(), environ
        ),
    )


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """Return DATABASE_URL when set, else build one from the DB_* variables."""
    url = env_str("DATABASE_URL", "", environ)
    if url:
        return url
    user = quote(env_str("DB_USER", "admin", environ), safe="")
    password = quote(env_str("DB_PASSWORD", "adminpasswd", environ), safe="")
    host = env_str("DB_HOST", "db", environ)
    port = env_int("DB_PORT", 5432, environ)
    name = quote(env_str("DB_NAME", "quickscale", environ), safe="")
    return f"postgres://{user}:{password}@{host}:{port}/{name}"


# Set by core/asgi.py before Django loads: only the web server pools connections.
WEB_SERVER_FLAG = "QUICKSCALE_WEB_SERVER"
WEB_SERVER_POOL_SIZE = 10


def database_pool(environ: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """Return the psycopg pool options for ``DATABASES["default"]["OPTIONS"]["pool"]``.

    The web server keeps up to DB_POOL_SIZE connections per process (default 10),
    because opening one costs about 2 ms per request. A request holds its
    connection from its first query until it finishes (a service calling an
    outside API included), so the size bounds the concurrent requests that use
    the database; one more waits up to DB_POOL_TIMEOUT seconds, then fails.
    Every other process
    (manage.py, tests, scripts) connects directly and gets None: a pool gains a
    one-off command nothing, and with one a database that is down makes each
    query wait DB_POOL_TIMEOUT seconds for a connection instead of failing at
    once. DB_POOL_SIZE=0 turns the pool off (for example behind PgBouncer).
    """
    serving = env_bool(WEB_SERVER_FLAG, False, environ)
    size = env_int("DB_POOL_SIZE", WEB_SERVER_POOL_SIZE if serving else 0, environ)
    timeout = env_int("DB_POOL_TIMEOUT", 3, environ)
    if size < 0 or timeout < 1:
        raise ImproperlyConfigured(
            f"DB_POOL_SIZE must be 0 or more (got {size}) and DB_POOL_TIMEOUT at least 1 "
            f"second (got {timeout})."
        )
    if not serving or size == 0:
        return None
    if env_int("DB_CONN_MAX_AGE", 0, environ):
        raise ImproperlyConfigured(
            "DB_CONN_MAX_AGE keeps connections open per request and cannot be combined with "
            "the connection pool: set DB_POOL_SIZE=0 to use it, or DB_CONN_MAX_AGE=0."
        )
    return {"min_size": 1, "max_size": size, "timeout": timeout}
