"""Billing pages. Thin: validate, call one service or selector, render or redirect.

Every payment action is an HTML form POST answered with a 303 (post/redirect/get),
so each works without JavaScript and reloading the next page never repeats it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common import htmx
from common.json_input import JsonInputError, loads_bounded
from stripe_manager import (
    auto_top_up,
    plan_changes,
    pricing_page,
    selectors,
    services,
    signing,
    webhook_queue,
    webhooks,
)
from stripe_manager.exceptions import BillingError
from stripe_manager.gateway import GatewayError, payments_enabled, uses_simulator
from users.models import CustomUser

logger = logging.getLogger(__name__)


class CheckoutForm(forms.Form):
    price_id = forms.CharField(max_length=255)
    quantity = forms.IntegerField(min_value=1, max_value=100_000, required=False)


class PlanForm(forms.Form):
    price_id = forms.CharField(max_length=255)


class AutoTopUpForm(forms.Form):
    # Checked by auto_top_up_save, whose messages say what is wrong and what to do.
    enabled = forms.BooleanField(required=False)
    price_id = forms.CharField(max_length=255, required=False)
    threshold = forms.CharField(max_length=40, required=False)


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303
    return response


def _user(request: HttpRequest) -> CustomUser:
    user = request.user
    assert isinstance(user, CustomUser)  # login_required ran first
    return user


def _fail(request: HttpRequest, message: str, to: str = "stripe_manager:pricing") -> HttpResponse:
    messages.error(request, message)
    return _see_other(reverse(to))


# --------------------------------------------------------------------------- pages


def _quantity(request: HttpRequest) -> dict[str, str]:
    """The ``quantity`` query parameter, when given (an absent one is no choice)."""
    value = request.GET.get("quantity", "")
    return {"quantity": value} if value else {}


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    """Plans and credit packs, with subscribe / change / buy forms for signed-in users.

    ``?buy=<pack price>&quantity=N`` is a signed-out visitor's pack choice: they are
    sent to sign up, and come back to this page with the quantity filled in.
    """
    choice = CheckoutForm({"price_id": request.GET.get("buy", ""), **_quantity(request)})
    chosen = choice.cleaned_data if choice.is_valid() else {}
    if chosen and not isinstance(request.user, CustomUser):
        back = f"{request.get_full_path()}#pack-{chosen['price_id']}"
        return redirect(f"{reverse('account_signup')}?{urlencode({'next': back})}")
    subscription = (
        selectors.current_subscription(request.user)
        if isinstance(request.user, CustomUser)
        else None
    )
    current = subscription.product if subscription else None
    plan_cards = pricing_page.plan_cards(selectors.plans())
    pack_cards = pricing_page.pack_cards(
        selectors.credit_packs(),
        chosen_price=chosen.get("price_id", ""),
        chosen_quantity=chosen.get("quantity"),
    )
    return TemplateResponse(
        request,
        "stripe_manager/pricing.html",
        {
            "plan_cards": plan_cards,
            "period_switch": any(card.period for card in plan_cards),
            "yearly_first": pricing_page.shows_yearly_first(current),
            "pack_cards": pack_cards,
            "purchase_range": pricing_page.purchase_range(pack_cards),
            "subscription": subscription,
            "current_product": current,
            # One trial per account: anyone who ever subscribed is offered none.
            "trial_available": isinstance(request.user, CustomUser)
            and not selectors.had_subscription(request.user),
            "payments_enabled": payments_enabled(),
        },
    )


@login_required
@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    """Start a Checkout Session for a credit pack or a plan, then 303 to it."""
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return _fail(request, "Choose a product and a whole-number quantity of at least 1.")
    if not payments_enabled():
        return _fail(request, "Payments are not available on this site.")
    success = request.build_absolute_uri(settings.STRIPE_SUCCESS_URL)
    # A plan's payment is recorded under its invoice, not the session: say which to wait for.
    product = selectors.active_product(form.cleaned_data["price_id"])
    plan = "&kind=plan" if product is not None and product.is_subscription else ""
    try:
        session = services.checkout_start(
            user=_user(request),
            price_id=form.cleaned_data["price_id"],
            quantity=form.cleaned_data["quantity"] or 1,
            success_url=f"{success}?session_id={{CHECKOUT_SESSION_ID}}{plan}",
            cancel_url=request.build_absolute_uri(settings.STRIPE_CANCEL_URL),
        )
    except (BillingError, GatewayError) as error:
        return _fail(request, str(error))
    return _see_other(session.url)


class ConfirmForm(forms.Form):
    # The signed preview (plan_changes); checked there, with a message for each failure.
    confirmation = forms.CharField(max_length=2000)


@login_required
@require_http_methods(["GET", "POST"])
def change_plan(request: HttpRequest) -> HttpResponse:
    """GET: preview a plan change (charge now, credits). POST: apply the confirmed preview.

    An upgrade happens now with proration, a downgrade at the end of the period.
    """
    user = _user(request)
    if request.method == "GET":
        form = PlanForm(request.GET)
        if not form.is_valid():
            return _fail(request, "Choose a plan.")
        if not payments_enabled():
            return _fail(request, "Payments are not available on this site.")
        try:
            preview = plan_changes.preview_change(user=user, price_id=form.cleaned_data["price_id"])
        except (BillingError, GatewayError) as error:
            return _fail(request, str(error))
        return _confirm_page(request, preview)
    confirm = ConfirmForm(request.POST)
    if not confirm.is_valid():
        return _fail(request, "Confirm the plan change from its preview.")
    try:
        outcome = plan_changes.confirm_change(user=user, token=confirm.cleaned_data["confirmation"])
    except (BillingError, GatewayError) as error:
        return _fail(request, str(error))
    if outcome == "upgraded":
        messages.success(request, "Plan upgraded. The new plan's credits arrive with its invoice.")
    else:
        messages.success(request, "Your plan changes at the end of the current period.")
    return _see_other(reverse("stripe_manager:billing"))


@login_required
@require_http_methods(["GET", "POST"])
def cancel_plan(request: HttpRequest) -> HttpResponse:
    """GET: what cancelling means. POST: cancel at period end, once confirmed."""
    user = _user(request)
    if request.method == "GET":
        try:
            preview = plan_changes.preview_cancel(user=user)
        except (BillingError, GatewayError) as error:
            return _fail(request, str(error), "stripe_manager:billing")
        return _confirm_page(request, preview)
    confirm = ConfirmForm(request.POST)
    if not confirm.is_valid():
        return _fail(request, "Confirm the cancellation on its page.", "stripe_manager:billing")
    try:
        plan_changes.confirm_cancel(user=user, token=confirm.cleaned_data["confirmation"])
    except (BillingError, GatewayError) as error:
        return _fail(request, str(error), "stripe_manager:billing")
    messages.success(request, "Your plan ends at the end of the current period.")
    return _see_other(reverse("stripe_manager:billing"))


def _confirm_page(request: HttpRequest, preview: plan_changes.PlanChangePreview) -> HttpResponse:
    return TemplateResponse(
        request,
        "stripe_manager/plan_confirm.html",
        {"preview": preview, "max_age_minutes": plan_changes.CONFIRM_MAX_AGE_SECONDS // 60},
    )


@login_required
@require_POST
def resume_plan(request: HttpRequest) -> HttpResponse:
    try:
        services.subscription_set_cancel(user=_user(request), cancel=False)
    except (BillingError, GatewayError) as error:
        return _fail(request, str(error), "stripe_manager:billing")
    messages.success(request, "Your plan continues.")
    return _see_other(reverse("stripe_manager:billing"))


@login_required
@require_POST
def portal(request: HttpRequest) -> HttpResponse:
    """Open the Billing Portal (cards, invoices, cancellation)."""
    if not payments_enabled():
        return _fail(request, "Payments are not available on this site.", "stripe_manager:billing")
    try:
        url = services.portal_url(
            user=_user(request),
            return_url=request.build_absolute_uri(reverse("stripe_manager:billing")),
        )
    except (BillingError, GatewayError) as error:
        return _fail(request, str(error), "stripe_manager:billing")
    return _see_other(url)


@login_required
@require_GET
def billing(request: HttpRequest) -> HttpResponse:
    """The user's plan and payment history."""
    user = _user(request)
    return TemplateResponse(
        request,
        "stripe_manager/billing.html",
        {
            "subscription": selectors.current_subscription(user),
            "payments": selectors.payments(user)[:200],
            "payments_enabled": payments_enabled(),
            "simulator": uses_simulator(),
            "auto_top_up": auto_top_up.auto_top_up_for(user),
            "last_top_up": auto_top_up.last_charge(user),
            "packs": selectors.credit_packs(),
        },
    )


