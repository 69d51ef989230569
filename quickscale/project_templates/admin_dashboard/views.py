"""Staff pages. Thin: validate a form, call one selector or service, render.

Every view is wrapped in ``staff_required``. A view that serves htmx renders
its page through ``common.htmx.render``: htmx gets the page's partial, any other
request the whole page, so each action also works as a plain form POST without
JavaScript.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from admin_dashboard import selectors, services
from admin_dashboard.access import acting_staff, staff_required
from admin_dashboard.audit_display import AuditRow, audit_rows
from admin_dashboard.forms import (
    AuditFilterForm,
    CreditAdjustmentForm,
    PaymentSearchForm,
    PeriodForm,
    RefundForm,
    ServiceCostForm,
    ServiceToggleForm,
    UserSearchForm,
    new_token,
)
from admin_dashboard.models import AuditLog
from common.dates import day_end, day_start
from common.formatting import format_credit_count, format_credits, format_money
from common.htmx import render, wants_fragment
from common.pagination import capped_page, page_number
from credits import ledger
from credits import selectors as credit_selectors
from services import selectors as service_selectors
from services.models import Service
from stripe_manager import selectors as billing_selectors
from stripe_manager.gateway import GatewayError, get_gateway
from stripe_manager.models import Payment
from users import selectors as user_selectors
from users.models import CustomUser


@staff_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Headline figures and links to every dashboard page."""
    return TemplateResponse(
        request, "admin_dashboard/home.html", {"headline": selectors.headline()}
    )


@staff_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, filtered by action, staff, customer and dates."""
    form = AuditFilterForm(request.GET or None)
    page = None
    rows_shown: list[AuditRow] = []
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        status = 200
        data = form.cleaned_data if form.is_bound else {}
        rows = selectors.audit_entries(
            action=data.get("action", ""),
            actor_email=data.get("actor", ""),
            target_email=data.get("target", ""),
            start=data.get("date_from"),
            end=data.get("date_to"),
        )
        page = capped_page(rows, page=page_number(request.GET.get("page")), per_page=50)
        rows_shown = audit_rows(page.rows)
    return TemplateResponse(
        request,
        "admin_dashboard/audit.html",
        {"form": form, "page": page, "rows": rows_shown, "query": _query_without_page(request)},
        status=status,
    )


@staff_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    """Search accounts by email."""
    form = UserSearchForm(request.GET or None)
    page = None
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        data = form.cleaned_data if form.is_bound else {}
        users = selectors.user_search(
            email=data.get("email", "").strip(), subscription=data.get("subscription", "")
        )
        page = capped_page(users, page=page_number(request.GET.get("page")))
    return TemplateResponse(
        request,
        "admin_dashboard/users.html",
        {"form": form, "page": page, "query": _query_without_page(request)},
        status=status,
    )


def _credits_context(customer: CustomUser, form: CreditAdjustmentForm | None) -> dict[str, Any]:
    return {
        "customer": customer,
        "balance": ledger.balance(customer),
        "lots": list(credit_selectors.live_lots(customer)),
        "next_expiry": credit_selectors.next_expiry(customer),
        "adjust_form": form or CreditAdjustmentForm(initial={"token": new_token()}),
    }


@staff_required
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: balance by lot, history, and the staff actions on it."""
    customer = get_object_or_404(CustomUser, pk=pk)
    context = _credits_context(customer, None)
    context["entries"] = credit_selectors.entries_page(customer, page=request.GET.get("page"))
    context.update(_account_context(customer))
    return TemplateResponse(request, "admin_dashboard/user_detail.html", context)


def _account_context(customer: CustomUser) -> dict[str, Any]:
    return {
        "audit_rows": selectors.user_audit(customer),
        "subscription": billing_selectors.current_subscription(customer),
        "subscriptions": billing_selectors.latest_subscriptions(customer),
        "payments": billing_selectors.latest_payments(customer),
        "usage": service_selectors.latest_usages(customer),
        "lockout": user_selectors.account_lockout(customer),
        "security_events": user_selectors.security_events(customer),
    }


