"""The one settings module, driven by environment variables.

Values come from the process environment, then from ``.env`` in the project root
(the process wins, so a runtime or CI can override a file value). Every value is
parsed by the typed helpers in ``core.env`` and production refuses to start with
unsafe values (``core.checks``). ``.env.example`` documents each variable.
"""

from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from core.checks import validate_production
from core.env import (
    database_pool,
    database_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    env_url,
    read_security_config,
)

# =============================================================================
# PATHS AND .env
# =============================================================================

BASE_DIR = Path(__file__).resolve().parent.parent

# override=False: variables the process already has (set by the runtime, CI or
# docker compose) take precedence over the file.
load_dotenv(BASE_DIR / ".env", override=False)

# All runtime state lives under .quickscale/ (git-ignored); see docs in README.md.
STATE_DIR = BASE_DIR / ".quickscale"


def _project_path(key: str, default: Path) -> Path:
    """Read a path from env; relative values are taken from the project root."""
    path = Path(env_str(key, str(default)))
    return path if path.is_absolute() else BASE_DIR / path


# =============================================================================
# ENVIRONMENT AND SECURITY
# =============================================================================

PROJECT_NAME = env_str("PROJECT_NAME", "QuickScale")

_security = read_security_config()
validate_production(_security)

IS_PRODUCTION = _security.is_production
DEBUG = _security.debug
SECRET_KEY = _security.secret_key
ALLOWED_HOSTS = _security.allowed_hosts

# The site's address, for links in emails sent outside a request (credit and
# billing emails). Default: http://localhost:WEB_PORT in development,
# https://<first ALLOWED_HOSTS name> in production.
SITE_URL = env_str("SITE_URL", "").rstrip("/") or (
    f"https://{ALLOWED_HOSTS[0].lstrip('.')}"
    if IS_PRODUCTION and ALLOWED_HOSTS
    else f"http://localhost:{env_int('WEB_PORT', 8000)}"
)
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"SITE_URL={SITE_URL!r} must start with http:// or https://, e.g. https://example.com."
    )

# Origins (scheme://host[:port]) allowed to POST when served behind a proxy
# on another host name. https://docs.djangoproject.com/en/5.2/ref/settings/#csrf-trusted-origins
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https". Only set it when
# the proxy always overwrites that header, or clients could claim to be on https.
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = (
    (_proxy_ssl_header[0], _proxy_ssl_header[1]) if _proxy_ssl_header else None
)

# How many reverse proxies sit in front of the app; allauth (and the login lockout)
# read the client IP from X-Forwarded-For this many hops back.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Sessions live in PostgreSQL, in Django's own table, shared by every process
# (REDIS_SESSIONS, in the CACHE section, reads them through Redis too).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# HTTPS in production (manage.py check --deploy --fail-level WARNING passes with these).
# https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", IS_PRODUCTION)
# The container's health check and Kubernetes' probes call /health/ and
# /health/live/ over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^health/(live/)?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", IS_PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", IS_PRODUCTION)

# Sent by common.middleware.ContentSecurityPolicyMiddleware on every response.
# Templates carry no inline scripts, handlers or style attributes, so the policy
# needs no 'unsafe-inline' and an injected <script> or style= does not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# =============================================================================
# APPLICATIONS AND MIDDLEWARE
# =============================================================================

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    # Two-factor: authenticator apps (TOTP), recovery codes and passkeys (WebAuthn).
    "allauth.mfa",
    # django-ninja: its docs page then uses its bundled (local) Swagger UI files, no CDN.
    "ninja",
    # Django's task framework (the django.tasks backport) and its PostgreSQL queue.
    "django_tasks",
    "django_tasks_db",
    # {% partialdef %}: a page names the part htmx swaps (common.htmx.render). The simple
    # config leaves TEMPLATES' loaders as written below instead of rewriting them.
    "template_partials.apps.SimpleAppConfig",
    # Project apps, lowest layer first (see the import-linter contract in pyproject.toml).
    "common",
    "users",
    "public",
    "credits",
    "services",
    "llm",
    "chat",
    "api",
    "stripe_manager",
    "admin_dashboard",
    "home",
]

