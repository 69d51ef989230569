"""The payment gateway: one interface, the real Stripe implementation, and the chooser.

This module is the only code that imports the ``stripe`` SDK (an import-linter
contract checks it). Everything else calls :func:`get_gateway` and passes plain
data in and out: the rest of the app never sees an SDK object. The offline
simulator (the ``stripe_manager.simulator`` package) implements the same interface.

``settings.STRIPE_GATEWAY`` picks the implementation: ``"stripe"``,
``"simulator"``, ``"off"`` (no payments) or a dotted path to a ``Gateway``
subclass (tests use this to swap in a fake, as allauth's tests swap adapters).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from stripe_manager import money

if TYPE_CHECKING:
    # Types only: the SDK itself loads when a StripeGateway is made.
    import stripe
    from stripe.params import (
        CustomerCreateParams,
        CustomerUpdateParams,
        InvoiceCreatePreviewParams,
        InvoicePaymentListParams,
        PaymentIntentCreateParams,
        PaymentIntentRetrieveParams,
        PriceListParams,
        RefundCreateParams,
        SubscriptionCancelParams,
        SubscriptionListParams,
        SubscriptionScheduleCreateParams,
        SubscriptionScheduleUpdateParams,
        SubscriptionUpdateParams,
    )
    from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionCreateParams
    from stripe.params.checkout import SessionListParams as CheckoutSessionListParams

logger = logging.getLogger(__name__)

# The API version the pinned SDK (stripe==16.1.0) ships; fixtures follow its shapes.
API_VERSION = "2026-10-28.endive"

GATEWAYS = {
    "stripe": "stripe_manager.gateway.StripeGateway",
    "simulator": "stripe_manager.simulator.gateway.SimulatorGateway",
}

Mode = Literal["payment", "subscription"]


class GatewayError(Exception):
    """The payment provider refused or failed an operation; the message is for people."""


class CatalogError(GatewayError):
    """A Stripe product or price whose metadata is unusable: the catalog sync stops, unchanged.

    ``problem`` says what is wrong and where, ``fix`` what to do; the message is both.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} {fix}")
        self.problem = problem
        self.fix = fix


class PaymentsDisabled(GatewayError):
    """No gateway is configured (production with STRIPE_ENABLED off)."""