@login_required
@require_POST
def auto_top_up_settings(request: HttpRequest) -> HttpResponse:
    """Turn auto top-up on (pack and threshold) or off, then back to the billing page."""
    form = AutoTopUpForm(request.POST)
    if not form.is_valid():
        return _fail(request, "Choose a credit pack and a threshold.", "stripe_manager:billing")
    enabled = form.cleaned_data["enabled"]
    try:
        setting = auto_top_up.auto_top_up_save(
            user=_user(request),
            enabled=enabled,
            price_id=form.cleaned_data["price_id"],
            threshold=form.cleaned_data["threshold"],
        )
    except BillingError as error:
        return _fail(request, str(error), "stripe_manager:billing")
    if not enabled:
        messages.success(request, "Automatic top-ups are off.")
    elif setting is not None and not setting.payment_method_id:
        messages.success(
            request,
            "Automatic top-ups are on. Buy a pack once to save your card for them.",
        )
    else:
        messages.success(request, "Automatic top-ups are on.")
    return _see_other(reverse("stripe_manager:billing") + "#auto-top-up")


@login_required
@require_GET
def receipt(request: HttpRequest, receipt_number: str) -> HttpResponse:
    """A printable receipt of one of the user's own payments (404 for anyone else's)."""
    payment = selectors.payment_for_receipt(_user(request), receipt_number)
    if payment is None:
        raise Http404("No such receipt.")
    return TemplateResponse(request, "stripe_manager/receipt.html", {"payment": payment})


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def billing_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The user's payments as CSV."""
    writer = csv.writer(_Echo())
    header = ["receipt", "date", "description", "amount", "refunded", "currency", "status"]

    def rows() -> Iterator[str]:
        yield writer.writerow(header)
        for payment in selectors.payments(_user(request)).iterator():
            yield writer.writerow(
                [
                    payment.receipt_number,
                    payment.created_at.date().isoformat(),
                    payment.description,
                    payment.amount,
                    payment.amount_refunded,
                    payment.currency.upper(),
                    payment.get_status_display(),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="billing-history.csv"'
    return response


@login_required
@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    """What was bought, once its webhook is in. Never grants anything: webhooks do.

    Until then the status part polls this URL; htmx gets only that part back.
    """
    return htmx.render(
        request, "stripe_manager/success.html", _checkout_status(request), partial="checkout-status"
    )


def _checkout_status(request: HttpRequest) -> dict[str, object]:
    user = _user(request)
    session_id = request.GET.get("session_id", "")[:255]
    plan = request.GET.get("kind") == "plan"
    return {
        "session_id": session_id,
        "plan": plan,
        "outcome": selectors.checkout_outcome(user, session_id, plan=plan),
    }


@login_required
@require_GET
def checkout_cancel(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "stripe_manager/cancel.html")


# --------------------------------------------------------------------------- webhook


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """Stripe events: verify the signature on the raw body, store the event once, answer 200.

    A worker applies it afterwards (``stripe_manager.webhook_queue``, which
    retries what cannot be applied yet), so Stripe waits only for the store.
    400 and nothing stored for a bad signature or a body that is not an event
    (JSON nested too deep or holding unusable numbers included); a database
    failure while storing is a 500, and Stripe delivers the event again.
    """
    payload = request.body
    try:
        signing.verify(
            payload,
            request.headers.get("Stripe-Signature", ""),
            settings.STRIPE_WEBHOOK_SECRET,
        )
        event = loads_bounded(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
        obj = event["data"]["object"]
        if (
            not isinstance(obj, dict)
            or len(event_id) > 255
            or len(event_type) > 100
            or "\x00" in event_id + event_type  # no text column takes it
        ):
            raise TypeError("not an event object, or ids Stripe never sends")
        customer_id = webhooks.customer_of(obj)
    except signing.SignatureError as error:
        logger.warning("webhook signature rejected", extra={"reason": str(error)})
        return HttpResponse("Invalid signature.", status=400)
    except JsonInputError as error:
        logger.warning("webhook body is not JSON within bounds", extra={"reason": str(error)})
        return HttpResponse("Not a Stripe event.", status=400)
    except (ValueError, KeyError, TypeError):
        logger.warning("webhook body is not a Stripe event")
        return HttpResponse("Not a Stripe event.", status=400)
    # Stored as text: loads_bounded read it as UTF-8 already.
    webhook_queue.receive(event_id, event_type, payload.decode("utf-8-sig"), customer_id)
    return HttpResponse("ok")