MIDDLEWARE = [
    # Outermost, so a request's latency (core.metrics) covers every other middleware.
    "core.metrics.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    # Right after SecurityMiddleware so static files skip the rest of the stack.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside every middleware that can reach the database, inside those setting headers.
    "common.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff without two-factor are sent to set it up (MFA_REQUIRED_FOR_STAFF).
    "users.middleware.StaffMFAMiddleware",
    # request.htmx: whether htmx sent the request and how (boosted, history restore).
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

# Django's own loaders for DIRS and each app's templates/ (what APP_DIRS would set),
# cached outside DEBUG. The cached loader forgets a changed template only under
# runserver's autoreloader; with DEBUG on, every render reads the file, so an edited
# template shows on the next request.
_DJANGO_LOADERS = [
    "django.template.loaders.filesystem.Loader",
    "django.template.loaders.app_directories.Loader",
]
_TEMPLATE_LOADERS: list[str | tuple[str, list[str]]] = (
    list(_DJANGO_LOADERS) if DEBUG else [("django.template.loaders.cached.Loader", _DJANGO_LOADERS)]
)
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # "page.html#name" loads one {% partialdef %} of a page; other names load as usual.
            "loaders": [("template_partials.loader.Loader", _TEMPLATE_LOADERS)],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "common.context_processors.project",
                "credits.context_processors.credits",
            ],
        },
    },
]

# =============================================================================
# DATABASE (PostgreSQL only)
# =============================================================================

# DATABASE_URL wins (the local runtime sets it to its embedded cluster); else the
# URL is built from DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD.
# CONN_MAX_AGE defaults to 0 because persistent connections are unsafe under ASGI;
# the web server keeps a connection pool instead (core.env.database_pool).
DATABASES = {
    "default": dj_database_url.parse(
        database_url(),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
        # Behind PgBouncer in transaction mode a cursor cannot outlive its transaction,
        # so .iterator() must fetch on the client (docs/scaling.md).
        disable_server_side_cursors=env_bool("DB_DISABLE_SERVER_SIDE_CURSORS", False),
    )
}
if (_pool := database_pool()) is not None:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# =============================================================================
# CACHE (shared across worker processes)
# =============================================================================

# Shared between uvicorn workers: Redis when REDIS_URL is set, else a table in the
# database (created by `manage.py bootstrap` through createcachetable). The Redis
# database also holds the rate-limit counters (and RQ's queue): never call
# cache.clear() on it, which empties the whole database. Bounded socket timeouts:
# a Redis that stops answering fails a request in seconds instead of hanging it.
REDIS_URL = env_str("REDIS_URL")
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache_table"}
    )
}
# REDIS_SESSIONS: Django's cached_db engine reads sessions from the Redis cache and
# writes them to it and to PostgreSQL, so a Redis restart or eviction signs nobody out.
REDIS_SESSIONS = env_bool("REDIS_SESSIONS", False)
if REDIS_SESSIONS:
    if not REDIS_URL:
        raise ImproperlyConfigured("REDIS_SESSIONS needs REDIS_URL, e.g. redis://127.0.0.1:6379/0.")
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Where common.ratelimit counts (the API's and the contact form's limits): in Redis
# when REDIS_URL is set, else in a PostgreSQL table; each hit is one atomic step.
RATE_LIMIT_BACKEND = "redis" if REDIS_URL else "database"

# =============================================================================
# BACKGROUND TASKS (django-tasks; jobs, periodic work, emails)
# =============================================================================

# "database": a PostgreSQL table (django-tasks-db), so the embedded runtime needs no
# new server; worker: `manage.py worker`. "rq": Redis through django-tasks-rq, which
# needs REDIS_URL. A task carries ids only; the rows it names are the source of truth.
TASK_BACKEND = env_str("TASK_BACKEND", "database")
if TASK_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif TASK_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured(
            "TASK_BACKEND=rq needs REDIS_URL, e.g. redis://127.0.0.1:6379/0."
        )
    INSTALLED_APPS.append("django_rq")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    # No RQ timeout (-1): RQ's default would stop every task after 3 minutes, shorter
    # than a job may run (a service's max_run_seconds, an LLM call's retries). Jobs keep
    # the limits they have on either backend: their deadline, lease and hold.
    RQ_QUEUES: dict[str, dict[str, Any]] = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": -1}}
else:
    raise ImproperlyConfigured(f"TASK_BACKEND must be 'database' or 'rq', not {TASK_BACKEND!r}.")

