"""How the audit log page reads: each row's target and details in words, not stored JSON.

A row's ``details`` keep raw values (``"10.00"``, ``["refunded_twice"]``, ``true``)
and its ``target_label`` what ``str()`` gave when it was written (a payment's
``R-1 10.00 USD``). Both are shown through ``common.formatting`` here, at display
time: money with its currency and credits like every other page, empty values
left out, a service under its title. Rows are never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from admin_dashboard.models import AuditLog
from common.formatting import format_credits, format_money
from services import presentation
from stripe_manager.models import Payment

PAYMENT_TARGET = "stripe_manager.payment"
SERVICE_TARGET = "services.service"


@dataclass(frozen=True)
class DetailItem:
    """One line of a row's details: what it is, and its value as text."""

    label: str
    value: str


@dataclass(frozen=True)
class AuditRow:
    """An audit row with its target and details ready to show."""

    row: AuditLog
    target: str
    target_url: str
    details: list[DetailItem]


Reader = Callable[[Any, str], str]


def _money(value: Any, currency: str) -> str:
    return format_money(value, currency)


def _credits(value: Any, currency: str) -> str:
    return format_credits(value)


def _text(value: Any, currency: str) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return str(value)


def _switch(value: Any, currency: str) -> str:
    return "on" if value is True or value == "True" else "off"


_REFUND_FIELDS: dict[str, tuple[str, Reader]] = {
    "payment": ("Payment", _text),
    "requested": ("Requested", _money),
    "refunded": ("Refunded", _money),
    "status": ("Status", _text),
    "credits_reversed": ("Credits reversed", _credits),
    "stripe_refund_id": ("Stripe refund", _text),
    "error": ("Error", _text),
}

# Per action, each key's label and how its value reads; keys not listed are shown
# with their name as label and their value as text, so nothing recorded is hidden.
FIELDS: dict[str, dict[str, tuple[str, Reader]]] = {
    AuditLog.Action.CREDIT_ADJUSTMENT: {
        "requested": ("Requested", _credits),
        "applied": ("Applied", _credits),
        "shortfall": ("Shortfall", _credits),
        "ledger_key": ("Ledger entry", _text),
    },
    AuditLog.Action.REFUND: _REFUND_FIELDS,
    AuditLog.Action.REFUND_FAILED: _REFUND_FIELDS,
    AuditLog.Action.SERVICE_TOGGLE: {"is_active": ("Switched", _switch)},
    AuditLog.Action.SERVICE_COST: {"from": ("From", _credits), "to": ("To", _credits)},
    AuditLog.Action.PAYMENT_SEARCH: {"filters": ("Filters", _text), "results": ("Results", _text)},
    AuditLog.Action.PAYMENT_INVESTIGATION: {"warnings": ("Warnings", _text)},
}

# Keys that say how to read the others (the currency), not something that happened.
_HIDDEN_KEYS = frozenset({"currency"})


def _is_empty(value: Any) -> bool:
    """Nothing worth a line: no value, an empty text, list or mapping."""
    return value is None or value == "" or (isinstance(value, list | tuple | dict) and not value)


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False


# Amounts only worth a line when not zero: "Shortfall 0" says nothing.
_OMITTED_WHEN_ZERO = frozenset({"shortfall"})


def detail_items(row: AuditLog, currency: str = "usd") -> list[DetailItem]:
    """``row.details`` as labelled, formatted lines; empty values left out."""
    fields = FIELDS.get(row.action, {})
    details = row.details if isinstance(row.details, dict) else {}
    currency = str(details.get("currency") or currency)
    # jsonb keeps its own key order: show the known keys in their declared order, then the rest.
    keys = [key for key in fields if key in details]
    keys += [key for key in details if key not in fields]
    items = []
    for key in keys:
        value = details[key]
        if key in _HIDDEN_KEYS or _is_empty(value):
            continue
        if key in _OMITTED_WHEN_ZERO and _is_zero(value):
            continue
        label, read = fields.get(key, (presentation.field_label(key), _text))
        items.append(DetailItem(label=label, value=read(value, currency)))
    return items


def _payments(rows: Sequence[AuditLog]) -> dict[str, Payment]:
    """The payments the rows target, by id as text: one query for a page."""
    ids = {row.target_id for row in rows if row.target_type == PAYMENT_TARGET and row.target_id}
    numeric = [int(pk) for pk in ids if pk.isdigit()]
    if not numeric:
        return {}
    return {str(p.pk): p for p in Payment.objects.filter(pk__in=numeric)}


def _target(row: AuditLog, payment: Payment | None) -> str:
    if payment is not None:
        return f"{payment.receipt_number} · {format_money(payment.amount, payment.currency)}"
    if row.target_type == SERVICE_TARGET and row.target_label:
        return presentation.title_of(row.target_label)
    return row.target_label


def audit_rows(rows: Sequence[AuditLog]) -> list[AuditRow]:
    """The rows of one page ready to show (one query for the payments they target)."""
    payments = _payments(rows)
    shown = []
    for row in rows:
        payment = payments.get(row.target_id) if row.target_type == PAYMENT_TARGET else None
        currency = payment.currency if payment is not None else "usd"
        url = reverse("admin_dashboard:payment_detail", args=[payment.pk]) if payment else ""
        shown.append(
            AuditRow(
                row=row,
                target=_target(row, payment),
                target_url=url,
                details=detail_items(row, currency),
            )
        )
    return shown