@staff_required
@require_POST
def user_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    """Lift the account's sign-in lockout."""
    customer = get_object_or_404(CustomUser, pk=pk)
    services.user_unlock(actor=acting_staff(request), user=customer, request=request)
    messages.success(request, f"{customer.email} can sign in again.")
    return redirect("admin_dashboard:user_detail", pk=customer.pk)


@staff_required
@require_POST
def user_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    """Grant or deduct credits with a reason (``credits.ledger.adjust`` via the service)."""
    customer = get_object_or_404(CustomUser, pk=pk)
    form = CreditAdjustmentForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            entry = services.credit_adjust(
                actor=acting_staff(request),
                user=customer,
                amount=form.signed_amount(),
                reason=form.cleaned_data["reason"],
                reference=form.cleaned_data["token"],
            )
        except services.DashboardError as exc:
            error = str(exc)
        else:
            done = f"Adjusted {customer.email}'s credits by {format_credits(entry.amount)}."
            if not wants_fragment(request):
                messages.success(request, done)
                return redirect("admin_dashboard:user_detail", pk=customer.pk)
            context = _credits_context(customer, None)
            context["done"] = done
            return render(
                request, "admin_dashboard/user_detail.html", context, partial="credits-panel"
            )
    context = _credits_context(customer, form)
    context["error"] = error
    # Only the whole page shows the history and the account: a fragment skips their queries.
    if not wants_fragment(request):
        context["entries"] = credit_selectors.entries_page(customer, page=1)
        context.update(_account_context(customer))
    return render(
        request, "admin_dashboard/user_detail.html", context, partial="credits-panel", status=400
    )


# --------------------------------------------------------------------------- payments


@staff_required
@require_GET
def payment_list(request: HttpRequest) -> HttpResponse:
    """Search payments by ``PaymentSearchForm``'s filters, 25 a page, with a capped count."""
    form = PaymentSearchForm(request.GET or None)
    page = None
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        filters = form.filters() if form.is_bound else billing_selectors.PaymentFilters()
        number = page_number(request.GET.get("page"))
        page = capped_page(billing_selectors.payment_search(filters), page=number)
        if form.is_bound and number == 1:
            services.audit(
                acting_staff(request),
                AuditLog.Action.PAYMENT_SEARCH,
                details={"filters": form.used(), "results": page.count_label},
            )
    return TemplateResponse(
        request,
        "admin_dashboard/payments.html",
        {"form": form, "page": page, "query": _query_without_page(request)},
        status=status,
    )


def _live_details(payment: Payment) -> tuple[dict[str, Any] | None, str]:
    """What Stripe says about the payment now, or why it cannot be shown."""
    if not payment.stripe_payment_intent_id:
        return None, "No payment intent id is recorded, so Stripe cannot be asked."
    try:
        gateway = get_gateway()
    except GatewayError as error:
        return None, str(error)
    try:
        details = gateway.retrieve_payment(payment_intent_id=payment.stripe_payment_intent_id)
    except GatewayError as error:
        return None, f"Stripe could not be reached: {error}"
    return details, ""