# Periodic work, enqueued by the scheduler every worker runs (common.scheduler; a
# lease row lets one of them schedule): dotted task path -> interval in seconds. A
# task new here runs at a worker's next tick (every 5 s), then every interval.
PERIODIC_TASKS: dict[str, int] = {
    "credits.tasks.expire_credits": 60 * 60,
    "credits.tasks.send_credit_reminders": 24 * 60 * 60,
    "credits.tasks.release_expired_holds": 60,
    "services.tasks.sweep_job_leases": 30,
    "services.tasks.reconcile_service_usage": 5 * 60,
    # A catch-up for Stripe events (every worker applies due events in its own
    # thread as they come, WORKER_SOURCES; this covers a worker run without them).
    "stripe_manager.webhook_queue.apply_due_stripe_events": 60,
    "stripe_manager.auto_top_up_tasks.sweep_auto_top_ups": 5 * 60,
    "stripe_manager.customer_sync.sweep_customer_erasures": 5 * 60,
    "stripe_manager.webhook_queue.prune_stripe_events": 24 * 60 * 60,
}

# Work every worker takes besides tasks, each source in a thread of its own: tables whose
# rows are their own work items (common.task_worker.SourceRunner), each a function that
# applies one due item. Stripe events, and the email outbox: a mail server that hangs for
# EMAIL_TIMEOUT never holds a payment back.
WORKER_SOURCES: list[str] = [
    "stripe_manager.webhook_queue.apply_next_due_event",
    "common.mail_tasks.send_next_due_email",
]

# =============================================================================
# AUTHENTICATION (django-allauth, email only)
# =============================================================================

AUTH_USER_MODEL = "users.CustomUser"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Complexity: at least PASSWORD_MIN_LENGTH characters from at least
# PASSWORD_MIN_CHARACTER_CLASSES of lowercase, uppercase, digits and symbols.
PASSWORD_MIN_LENGTH = env_int("PASSWORD_MIN_LENGTH", 10)
PASSWORD_MIN_CHARACTER_CLASSES = env_int("PASSWORD_MIN_CHARACTER_CLASSES", 3)
if PASSWORD_MIN_LENGTH < 8 or not 1 <= PASSWORD_MIN_CHARACTER_CLASSES <= 4:
    raise ImproperlyConfigured(
        "PASSWORD_MIN_LENGTH must be at least 8 and PASSWORD_MIN_CHARACTER_CLASSES 1 to 4."
    )
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Also checks the minimum length, so Django's MinimumLengthValidator is not listed.
    {"NAME": "users.validators.ComplexityValidator"},
]

# Lockout: the ACCOUNT_LOCKOUT_ATTEMPTS-th failed sign-in within
# ACCOUNT_LOCKOUT_MINUTES locks the account, and separately the client IP, for
# ACCOUNT_LOCKOUT_MINUTES (users.lockout). allauth's own failed-login limit is set
# above it so users see our lockout page (which offers a password reset).
ACCOUNT_LOCKOUT_ATTEMPTS = env_int("ACCOUNT_LOCKOUT_ATTEMPTS", 5)
ACCOUNT_LOCKOUT_MINUTES = env_int("ACCOUNT_LOCKOUT_MINUTES", 15)
if ACCOUNT_LOCKOUT_ATTEMPTS < 1 or ACCOUNT_LOCKOUT_MINUTES < 1:
    raise ImproperlyConfigured("ACCOUNT_LOCKOUT_ATTEMPTS and ACCOUNT_LOCKOUT_MINUTES must be >= 1.")
ACCOUNT_RATE_LIMITS = {
    "login_failed": (
        f"{ACCOUNT_LOCKOUT_ATTEMPTS * 4}/m/ip,"
        f"{ACCOUNT_LOCKOUT_ATTEMPTS * 2}/{ACCOUNT_LOCKOUT_MINUTES * 60}s/key"
    ),
}

