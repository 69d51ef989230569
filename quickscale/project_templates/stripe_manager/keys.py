"""Offline rules for the Stripe settings: which mode a key is for, and a real-looking secret.

No network and no Django models: ``core.checks`` asks these rules while settings
load (production refuses to start when they fail), and ``manage.py stripe_check``
asks them before it calls Stripe, so a key for the wrong mode is reported
without a request that would read the wrong account.
"""

from __future__ import annotations

from typing import Literal

KeyMode = Literal["live", "test"]

WEBHOOK_SECRET_PREFIX = "whsec_"
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
# Stripe's signing secrets carry 32 (dashboard) or 64 (CLI) random characters
# after the prefix; fewer than this is a hand-typed stand-in.
MIN_WEBHOOK_SECRET_RANDOM_CHARACTERS = 24
MIN_UNIQUE_CHARACTERS = 5
WEBHOOK_SECRET_HINT = (
    "Copy the signing secret Stripe shows for this site's webhook endpoint "
    "(Developers > Webhooks) into STRIPE_WEBHOOK_SECRET."
)

# A secret key (sk_) or a restricted key (rk_) can call the API; pk_ only runs Checkout.
_SECRET_PREFIXES: dict[str, KeyMode] = {
    "sk_live_": "live",
    "rk_live_": "live",
    "sk_test_": "test",
    "rk_test_": "test",
}
_PUBLIC_PREFIXES: dict[str, KeyMode] = {"pk_live_": "live", "pk_test_": "test"}


def _mode(key: str, prefixes: dict[str, KeyMode]) -> KeyMode | None:
    for prefix, mode in prefixes.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return mode
    return None


def secret_key_mode(key: str) -> KeyMode | None:
    """``"live"`` or ``"test"`` for a secret or restricted key; None when it is neither."""
    return _mode(key, _SECRET_PREFIXES)


def key_problems(*, live_mode: bool, secret_key: str, public_key: str) -> list[str]:
    """One sentence with its fix per key that is missing, malformed or for the other mode."""
    wanted: KeyMode = "live" if live_mode else "test"
    switch = "STRIPE_LIVE_MODE=True" if wanted == "test" else "STRIPE_LIVE_MODE=False"
    problems: list[str] = []
    for name, value, prefixes, shapes in (
        ("STRIPE_SECRET_KEY", secret_key, _SECRET_PREFIXES, f"sk_{wanted}_ or rk_{wanted}_"),
        ("STRIPE_PUBLIC_KEY", public_key, _PUBLIC_PREFIXES, f"pk_{wanted}_"),
    ):
        mode = _mode(value, prefixes)
        if not value or any(marker in value.lower() for marker in PLACEHOLDER_MARKERS):
            problems.append(
                f"{name} is not set. Fix: copy the {wanted} mode key ({shapes}...) from "
                "Stripe's dashboard (Developers > API keys)."
            )
        elif mode is None:
            problems.append(
                f"{name} is not a Stripe key. Fix: use the {wanted} mode key ({shapes}...) "
                "from Stripe's dashboard (Developers > API keys)."
            )
        elif mode != wanted:
            problems.append(
                f"{name} is a {mode} mode key but STRIPE_LIVE_MODE is "
                f"{'on' if live_mode else 'off'}. Fix: use the {wanted} mode key "
                f"({shapes}...), or set {switch}."
            )
    return problems


def webhook_secret_problem(secret: str) -> str | None:
    """Return why ``secret`` is not a real-looking Stripe webhook secret, or None.

    Anyone who knows the secret can sign events that grant credits, so a public
    placeholder (``whsec_dummy``), an empty value or a short hand-typed one fails.
    """
    if not secret:
        return "STRIPE_WEBHOOK_SECRET is not set."
    if any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
        return "STRIPE_WEBHOOK_SECRET is a placeholder."
    random_part = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    if (
        not secret.startswith(WEBHOOK_SECRET_PREFIX)
        or len(random_part) < MIN_WEBHOOK_SECRET_RANDOM_CHARACTERS
        or len(set(random_part)) < MIN_UNIQUE_CHARACTERS
    ):
        return (
            "STRIPE_WEBHOOK_SECRET does not look like a Stripe signing secret "
            f"({WEBHOOK_SECRET_PREFIX} followed by at least "
            f"{MIN_WEBHOOK_SECRET_RANDOM_CHARACTERS} random characters)."
        )
    return None