@staff_required
@require_GET
def payment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Investigate one payment: history, ledger entries, refunds, Stripe, warnings."""
    payment = get_object_or_404(Payment.objects.select_related("user", "product"), pk=pk)
    investigation = selectors.investigate(payment)
    live, live_error = _live_details(payment)
    services.audit(
        acting_staff(request),
        AuditLog.Action.PAYMENT_INVESTIGATION,
        target=payment,
        target_user=payment.user,
        details={"warnings": [w.code for w in investigation.warnings]},
    )
    return TemplateResponse(
        request,
        "admin_dashboard/payment_detail.html",
        {
            "payment": payment,
            "inv": investigation,
            "live": live,
            "live_error": live_error,
            "refund_form": _refund_form(payment),
        },
    )


def _refund_form(payment: Payment, data: Any = None) -> RefundForm:
    return RefundForm(data, initial={"seen": services.refund_requests_seen(payment)})


@staff_required
@require_http_methods(["GET", "POST"])
def payment_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Refund all or part of a payment through ``stripe_manager``'s refund function."""
    payment = get_object_or_404(Payment.objects.select_related("user"), pk=pk)
    form = _refund_form(payment, request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            refund = services.refund(
                actor=acting_staff(request),
                payment=payment,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                seen=form.cleaned_data["seen"],
            )
        except services.DashboardError as exc:
            error = str(exc)
        else:
            messages.success(
                request,
                f"Refunded {format_money(refund.amount, payment.currency)} of "
                f"{payment.receipt_number} ({refund.get_status_display().lower()}); "
                f"{format_credit_count(refund.credits_reversed or 0)} taken back.",
            )
            return redirect("admin_dashboard:payment_detail", pk=payment.pk)
        payment.refresh_from_db()
        form = _refund_form(payment, request.POST)
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(
        request,
        "admin_dashboard/refund.html",
        {"payment": payment, "form": form, "error": error},
        status=status,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def products(request: HttpRequest) -> HttpResponse:
    """The local Stripe catalog, and a button that pulls it from Stripe."""
    summary = ""
    error = ""
    if request.method == "POST":
        try:
            synced, deactivated = services.product_sync(actor=acting_staff(request))
        except services.DashboardError as exc:
            error = str(exc)
        else:
            summary = f"{synced} prices synced from Stripe, {deactivated} deactivated."
            if not wants_fragment(request):
                messages.success(request, summary)
                return redirect("admin_dashboard:products")
    context = {"products": billing_selectors.all_products(), "summary": summary, "error": error}
    return render(
        request,
        "admin_dashboard/products.html",
        context,
        partial="products-panel",
        status=400 if error else 200,
    )


# --------------------------------------------------------------------------- services


@staff_required
@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    """Every configured service with its cost and an on/off switch."""
    return TemplateResponse(
        request,
        "admin_dashboard/services.html",
        {"services": list(service_selectors.all_services())},
    )


@staff_required
@require_POST
def service_toggle(request: HttpRequest, name: str) -> HttpResponse:
    """Switch a service on or off; htmx gets the refreshed row."""
    service = get_object_or_404(Service, name=name)
    form = ServiceToggleForm(request.POST)
    form.is_valid()  # a BooleanField is always valid: missing means off
    service = services.service_toggle(
        actor=acting_staff(request), name=service.name, active=form.cleaned_data["active"]
    )
    if wants_fragment(request):
        return render(
            request, "admin_dashboard/services.html", {"service": service}, partial="service-row"
        )
    state = "on" if service.is_active else "off"
    messages.success(request, f"{service.name} is now {state}.")
    return redirect("admin_dashboard:services")


@staff_required
@require_http_methods(["GET", "POST"])
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A service's analytics over a chosen period, and its cost."""
    service = get_object_or_404(Service, name=name)
    cost_form = ServiceCostForm(
        request.POST if request.method == "POST" else None,
        initial={"credit_cost": service.credit_cost},
    )
    error = ""
    if request.method == "POST" and cost_form.is_valid():
        try:
            services.service_cost_change(
                actor=acting_staff(request),
                name=service.name,
                credit_cost=cost_form.cleaned_data["credit_cost"],
            )
        except services.DashboardError as exc:
            error = str(exc)
        else:
            cost = cost_form.cleaned_data["credit_cost"]
            messages.success(request, f"{service.name} now costs {cost} credits per call.")
            return redirect("admin_dashboard:service_detail", name=service.name)
    period = PeriodForm(request.GET or None)
    stats = None
    status = 400 if request.method == "POST" else 200
    if period.is_bound and not period.is_valid():
        status = 400
    else:
        data = period.cleaned_data if period.is_bound else {}
        end = timezone.now()
        start = end - timedelta(days=data.get("days") or 30)
        if data.get("date_from"):
            start = day_start(data["date_from"])
        if data.get("date_to"):
            end = day_end(data["date_to"])
        stats = service_selectors.service_stats(service, start=start, end=end)
    return TemplateResponse(
        request,
        "admin_dashboard/service_detail.html",
        {
            "service": service,
            "cost_form": cost_form,
            "period": period,
            "stats": stats,
            "recent": service_selectors.latest_calls(service),
            "error": error,
        },
        status=status,
    )


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