# Profile pictures (users.validators.validate_avatar, users.avatars).
AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", 2 * 1024 * 1024)
AVATAR_MAX_PIXELS = env_int("AVATAR_MAX_PIXELS", 4096 * 4096)
# Most pixels a service decodes from one input image (image_metadata_extractor);
# a larger declared size is refused from the header. 4096 x 4096 keeps one decode
# at or under 64 MiB (4 bytes a pixel at most) and admits 12 MP photos and 4K
# frames; JPEGs decode at 1/8 scale, so their limit is 64 times higher.
SERVICE_MAX_IMAGE_PIXELS = env_int("SERVICE_MAX_IMAGE_PIXELS", 4096 * 4096)
if SERVICE_MAX_IMAGE_PIXELS < 1:
    raise ImproperlyConfigured("SERVICE_MAX_IMAGE_PIXELS must be at least 1, e.g. 16777216.")

LOGIN_URL = "account_login"
# Where sign-in, sign-up and email confirmation land (users.adapters): the app home
# for users; staff land on STAFF_LOGIN_REDIRECT (a URL name or path; empty: the home too).
LOGIN_REDIRECT_URL = "home:index"
STAFF_LOGIN_REDIRECT = env_str("STAFF_LOGIN_REDIRECT", "admin_dashboard:dashboard")
ACCOUNT_LOGOUT_REDIRECT_URL = "/"

# https://docs.allauth.org/en/latest/account/configuration.html
ACCOUNT_ADAPTER = "users.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# "optional" by default in development, production refuses anything but "mandatory".
ACCOUNT_EMAIL_VERIFICATION = _security.account_email_verification
# Email subjects start with "[PROJECT_NAME] " (users.adapters.AccountAdapter).
ACCOUNT_SIGNUP_OPEN = env_bool("ACCOUNT_SIGNUP_OPEN", True)
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False

# Two-factor and passkeys (allauth.mfa): https://docs.allauth.org/en/latest/mfa/configuration.html
# A passkey is bound to the site's host name, which cannot be an IP address: open
# the site at http://localhost:PORT in development, not 127.0.0.1. Browsers allow
# WebAuthn on http only for localhost; fido2 checks the origin's scheme too, which
# is relaxed only while DEBUG is on.
MFA_ADAPTER = "users.mfa.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
MFA_TOTP_ISSUER = PROJECT_NAME
# Wrong codes count towards the sign-in lockout (users.mfa.AuthenticateForm).
MFA_FORMS = {
    "authenticate": "users.mfa.AuthenticateForm",
    "reauthenticate": "users.mfa.ReauthenticateForm",
    "add_webauthn": "users.mfa.AddWebAuthnForm",
}
# Staff must turn on two-factor before the dashboard or the Django admin opens.
MFA_REQUIRED_FOR_STAFF = env_bool("MFA_REQUIRED_FOR_STAFF", False)
# Contact form (public app): messages per client IP per hour, and their size.
CONTACT_RATE_LIMIT_PER_HOUR = env_int("CONTACT_RATE_LIMIT_PER_HOUR", 5)
if CONTACT_RATE_LIMIT_PER_HOUR < 1:
    raise ImproperlyConfigured("CONTACT_RATE_LIMIT_PER_HOUR must be at least 1.")
CONTACT_MAX_LENGTH = 5000

# Read by `manage.py bootstrap`: a superuser is created when both are set.
DJANGO_SUPERUSER_EMAIL = env_str("DJANGO_SUPERUSER_EMAIL")
DJANGO_SUPERUSER_PASSWORD = env_str("DJANGO_SUPERUSER_PASSWORD")

# =============================================================================
# EMAIL
# =============================================================================

DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@example.com")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Development mail is appended to this file (`quickscale logs mail -f` follows it).
MAIL_LOG_PATH = _project_path("MAIL_LOG_PATH", STATE_DIR / "logs" / "mail.log")

if IS_PRODUCTION:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "common.mail_log.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "smtp.example.com")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Emails are sent by the worker from the outbox (common.mail_tasks); a refused or timed-out
# send is tried again EMAIL_RETRY_SECONDS later, twice as long after each next
# failure (at most an hour), EMAIL_MAX_ATTEMPTS times in all, then given up and logged.
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 8)
EMAIL_RETRY_SECONDS = env_int("EMAIL_RETRY_SECONDS", 60)
if EMAIL_TIMEOUT < 1 or EMAIL_MAX_ATTEMPTS < 1 or EMAIL_RETRY_SECONDS < 1:
    raise ImproperlyConfigured(
        "EMAIL_TIMEOUT, EMAIL_MAX_ATTEMPTS and EMAIL_RETRY_SECONDS must be at least 1, "
        "e.g. 10, 8 and 60."
    )

