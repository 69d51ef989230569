"""Stripe's webhook signature scheme (``Stripe-Signature: t=...,v1=...``), in plain Python.

Stripe signs ``f"{timestamp}.{raw body}"`` with HMAC-SHA256 and the endpoint's
secret. Verifying here instead of through the SDK keeps the webhook view
independent of the gateway in use, and lets the simulator and the tests sign
events exactly as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE = 300  # seconds, as in Stripe's libraries


class SignatureError(Exception):
    """The ``Stripe-Signature`` header is missing, malformed, wrong or out of date."""


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """Return the ``Stripe-Signature`` header value for ``payload``."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_signature(payload, secret, moment)}"


def verify(payload: bytes, header: str, secret: str, *, tolerance: int = DEFAULT_TOLERANCE) -> None:
    """Raise ``SignatureError`` unless ``header`` signs ``payload`` with ``secret`` recently.

    The timestamp must lie within ``tolerance`` seconds of now on either side: an
    old one is a replay, and one far ahead would stay replayable long after it
    was sent. An empty secret verifies nothing, since anyone can sign with it.
    """
    if not secret:
        raise SignatureError("No webhook secret is configured.")
    if not header:
        raise SignatureError("No Stripe-Signature header.")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Malformed timestamp in Stripe-Signature.") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("Stripe-Signature has no timestamp or no v1 signature.")
    expected = _signature(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("No signature matches the payload.")
    if tolerance and abs(time.time() - timestamp) > tolerance:
        raise SignatureError("Signature timestamp is outside the tolerance window.")


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
