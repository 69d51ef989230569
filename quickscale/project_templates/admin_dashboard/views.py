"""Staff pages. Thin: validate a form, call one selector or service, render.

Every view is wrapped in ``staff_required``. A view that serves htmx renders a
``_partial`` template for htmx requests and the full page otherwise, so each
action also works as a plain form POST without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from admin_dashboard import selectors, services
from admin_dashboard.access import acting_staff, staff_required
from admin_dashboard.forms import (
    AuditFilterForm,
    CreditAdjustmentForm,
    UserSearchForm,
    new_token,
)
from credits import ledger
from credits import selectors as credit_selectors
from users.models import CustomUser


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


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
        page = selectors.capped_page(
            rows, page=selectors.page_number(request.GET.get("page")), per_page=50
        )
    return TemplateResponse(
        request,
        "admin_dashboard/audit.html",
        {"form": form, "page": page, "query": _query_without_page(request)},
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
        users = selectors.user_search(email=data.get("email", "").strip())
        page = selectors.capped_page(users, page=selectors.page_number(request.GET.get("page")))
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
    context["audit_rows"] = selectors.user_audit(customer)
    return TemplateResponse(request, "admin_dashboard/user_detail.html", context)


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
            done = f"Adjusted {customer.email}'s credits by {entry.amount}."
            if not _is_htmx(request):
                messages.success(request, done)
                return redirect("admin_dashboard:user_detail", pk=customer.pk)
            context = _credits_context(customer, None)
            context["done"] = done
            return TemplateResponse(request, "admin_dashboard/_credits_panel.html", context)
    context = _credits_context(customer, form)
    context["error"] = error
    if _is_htmx(request):
        # htmx swaps 2xx answers only: the panel shows the error itself.
        return TemplateResponse(request, "admin_dashboard/_credits_panel.html", context)
    context["entries"] = credit_selectors.entries_page(customer, page=1)
    context["audit_rows"] = selectors.user_audit(customer)
    return TemplateResponse(request, "admin_dashboard/user_detail.html", context, status=400)


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