# =============================================================================
# STATIC FILES AND MEDIA
# =============================================================================

STATIC_URL = "/static/"
STATIC_ROOT = _project_path("STATIC_ROOT", STATE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = _project_path("MEDIA_ROOT", STATE_DIR / "media")

# Production serves compressed, content-hashed files (needs collectstatic, run by
# bootstrap or the image build). Development and tests use plain storage so they
# work without collectstatic; WhiteNoise then serves straight from the finders.
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Media (avatars, job result files) on S3-compatible object storage when S3_BUCKET
# is set (common.media_storage: a private bucket, signed URLs that expire after
# S3_URL_EXPIRE_SECONDS); on local disk under MEDIA_ROOT otherwise. Without keys,
# boto3 finds credentials itself (an instance or pod role).
S3_BUCKET = env_str("S3_BUCKET")
S3_URL_EXPIRE_SECONDS = env_int("S3_URL_EXPIRE_SECONDS", 300)
if not 1 <= S3_URL_EXPIRE_SECONDS <= 7 * 24 * 3600:
    raise ImproperlyConfigured("S3_URL_EXPIRE_SECONDS must be 1 to 604800 (7 days), e.g. 300.")
if S3_BUCKET:
    from common.bucket_urls import bucket_origin, policy_with_image_origin

    _s3_endpoint = env_url("S3_ENDPOINT_URL") or None
    _s3_region = env_str("S3_REGION") or None
    STORAGES["default"] = {
        "BACKEND": "common.media_storage.MediaStorage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": _s3_endpoint,
            "region_name": _s3_region,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "querystring_expire": S3_URL_EXPIRE_SECONDS,
        },
    }
    # Pages show avatars straight from the bucket's own origin: let them load it.
    S3_MEDIA_ORIGIN = bucket_origin(bucket=S3_BUCKET, endpoint_url=_s3_endpoint, region=_s3_region)
    CONTENT_SECURITY_POLICY = policy_with_image_origin(CONTENT_SECURITY_POLICY, S3_MEDIA_ORIGIN)

# =============================================================================
# INTERNATIONALIZATION
# =============================================================================

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# =============================================================================
# STRIPE AND CREDITS (consumed by the credits and stripe_manager apps)
# =============================================================================

STRIPE_ENABLED = _security.stripe_enabled
STRIPE_LIVE_MODE = _security.stripe_live_mode
STRIPE_PUBLIC_KEY = _security.stripe_public_key
STRIPE_SECRET_KEY = _security.stripe_secret_key
# Random per process in development when unset (see core.env.new_webhook_secret).
STRIPE_WEBHOOK_SECRET = _security.stripe_webhook_secret
STRIPE_SUCCESS_URL = env_str("STRIPE_SUCCESS_URL", "/credits/success/")
STRIPE_CANCEL_URL = env_str("STRIPE_CANCEL_URL", "/credits/cancel/")
# Days a processed webhook event's row is kept (its payload is dropped as it is applied;
# the ProcessedStripeEvent claim that dedupes redeliveries stays). Pruned daily.
STRIPE_EVENT_RETENTION_DAYS = env_int("STRIPE_EVENT_RETENTION_DAYS", 30)
# Which payment gateway stripe_manager uses: real Stripe when STRIPE_ENABLED, else the
# offline simulator in development and none in production (stripe_manager refuses
# to start a production server with the simulator). Tests may set a dotted path.
STRIPE_GATEWAY: str = "stripe" if STRIPE_ENABLED else ("off" if IS_PRODUCTION else "simulator")

CREDIT_SYSTEM_ENABLED = env_bool("CREDIT_SYSTEM_ENABLED", True)
try:
    DEFAULT_CREDIT_BALANCE = Decimal(env_str("DEFAULT_CREDIT_BALANCE", "0"))
except ArithmeticError:
    raise ImproperlyConfigured("DEFAULT_CREDIT_BALANCE must be a number, e.g. 0 or 25.") from None
# A consume that takes the balance from above this to at or below it emails the
# user once (0 switches the email off).
LOW_CREDIT_THRESHOLD = env_int("LOW_CREDIT_THRESHOLD", 10)
if LOW_CREDIT_THRESHOLD < 0:
    raise ImproperlyConfigured("LOW_CREDIT_THRESHOLD must be 0 (off) or a positive whole number.")
