"""The go-live check: is the configured Stripe account set up the way this project needs?

``manage.py stripe_check`` (and ``quickscale check --stripe``) runs :func:`check`.
It only reads: the keys and secret offline first (``stripe_manager.keys``, the
rules production also runs at start-up), then, through the real gateway's SDK
client, the webhook endpoints, the active prices and the Billing Portal's
default configuration. Each result is one line; a failed one carries its fix.

Two failures stop the check at once (:class:`CheckStopped`): keys for the other
mode (reading that account would report on the wrong one) and a key Stripe
refuses (revoked, rolled or mistyped), since every later read would fail too.

Only ``stripe_manager.gateway`` may import the SDK, so the reads go through a
subclass of :class:`StripeGateway` that adds the read-only calls it needs; a
refused key is told apart by the HTTP status Stripe answered (401).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus

from django.conf import settings
from django.urls import reverse

from stripe_manager.gateway import API_VERSION, CatalogError, GatewayError, StripeGateway
from stripe_manager.keys import key_problems, secret_key_mode, webhook_secret_problem
from stripe_manager.webhooks import HANDLED_EVENT_TYPES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """One line of the report: what was checked, and the fix when it failed."""

    ok: bool
    text: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.text}"
        return f"FAIL  {self.text} Fix: {self.fix}"


class CheckStopped(Exception):
    """The check cannot go on (wrong-mode keys, a key Stripe refuses); the message says why."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    status: str
    events: frozenset[str]
    api_version: str | None  # None: the account's default version applies


class _AccountReader(StripeGateway):
    """The real gateway plus the read-only calls the check needs."""

    def webhook_endpoints(self) -> list[Endpoint]:
        page = self._call(
            "list the webhook endpoints",
            self._client.v1.webhook_endpoints.list,
            params={"limit": 100},
        )
        return [
            Endpoint(
                url=str(endpoint.url),
                status=str(endpoint.status),
                events=frozenset(str(event) for event in endpoint.enabled_events),
                api_version=str(endpoint.api_version) if endpoint.api_version else None,
            )
            for endpoint in page.auto_paging_iter()
        ]

    def portal_allows_plan_switching(self) -> bool | None:
        """Whether the default Billing Portal configuration lets customers switch plans.

        None when the portal was never configured (no default configuration).
        """
        page = self._call(
            "read the Billing Portal configuration",
            self._client.v1.billing_portal.configurations.list,
            params={"is_default": True, "active": True, "limit": 1},
        )
        if not page.data:
            return None
        return bool(page.data[0].features.subscription_update.enabled)


def _stopped(error: GatewayError) -> CheckStopped:
    """The one line for a read that failed: a refused key says so and names the fix."""
    status = getattr(error.__cause__, "http_status", None)
    mode = secret_key_mode(settings.STRIPE_SECRET_KEY) or "configured"
    if status == HTTPStatus.UNAUTHORIZED:
        return CheckStopped(
            "Stripe refused STRIPE_SECRET_KEY (revoked, rolled or mistyped). Fix: copy the "
            f"{mode} mode secret key from Stripe's dashboard (Developers > API keys) into "
            "STRIPE_SECRET_KEY."
        )
    if status == HTTPStatus.FORBIDDEN:
        return CheckStopped(
            f"{error} Fix: give the restricted key read access to webhook endpoints, prices, "
            "products and the customer portal, or use the secret key."
        )
    return CheckStopped(f"{error} Fix: check the network and STRIPE_SECRET_KEY, then retry.")


def webhook_url() -> str:
    """Where Stripe must send this site's events."""
    return f"{settings.SITE_URL}{reverse('stripe_manager:webhook')}"


def offline_results() -> list[Result]:
    """The settings alone: keys for ``STRIPE_LIVE_MODE``, a real-looking signing secret."""
    results = []
    problems = key_problems(
        live_mode=settings.STRIPE_LIVE_MODE,
        secret_key=settings.STRIPE_SECRET_KEY,
        public_key=settings.STRIPE_PUBLIC_KEY,
    )
    if problems:
        raise CheckStopped(" ".join(problems))
    mode = "live" if settings.STRIPE_LIVE_MODE else "test"
    results.append(Result(True, f"keys are {mode} mode keys, as STRIPE_LIVE_MODE says"))
    secret_problem = webhook_secret_problem(settings.STRIPE_WEBHOOK_SECRET)
    if secret_problem:
        results.append(
            Result(
                False,
                secret_problem,
                "reveal the signing secret of the endpoint below in Stripe's dashboard "
                "(Developers > Webhooks) and set STRIPE_WEBHOOK_SECRET to it.",
            )
        )
    else:
        results.append(Result(True, "STRIPE_WEBHOOK_SECRET is set (whsec_...)"))
    return results