class CardRefused(GatewayError):
    """An off-session charge the card refused: ``code`` is Stripe's error code.

    ``authentication_required`` means the bank wants the customer present (3-D
    Secure); ``card_declined`` and the other card error codes mean it declined.
    ``payment_intent_id`` names the failed intent when Stripe made one.
    """

    def __init__(self, message: str, *, code: str, payment_intent_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.payment_intent_id = payment_intent_id

    @property
    def needs_authentication(self) -> bool:
        return self.code == "authentication_required"


@dataclass(frozen=True)
class PriceInfo:
    """An active price and its product, as the catalog sync needs them."""

    price_id: str
    product_id: str
    name: str
    description: str
    unit_amount: int  # the currency's minor units (``stripe_manager.money``)
    currency: str  # one ``price_currency`` accepts
    interval: str  # "none", "month" or "year"
    credit_amount: Decimal | None  # price metadata, else product metadata, else None
    display_order: int = 0
    active: bool = True
    trial_days: int | None = None  # a plan's free trial (metadata ``trial_days``)
    trial_credit_amount: Decimal = Decimal(0)  # granted for the trial (``trial_credits``)
    highlight: bool = False  # the plan the pricing page stands out (metadata ``highlight``)
    features: tuple[str, ...] = ()  # a plan's selling points (metadata ``features``)


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str


@dataclass(frozen=True)
class OffSessionPayment:
    """A PaymentIntent confirmed without the customer; its credits come by webhook."""

    payment_intent_id: str
    status: str  # "succeeded", or "processing" until Stripe settles it


@dataclass(frozen=True)
class UpgradePreview:
    """What an upgrade charges now, computed as of ``proration_date``.

    The confirmed upgrade passes the same ``proration_date`` back, so the
    invoice it creates equals this preview.
    """

    amount_due: int  # minor units, charged at once
    currency: str
    proration_date: int  # unix seconds


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str
    amount: int  # minor units


class Gateway(abc.ABC):
    """What stripe_manager asks of a payment provider. One method per operation."""

    # Methods that implementations must provide.

    @abc.abstractmethod
    def create_customer(self, *, email: str, user_id: int, idempotency_key: str) -> str:
        """Create a customer and return its id."""

    # Not abstract: a gateway that keeps no customer details says so with a GatewayError.

    def update_customer(self, *, customer_id: str, email: str, name: str) -> None:
        """Set the customer's email and name to the account's (an empty name clears it)."""
        raise GatewayError("This payment gateway cannot update customers.")

    def erase_customer(self, *, customer_id: str) -> None:
        """Clear the personal data a customer holds (name, email, phone, addresses, metadata).

        The customer itself stays, with its payments, invoices and subscriptions:
        the records a business must keep, and what a later refund needs.
        """
        raise GatewayError("This payment gateway cannot erase customers.")

    @abc.abstractmethod
    def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        quantity: int,
        mode: Mode,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        trial_days: int | None = None,
        save_card: bool = False,
    ) -> CheckoutSession:
        """Open a hosted checkout for one price and return where to send the user.

        ``trial_days`` (subscriptions only) starts the plan with a free trial of
        that many days: no charge until it ends. ``save_card`` (payments only)
        keeps the card on the customer for later off-session charges (auto top-up).
        """

    @abc.abstractmethod
    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        """Open a billing portal session and return its URL."""

    @abc.abstractmethod
    def upgrade_subscription(
        self,
        *,
        subscription_id: str,
        item_id: str,
        price_id: str,
        proration_date: int | None = None,
    ) -> None:
        """Switch to ``price_id`` now and invoice the proration immediately.

        ``proration_date`` (from :meth:`preview_upgrade`) prorates as of that
        moment, so the charge equals the preview. The new state arrives by
        webhook, as for every plan change.
        """

    def preview_upgrade(
        self, *, subscription_id: str, item_id: str, price_id: str
    ) -> UpgradePreview:
        """What :meth:`upgrade_subscription` to ``price_id`` would charge now.

        Not abstract: a gateway that cannot preview says so with a ``GatewayError``.
        """
        raise GatewayError("This payment gateway cannot preview plan changes.")

    @abc.abstractmethod
    def schedule_downgrade(self, *, subscription_id: str, price_id: str) -> None:
        """Switch to ``price_id`` at the end of the current period (a subscription schedule)."""

    @abc.abstractmethod
    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        """Cancel at period end (``cancel=True``) or resume (``False``)."""

    def expire_checkout_sessions(self, *, customer_id: str) -> list[str]:
        """Expire the customer's Checkout sessions still open; return their ids.

        For an account being deleted, before its subscriptions are cancelled: a
        checkout opened before the deletion can then no longer be paid (and start
        a plan nobody would cancel). A session paid meanwhile is left out; its
        subscription is ended by the cancellation that follows. Not abstract, as
        ``cancel_customer_subscriptions``.
        """
        raise GatewayError("This payment gateway cannot expire checkout sessions.")

    def cancel_customer_subscriptions(self, *, customer_id: str) -> list[str]:
        """End every subscription of the customer that has not ended, now; return their ids.

        For an account being deleted: no final invoice, no proration, nothing
        refunded. The provider's own list is read (a subscription whose events
        have not arrived yet is ended too), and one ended already is not listed,
        so a retry is harmless. Not abstract: a gateway without it says so with
        a ``GatewayError``.
        """
        raise GatewayError("This payment gateway cannot cancel subscriptions.")

    @abc.abstractmethod
    def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundResult:
        """Refund ``amount`` minor units of a payment."""

    @abc.abstractmethod
    def list_prices(self, *, product_id: str | None = None) -> list[PriceInfo]:
        """Every active price (of one product when given), with its product."""

    def retrieve_payment(self, *, payment_intent_id: str) -> dict[str, Any]:
        """What the provider says of a payment now (status, amounts, refunds), for staff.

        Plain data for display; not abstract, so a gateway that cannot look
        payments up says so with a ``GatewayError``.
        """
        raise GatewayError("This payment gateway cannot look up payments.")

    def charge_saved_card(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount: int,
        currency: str,
        description: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> OffSessionPayment:
        """Charge ``amount`` minor units to a saved card, the customer not present.

        Raises ``CardRefused`` when the card needs authentication or is declined,
        ``GatewayError`` for anything else (the same key may be tried again).
        Not abstract: a gateway without saved cards says so.
        """
        raise GatewayError("This payment gateway cannot charge saved cards.")

    def invoice_payment_intents(self, *, invoice_id: str) -> list[str]:
        """The payment intents that paid invoice ``invoice_id``, oldest first.

        An invoice's ``payments`` list is includable only (never in a webhook
        payload): this is where a plan payment's intent comes from when its
        ``invoice_payment.paid`` event has not filled it in.
        """
        raise GatewayError("This payment gateway cannot list an invoice's payments.")


def check_gateway_setting() -> None:
    """Refuse the simulator in production (called when the app starts)."""
    if settings.IS_PRODUCTION and settings.STRIPE_GATEWAY == "simulator":
        raise ImproperlyConfigured(
            "The Stripe simulator cannot run in production. Set STRIPE_ENABLED=True with "
            "real keys, or leave payments off."
        )


def payments_enabled() -> bool:
    return bool(settings.STRIPE_GATEWAY) and settings.STRIPE_GATEWAY != "off"


def uses_simulator() -> bool:
    return bool(settings.STRIPE_GATEWAY == "simulator")


def get_gateway() -> Gateway:
    """Return the configured gateway; raise ``PaymentsDisabled`` when there is none."""
    check_gateway_setting()
    choice = settings.STRIPE_GATEWAY
    if not payments_enabled():
        raise PaymentsDisabled("Payments are not available on this site.")
    gateway_class = import_string(GATEWAYS.get(choice, choice))
    gateway: Gateway = gateway_class()
    return gateway


def metadata_credit_amount(*metadatas: Any) -> Decimal | None:
    """The first finite ``credit_amount`` among ``metadatas`` (price's, then product's)."""
    for metadata in metadatas:
        value = (metadata or {}).get("credit_amount")
        if value not in (None, ""):
            try:
                amount = Decimal(str(value))
            except ArithmeticError:
                amount = Decimal("NaN")
            if amount.is_finite():
                return amount
            logger.warning("ignoring non-numeric credit_amount", extra={"value": value})
    return None


def price_currency(currency: str, *, where: str) -> str:
    """``currency`` (lower case) when this project can hold its amounts exactly.

    A three-decimal currency raises ``CatalogError`` naming ``where``
    (``stripe_manager.money`` says why), so the sync stops before it writes
    anything and ``stripe_check`` names the price.
    """
    try:
        money.exponent(currency)
    except money.UnsupportedCurrency as error:
        raise CatalogError(
            f"{where}: {error}",
            "Price it in another currency in Stripe, then sync the catalog again.",
        ) from error
    return currency.lower()


# Stripe refuses longer trials (``trial_period_days`` is at most 730).
MAX_TRIAL_DAYS = 730


def metadata_trial_days(*metadatas: Any, where: str) -> int | None:
    """The first ``trial_days`` among ``metadatas``: a whole number of days, 1 to 730.

    None when no metadata sets it. A value that is not such a number raises
    ``CatalogError`` naming ``where``, so the sync stops before it writes anything
    instead of selling a plan with a trial nobody meant.
    """
    for metadata in metadatas:
        value = (metadata or {}).get("trial_days")
        if value in (None, ""):
            continue
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_TRIAL_DAYS:
            raise CatalogError(
                f"{where}: metadata trial_days must be a whole number of days from 1 to "
                f"{MAX_TRIAL_DAYS}, not {value!r}.",
                "Fix it in Stripe (or remove it for no trial), then sync the catalog again.",
            )
        return int(text)
    return None


def metadata_trial_credits(*metadatas: Any, where: str) -> Decimal:
    """The first ``trial_credits`` among ``metadatas`` (credits for the trial), else 0.

    Zero is allowed (a trial without credits); a negative or non-numeric value
    raises ``CatalogError`` naming ``where``.
    """
    for metadata in metadatas:
        value = (metadata or {}).get("trial_credits")
        if value in (None, ""):
            continue
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise CatalogError(
                f"{where}: metadata trial_credits must be a number of credits of 0 or more "
                f"(at most 2 decimals), not {value!r}.",
                "Fix it in Stripe, then sync the catalog again.",
            )
        return amount
    return Decimal(0)


# A plan card lists at most this many features, each at most this long.
MAX_FEATURES = 8
MAX_FEATURE_LENGTH = 80


def metadata_highlight(*metadatas: Any, where: str) -> bool:
    """The first ``highlight`` among ``metadatas``: ``true`` or ``false``, else False.

    Any other value raises ``CatalogError`` naming ``where`` (a typo should not
    silently un-highlight the plan the owner meant to sell).
    """
    for metadata in metadatas:
        value = (metadata or {}).get("highlight")
        if value in (None, ""):
            continue
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise CatalogError(
                f"{where}: metadata highlight must be true or false, not {value!r}.",
                "Fix it in Stripe (or remove it), then sync the catalog again.",
            )
        return text == "true"
    return False


def metadata_features(*metadatas: Any, where: str) -> tuple[str, ...]:
    """The first ``features`` among ``metadatas``: a ``;``-separated list, trimmed.

    Empty items are dropped. More than ``MAX_FEATURES`` items, or one longer than
    ``MAX_FEATURE_LENGTH`` characters, raises ``CatalogError`` naming ``where``.
    """
    for metadata in metadatas:
        value = (metadata or {}).get("features")
        if value in (None, ""):
            continue
        items = tuple(item.strip() for item in str(value).split(";") if item.strip())
        if len(items) > MAX_FEATURES or any(len(item) > MAX_FEATURE_LENGTH for item in items):
            raise CatalogError(
                f"{where}: metadata features must be at most {MAX_FEATURES} items separated "
                f"by ';', each at most {MAX_FEATURE_LENGTH} characters.",
                "Shorten the list in Stripe, then sync the catalog again.",
            )
        return items
    return ()


def metadata_display_order(*metadatas: Any) -> int:
    """The first integer ``display_order`` among ``metadatas``, else 0."""
    for metadata in metadatas:
        value = (metadata or {}).get("display_order")
        if value not in (None, ""):
            try:
                return int(str(value))
            except ValueError:
                logger.warning("ignoring non-numeric display_order", extra={"value": value})
    return 0


# --------------------------------------------------------------------------- real Stripe
#
# Every request below is built as the SDK's generated parameter type
# (``stripe.params.*``) and every answer is read through the SDK's resource
# classes (``stripe.Subscription``, ``stripe.Price`` ...), so mypy rejects a
# parameter name Stripe does not know and a field read from where the pinned API
# version does not put it. ``_call`` keeps the SDK method's own signature.

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


def _id_of(value: str | _Identified | None) -> str:
    """An expandable field: an id, or the expanded object carrying one."""
    if value is None:
        return ""
    return value if isinstance(value, str) else value.id


def _metadata(obj: stripe.StripeObject | None) -> dict[str, Any]:
    """Metadata as a dict (an SDK ``StripeObject`` is not a dict)."""
    return obj.to_dict() if obj is not None else {}


class StripeGateway(Gateway):
    """The real Stripe API, through the pinned SDK and API version."""

    def __init__(
        self, *, api_key: str | None = None, http_client: stripe.HTTPClient | None = None
    ) -> None:
        import stripe

        self._client = stripe.StripeClient(
            api_key or settings.STRIPE_SECRET_KEY,
            stripe_version=API_VERSION,
            http_client=http_client,
            max_network_retries=2,
        )

    def _call(
        self, operation: str, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        import stripe

        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as error:
            logger.warning("stripe call failed", extra={"operation": operation})
            message = getattr(error, "user_message", None) or str(error)
            raise GatewayError(f"Stripe could not {operation}: {message}") from error

    def create_customer(self, *, email: str, user_id: int, idempotency_key: str) -> str:
        params: CustomerCreateParams = {"email": email, "metadata": {"user_id": str(user_id)}}
        customer = self._call(
            "create the customer",
            self._client.v1.customers.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return customer.id

    def update_customer(self, *, customer_id: str, email: str, name: str) -> None:
        params: CustomerUpdateParams = {"email": email, "name": name}
        self._call(
            "update the customer", self._client.v1.customers.update, customer_id, params=params
        )

    def erase_customer(self, *, customer_id: str) -> None:
        # An empty string unsets a field in Stripe's API (metadata: every key).
        params: CustomerUpdateParams = {
            "name": "",
            "email": "",
            "phone": "",
            "description": "",
            "address": "",
            "shipping": "",
            "business_name": "",
            "individual_name": "",
            "metadata": "",
        }
        self._call(
            "erase the customer", self._client.v1.customers.update, customer_id, params=params
        )

    def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        quantity: int,
        mode: Mode,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        trial_days: int | None = None,
        save_card: bool = False,
    ) -> CheckoutSession:
        params: CheckoutSessionCreateParams = {
            "mode": mode,
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": quantity}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
        }
        if mode == "subscription":
            params["subscription_data"] = {"metadata": metadata}
            if trial_days:
                params["subscription_data"]["trial_period_days"] = trial_days
        else:
            params["payment_intent_data"] = {"metadata": metadata}
            if save_card:
                params["payment_intent_data"]["setup_future_usage"] = "off_session"
        session = self._call(
            "start the checkout", self._client.v1.checkout.sessions.create, params=params
        )
        if not session.url:
            raise GatewayError("Stripe could not start the checkout: it returned no URL.")
        return CheckoutSession(session_id=session.id, url=session.url)

    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        params: PortalSessionCreateParams = {"customer": customer_id, "return_url": return_url}
        session = self._call(
            "open the billing portal",
            self._client.v1.billing_portal.sessions.create,
            params=params,
        )
        return session.url

    def preview_upgrade(
        self, *, subscription_id: str, item_id: str, price_id: str
    ) -> UpgradePreview:
        # The confirmed update reuses this moment, so Stripe prorates both alike.
        proration_date = int(time.time())
        params: InvoiceCreatePreviewParams = {
            "subscription": subscription_id,
            "subscription_details": {
                "items": [{"id": item_id, "price": price_id}],
                "proration_behavior": "always_invoice",
                "proration_date": proration_date,
            },
        }
        invoice = self._call(
            "preview the plan change", self._client.v1.invoices.create_preview, params=params
        )
        return UpgradePreview(
            amount_due=invoice.amount_due,
            currency=invoice.currency,
            proration_date=proration_date,
        )

    def upgrade_subscription(
        self,
        *,
        subscription_id: str,
        item_id: str,
        price_id: str,
        proration_date: int | None = None,
    ) -> None:
        subscription = self._call(
            "read the subscription", self._client.v1.subscriptions.retrieve, subscription_id
        )
        if subscription.schedule:
            self._call(
                "release the pending plan change",
                self._client.v1.subscription_schedules.release,
                _id_of(subscription.schedule),
            )
        if subscription.cancel_at_period_end:
            # A pending update accepts only the price change, so resume in its own call.
            self.set_cancel_at_period_end(subscription_id=subscription_id, cancel=False)
        # pending_if_incomplete: Stripe keeps the old price until the proration invoice is
        # paid (the subscription carries a `pending_update` meanwhile), so an unpaid upgrade
        # never switches the plan; a declined card leaves the user on the plan they paid for.
        params: SubscriptionUpdateParams = {
            "items": [{"id": item_id, "price": price_id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        }
        if proration_date is not None:
            params["proration_date"] = proration_date
        self._call(
            "change the plan", self._client.v1.subscriptions.update, subscription_id, params=params
        )

    def schedule_downgrade(self, *, subscription_id: str, price_id: str) -> None:
        subscription = self._call(
            "read the subscription", self._client.v1.subscriptions.retrieve, subscription_id
        )
        if subscription.schedule:
            schedule = self._call(
                "read the schedule",
                self._client.v1.subscription_schedules.retrieve,
                _id_of(subscription.schedule),
            )
        else:
            create: SubscriptionScheduleCreateParams = {"from_subscription": subscription_id}
            schedule = self._call(
                "schedule the plan change",
                self._client.v1.subscription_schedules.create,
                params=create,
            )
        # Stripe keeps past phases on a schedule; the update starts from the current one.
        current = schedule.current_phase or schedule.phases[0]
        item = subscription.items.data[0]
        quantity = item.quantity or 1
        recurring = item.price.recurring
        if recurring is None:
            raise GatewayError("Stripe could not schedule the plan change: the price is one-off.")
        params: SubscriptionScheduleUpdateParams = {
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": item.price.id, "quantity": quantity}],
                    "start_date": current.start_date,
                    "end_date": current.end_date,
                },
                {
                    "items": [{"price": price_id, "quantity": quantity}],
                    "duration": {
                        "interval": recurring.interval,
                        "interval_count": recurring.interval_count or 1,
                    },
                    "proration_behavior": "none",
                },
            ],
        }
        self._call(
            "schedule the plan change",
            self._client.v1.subscription_schedules.update,
            schedule.id,
            params=params,
        )

    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        self._call(
            "update the subscription",
            self._client.v1.subscriptions.update,
            subscription_id,
            params=params,
        )

    def expire_checkout_sessions(self, *, customer_id: str) -> list[str]:
        import stripe

        listing: CheckoutSessionListParams = {
            "customer": customer_id,
            "status": "open",
            "limit": 100,
        }
        page = self._call(
            "list the checkout sessions", self._client.v1.checkout.sessions.list, params=listing
        )
        expired = []
        for session in page.auto_paging_iter():
            try:
                self._call(
                    "expire the checkout session",
                    self._client.v1.checkout.sessions.expire,
                    session.id,
                )
            except GatewayError as error:
                if not isinstance(error.__cause__, stripe.InvalidRequestError):
                    raise
                # Paid (or expired) since it was listed: only an open session can expire.
                logger.warning(
                    "checkout session not expired",
                    extra={"session_id": session.id, "error": str(error)[:500]},
                )
                continue
            expired.append(session.id)
        return expired

    def cancel_customer_subscriptions(self, *, customer_id: str) -> list[str]:
        # Without a status, Stripe lists the subscriptions that are not canceled.
        listing: SubscriptionListParams = {"customer": customer_id, "limit": 100}
        page = self._call(
            "list the subscriptions", self._client.v1.subscriptions.list, params=listing
        )
        # Stripe's defaults, spelled out: no final invoice for usage, no prorated credit.
        params: SubscriptionCancelParams = {
            "invoice_now": False,
            "prorate": False,
            "cancellation_details": {"comment": "Account deleted"},
        }
        cancelled = []
        for subscription in page.auto_paging_iter():
            if subscription.status in ("canceled", "incomplete_expired"):
                continue
            self._call(
                "cancel the subscription",
                self._client.v1.subscriptions.cancel,
                subscription.id,
                params=params,
            )
            cancelled.append(subscription.id)
        return cancelled

    def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundResult:
        params: RefundCreateParams = {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "metadata": metadata,
        }
        refund = self._call(
            "refund the payment",
            self._client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return RefundResult(refund_id=refund.id, status=refund.status or "", amount=refund.amount)

    def retrieve_payment(self, *, payment_intent_id: str) -> dict[str, Any]:
        params: PaymentIntentRetrieveParams = {"expand": ["latest_charge"]}
        intent = self._call(
            "look up the payment",
            self._client.v1.payment_intents.retrieve,
            payment_intent_id,
            params=params,
        )
        charge = intent.latest_charge
        expanded = None if charge is None or isinstance(charge, str) else charge
        return {
            "id": intent.id,
            "status": intent.status,
            "amount": intent.amount,
            "amount_received": intent.amount_received,
            "currency": intent.currency,
            "charge": _id_of(charge),
            "amount_refunded": expanded.amount_refunded if expanded else None,
            "refunded": expanded.refunded if expanded else None,
            "livemode": intent.livemode,
        }

    def charge_saved_card(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount: int,
        currency: str,
        description: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> OffSessionPayment:
        import stripe

        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency,
            "customer": customer_id,
            "payment_method": payment_method_id,
            "off_session": True,
            "confirm": True,
            "description": description,
            "metadata": metadata,
        }
        try:
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as error:
            # Off-session, a card that wants 3-D Secure fails with this code (the
            # intent stays requires_payment_method) instead of asking for action.
            failed = error.error.payment_intent if error.error else None
            logger.info("off-session charge refused", extra={"code": error.code})
            raise CardRefused(
                f"The card was refused: {error.user_message or error.code}",
                code=str(error.code or "card_declined"),
                payment_intent_id=failed.id if failed else "",
            ) from error
        except stripe.StripeError as error:
            logger.warning("stripe call failed", extra={"operation": "charge the saved card"})
            message = getattr(error, "user_message", None) or str(error)
            raise GatewayError(f"Stripe could not charge the saved card: {message}") from error
        if intent.status == "requires_action":
            raise CardRefused(
                "The card needs the customer to authenticate the payment.",
                code="authentication_required",
                payment_intent_id=intent.id,
            )
        if intent.status not in ("succeeded", "processing"):
            raise CardRefused(
                f"The card was refused (payment {intent.status}).",
                code="card_declined",
                payment_intent_id=intent.id,
            )
        return OffSessionPayment(payment_intent_id=intent.id, status=intent.status)

    def invoice_payment_intents(self, *, invoice_id: str) -> list[str]:
        params: InvoicePaymentListParams = {"invoice": invoice_id, "status": "paid", "limit": 100}
        page = self._call(
            "list the invoice's payments", self._client.v1.invoice_payments.list, params=params
        )
        rows = sorted(page.data, key=lambda row: row.created)
        intents = [_id_of(row.payment.payment_intent) for row in rows]
        return [intent for intent in intents if intent]

    def list_prices(self, *, product_id: str | None = None) -> list[PriceInfo]:
        params: PriceListParams = {"active": True, "expand": ["data.product"], "limit": 100}
        if product_id:
            params["product"] = product_id
        page = self._call("list prices", self._client.v1.prices.list, params=params)
        result = []
        for price in page.auto_paging_iter():
            product = None if isinstance(price.product, str) else price.product
            if product and not product.active:
                continue
            product_metadata = _metadata(product.metadata) if product else None
            metadata = _metadata(price.metadata)
            where = f"Stripe price {price.id} (product {_id_of(price.product)})"
            result.append(
                PriceInfo(
                    price_id=price.id,
                    product_id=_id_of(price.product),
                    name=(product.name if product else "") or price.nickname or price.id,
                    description=(product.description if product else None) or "",
                    unit_amount=price.unit_amount or 0,
                    currency=price_currency(price.currency, where=where),
                    interval=price.recurring.interval if price.recurring else "none",
                    credit_amount=metadata_credit_amount(metadata, product_metadata),
                    display_order=metadata_display_order(metadata, product_metadata),
                    trial_days=metadata_trial_days(metadata, product_metadata, where=where),
                    trial_credit_amount=metadata_trial_credits(
                        metadata, product_metadata, where=where
                    ),
                    highlight=metadata_highlight(metadata, product_metadata, where=where),
                    features=metadata_features(metadata, product_metadata, where=where),
                )
            )
        return result