MIN_CREDIT_PURCHASE = env_int("MIN_CREDIT_PURCHASE", 10)
MAX_CREDIT_PURCHASE = env_int("MAX_CREDIT_PURCHASE", 1000)
if not 0 < MIN_CREDIT_PURCHASE <= MAX_CREDIT_PURCHASE:
    raise ImproperlyConfigured(
        "MIN_CREDIT_PURCHASE and MAX_CREDIT_PURCHASE must satisfy 0 < MIN <= MAX."
    )

# =============================================================================
# SERVICES (consumed by the services app)
# =============================================================================

# The longest a service call may take. A call still unrecorded after this long
# (its end was lost, e.g. to a database outage) is failed and refunded by
# `manage.py reconcile_service_usage`; a call still running then ends with an error.
SERVICE_CALL_TIMEOUT_SECONDS = env_int("SERVICE_CALL_TIMEOUT_SECONDS", 300)
if SERVICE_CALL_TIMEOUT_SECONDS < 1:
    raise ImproperlyConfigured("SERVICE_CALL_TIMEOUT_SECONDS must be at least 1 second.")

# Background jobs (services/jobs.py). A running job holds a lease of JOB_LEASE_SECONDS,
# renewed at each progress report; a job whose lease lapsed lost its worker and is
# run again, JOB_MAX_ATTEMPTS runs in all, then failed (its credit hold released).
# A job's credits are held for JOB_MAX_QUEUE_WAIT_SECONDS plus its service's longest
# run; a job that cannot start in that time fails, uncharged. A user may have at
# most JOB_MAX_ACTIVE_PER_USER jobs queued or running (free ones hold no credits,
# so this is what stops one user filling the queue); more are refused.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 60)
JOB_MAX_QUEUE_WAIT_SECONDS = env_int("JOB_MAX_QUEUE_WAIT_SECONDS", 3600)
JOB_MAX_ACTIVE_PER_USER = env_int("JOB_MAX_ACTIVE_PER_USER", 10)
if (
    JOB_MAX_ATTEMPTS < 1
    or JOB_LEASE_SECONDS < 1
    or JOB_MAX_QUEUE_WAIT_SECONDS < 1
    or JOB_MAX_ACTIVE_PER_USER < 1
):
    raise ImproperlyConfigured(
        "JOB_MAX_ATTEMPTS, JOB_LEASE_SECONDS, JOB_MAX_QUEUE_WAIT_SECONDS and "
        "JOB_MAX_ACTIVE_PER_USER must be at least 1."
    )

# Service calls (web and API) running at once, at most, per API key or signed-in
# user across all processes, and per web server process; more get 429 with
# Retry-After (common.concurrency). A running call holds a database connection,
# so the per-process default leaves 2 of the pool's connections to pages. The
# slot of a call whose process died frees itself after SERVICE_CALL_TIMEOUT_SECONDS.
SERVICE_MAX_CONCURRENT_PER_KEY = env_int("SERVICE_MAX_CONCURRENT_PER_KEY", 4)
SERVICE_MAX_CONCURRENT_PER_PROCESS = env_int(
    "SERVICE_MAX_CONCURRENT_PER_PROCESS", max(1, _pool["max_size"] - 2) if _pool else 8
)
if SERVICE_MAX_CONCURRENT_PER_KEY < 1 or SERVICE_MAX_CONCURRENT_PER_PROCESS < 1:
    raise ImproperlyConfigured(
        "SERVICE_MAX_CONCURRENT_PER_KEY and SERVICE_MAX_CONCURRENT_PER_PROCESS must be at least 1."
    )

# =============================================================================
# LLM PROVIDERS (consumed by the llm app; docs/llm.md)
# =============================================================================

# OpenAI or any OpenAI-compatible server (Azure OpenAI, OpenRouter, vLLM, Ollama,
# LM Studio): OPENAI_BASE_URL alone is enough for a local server that takes no key.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_url("ANTHROPIC_BASE_URL")
# One provider request's time limit, and the SDKs' retries of 429/5xx/timeouts.
LLM_REQUEST_TIMEOUT_SECONDS = env_int("LLM_REQUEST_TIMEOUT_SECONDS", 120)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2)
if LLM_REQUEST_TIMEOUT_SECONDS < 1 or LLM_MAX_RETRIES < 0:
    raise ImproperlyConfigured(
        "LLM_REQUEST_TIMEOUT_SECONDS must be at least 1 and LLM_MAX_RETRIES at least 0."
    )