def _endpoint_results(endpoints: list[Endpoint]) -> Iterator[Result]:
    url = webhook_url()
    matching = [endpoint for endpoint in endpoints if endpoint.url == url]
    if not matching:
        yield Result(
            False,
            f"no webhook endpoint for {url}.",
            f"add one in Developers > Webhooks with that URL and the {len(HANDLED_EVENT_TYPES)} "
            "event types listed in docs/going-live.md.",
        )
        return
    endpoint = matching[0]
    if endpoint.status != "enabled":
        yield Result(
            False,
            f"the webhook endpoint for {url} is {endpoint.status}.",
            "enable it in Developers > Webhooks (Stripe disables an endpoint that keeps failing).",
        )
    else:
        yield Result(True, f"webhook endpoint {url} is enabled")
    if endpoint.api_version and endpoint.api_version != API_VERSION:
        # Payload shapes follow the endpoint's version; the handlers read the pinned one.
        yield Result(
            False,
            f"the webhook endpoint sends payloads of API version {endpoint.api_version}, "
            f"but this project reads {API_VERSION}.",
            f"add an endpoint with API version {API_VERSION} (an endpoint's version cannot be "
            "changed), set STRIPE_WEBHOOK_SECRET to its secret, then delete the old one.",
        )
    subscribed = set(endpoint.events)
    handled = set(HANDLED_EVENT_TYPES)
    if "*" in subscribed:
        yield Result(
            False,
            "the webhook endpoint subscribes to every event type (*).",
            "select exactly the event types listed in docs/going-live.md instead.",
        )
        return
    missing, extra = sorted(handled - subscribed), sorted(subscribed - handled)
    if missing:
        yield Result(
            False,
            f"the webhook endpoint misses event types: {', '.join(missing)}.",
            "add them to the endpoint in Developers > Webhooks.",
        )
    if extra:
        yield Result(
            False,
            f"the webhook endpoint sends event types this project does not handle: "
            f"{', '.join(extra)}.",
            "remove them from the endpoint in Developers > Webhooks.",
        )
    if not (missing or extra):
        yield Result(True, f"it subscribes to exactly the {len(handled)} handled event types")


def _price_results(reader: StripeGateway) -> Iterator[Result]:
    try:
        prices = reader.list_prices()
    except CatalogError as error:  # metadata the sync would refuse (a trial's length)
        yield Result(False, error.problem, "correct it in Product catalog.")
        return
    lacking = [price for price in prices if price.credit_amount is None]
    for price in lacking:
        yield Result(
            False,
            f"price {price.price_id} ({price.name}) has no credit_amount metadata.",
            f"add credit_amount (credits it grants) to the metadata of product "
            f"{price.product_id} in Product catalog.",
        )
    if not prices:
        yield Result(
            False,
            "there is no active price.",
            "create the plans and credit packs in Product catalog (see docs/going-live.md).",
        )
    elif not lacking:
        yield Result(True, f"{len(prices)} active prices all carry credit_amount metadata")


def _portal_results(allows_switching: bool | None) -> Iterator[Result]:
    if allows_switching is None:
        yield Result(
            False,
            "the Billing Portal has no saved configuration.",
            "open Settings > Billing > Customer portal and save it.",
        )
        return
    if allows_switching:
        yield Result(
            False,
            "the Billing Portal lets customers switch plans.",
            "turn off 'Customers can switch plans' in Settings > Billing > Customer portal "
            "(plan changes go through this site's preview-and-confirm page).",
        )
    else:
        yield Result(True, "Billing Portal plan switching is off")


def check() -> list[Result]:
    """Every result, in order; raises :class:`CheckStopped` when the check cannot go on.

    Read-only: it lists and retrieves, and writes nothing, in Stripe or here.
    """
    results = offline_results()
    reader = _AccountReader()
    try:
        results.extend(_endpoint_results(reader.webhook_endpoints()))
        results.extend(_price_results(reader))
        results.extend(_portal_results(reader.portal_allows_plan_switching()))
    except GatewayError as error:
        logger.warning("stripe check could not read the account", extra={"error": str(error)})
        raise _stopped(error) from error
    return results
