"""The credits page and its CSV export; thin: one selector or ledger read each."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from credits import ledger, selectors
from users.models import CustomUser

CSV_HEADER = ("date", "type", "description", "amount", "shortfall", "reference")
# A cell starting with one of these is a formula to spreadsheet programs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _member(request: HttpRequest) -> CustomUser:
    """Return the signed-in user, or 404 when the credit system is switched off."""
    if not settings.CREDIT_SYSTEM_ENABLED:
        raise Http404("The credit system is switched off.")
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return user


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Show the balance split by kind, the next expiry and a page of history."""
    user = _member(request)
    context = {
        "balance": ledger.balance(user),
        "next_expiry": selectors.next_expiry(user),
        "lots": selectors.live_lots(user),
        "page": selectors.entries_page(user, page=request.GET.get("page")),
    }
    return TemplateResponse(request, "credits/dashboard.html", context)


class _Echo:
    """A write-only file: csv.writer hands back each row instead of buffering it."""

    def write(self, value: str) -> str:
        return value


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _timestamp(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _rows(user: CustomUser) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for entry in selectors.entries_for_export(user):
        yield writer.writerow(
            (
                _timestamp(entry.created_at),
                entry.get_kind_display(),
                _text(entry.label),
                f"{entry.amount:.2f}",
                f"{entry.shortfall:.2f}",
                _text(entry.key),
            )
        )


@login_required
@require_GET
def history_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Stream the user's whole history as CSV, oldest entry first."""
    user = _member(request)
    response = StreamingHttpResponse(_rows(user), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="credit-history.csv"'
    return response