# Chat (the chat app): the most tokens of a conversation's newest turns sent with a
# new message (an upper estimate, llm.metering), so the cost of a reply stays bounded
# however long the conversation gets; never more than the model's window leaves.
CHAT_CONTEXT_TOKEN_BUDGET = env_int("CHAT_CONTEXT_TOKEN_BUDGET", 8000)
if CHAT_CONTEXT_TOKEN_BUDGET < 1:
    raise ImproperlyConfigured("CHAT_CONTEXT_TOKEN_BUDGET must be at least 1, e.g. 8000.")

# =============================================================================
# API (consumed by the api app)
# =============================================================================

# Requests per minute per API key, counted by common.ratelimit (shared by workers).
# 0 switches the limit off.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 60)
# Largest request body the API reads (the image service takes files up to 10 MB).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 11 * 1024 * 1024)
if API_RATE_LIMIT_PER_MINUTE < 0 or API_MAX_BODY_BYTES <= 0:
    raise ImproperlyConfigured(
        "API_RATE_LIMIT_PER_MINUTE must be 0 (off) or positive; API_MAX_BODY_BYTES positive."
    )

# =============================================================================
# REQUEST BODY LIMITS (core.body_limit, enforced while a body arrives)
# =============================================================================

# Largest request body in bytes, by route; 413 above. Without a session cookie or
# an Authorization header: the sign-up, login and contact forms get the forms
# limit, everything else the anonymous one. With one: service runs (API and
# service pages) get API_MAX_BODY_BYTES, the profile page the avatar plus its
# other fields, everything else the default. The Stripe webhook gets its own.
BODY_LIMIT_ANONYMOUS_BYTES = env_int("BODY_LIMIT_ANONYMOUS_BYTES", 64 * 1024)
BODY_LIMIT_FORMS_BYTES = env_int("BODY_LIMIT_FORMS_BYTES", 256 * 1024)
BODY_LIMIT_WEBHOOK_BYTES = env_int("BODY_LIMIT_WEBHOOK_BYTES", 1024 * 1024)
BODY_LIMIT_DEFAULT_BYTES = env_int("BODY_LIMIT_DEFAULT_BYTES", 1024 * 1024)
_body_limits = {
    "BODY_LIMIT_ANONYMOUS_BYTES": BODY_LIMIT_ANONYMOUS_BYTES,
    "BODY_LIMIT_FORMS_BYTES": BODY_LIMIT_FORMS_BYTES,
    "BODY_LIMIT_WEBHOOK_BYTES": BODY_LIMIT_WEBHOOK_BYTES,
    "BODY_LIMIT_DEFAULT_BYTES": BODY_LIMIT_DEFAULT_BYTES,
}
if _not_positive := [name for name, value in _body_limits.items() if value <= 0]:
    raise ImproperlyConfigured(
        f"{', '.join(_not_positive)} must be a positive number of bytes, e.g. 65536."
    )
# The form's text fields, CSRF token and multipart framing fit well within 64 KiB.
BODY_LIMIT_PROFILE_BYTES = AVATAR_MAX_BYTES + 64 * 1024
# Every body that reaches Django is within its route's limit, so Django keeps it in
# memory (never a temporary file) and its own size check never refuses what the
# route allows.
DATA_UPLOAD_MAX_MEMORY_SIZE = FILE_UPLOAD_MAX_MEMORY_SIZE = max(
    *_body_limits.values(), API_MAX_BODY_BYTES, BODY_LIMIT_PROFILE_BYTES
)

# =============================================================================
# METRICS (core.metrics: /metrics in Prometheus' text format)
# =============================================================================

# The bearer token a scraper sends (Authorization: Bearer <token>); unset, /metrics is a 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# =============================================================================
# LOGGING (JSON lines in production, key=value in development)
# =============================================================================

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={LOG_LEVEL!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": (
                "core.log_format.JsonFormatter"
                if IS_PRODUCTION
                else "core.log_format.KeyValueFormatter"
            ),
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's default handlers so each line is printed once, structured.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
