"""Billing errors. Each message says what happened and what to do next."""

from __future__ import annotations


class BillingError(Exception):
    """A billing request that cannot be done as asked; the message is shown to the user."""


class InvalidPurchase(BillingError):
    """A checkout for a product that does not exist, is inactive, or a bad quantity."""


class PlanChangeError(BillingError):
    """A plan change, cancellation or resume that does not apply to the current plan."""


class RefundError(BillingError):
    """A refund that is not allowed (status, amount) or that Stripe refused."""


class MissingPrerequisite(Exception):
    """A webhook event needs data that has not arrived yet; the worker retries it later."""


class NotOurs(Exception):
    """A webhook about a Stripe customer this project never created (another app on the
    account, a customer made in the dashboard): logged and stored as processed, since no
    retry would ever find it."""


class InvalidAutoTopUp(BillingError):
    """Auto top-up settings that cannot work: a pack not on sale, a threshold out of range."""
