"""Forms of the dashboard: filters (GET) and staff actions (POST).

Filters validate their input like any form, so a malformed date or amount in
the query string is shown as a message next to the field, never a 500.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import RegexValidator

from admin_dashboard.models import AuditLog

TOKEN = RegexValidator(r"^[0-9a-f]{32}$", "This form has expired: reload the page and retry.")
DATE_INPUT = forms.DateInput(attrs={"type": "date"})


def new_token() -> str:
    """A fresh form token: the idempotency reference of one staff action."""
    return uuid.uuid4().hex


class DateRangeMixin(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=DATE_INPUT)
    date_to = forms.DateField(required=False, label="To", widget=DATE_INPUT)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data


class AuditFilterForm(DateRangeMixin):
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditLog.Action.choices]
    )
    actor = forms.EmailField(required=False, label="Staff email")
    target = forms.EmailField(required=False, label="Customer email")


class UserSearchForm(forms.Form):
    email = forms.CharField(required=False, max_length=254, label="Email contains")


class CreditAdjustmentForm(forms.Form):
    GRANT = "grant"
    DEDUCT = "deduct"

    direction = forms.ChoiceField(
        choices=[(GRANT, "Grant credits"), (DEDUCT, "Deduct credits")], initial=GRANT
    )
    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), label="Credits"
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. Kept in the audit log and on the ledger entry.",
    )
    token = forms.CharField(widget=forms.HiddenInput, validators=[TOKEN])

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data.get("reason", "")).strip()
        if not reason:
            raise forms.ValidationError("Give a reason for the adjustment.")
        return reason

    def signed_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        return -amount if self.cleaned_data["direction"] == self.DEDUCT else amount
