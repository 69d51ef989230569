"""Forms of the dashboard: filters (GET) and staff actions (POST).

Filters validate their input like any form, so a malformed date or amount in
the query string is shown as a message next to the field, never a 500.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import RegexValidator

from admin_dashboard.models import AuditLog
from stripe_manager.models import Payment, UserSubscription
from stripe_manager.selectors import SUBSCRIPTION_LIVE, SUBSCRIPTION_NONE, PaymentFilters

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
        if end == date.max:  # a range ends the day after its last day: none exists
            self.add_error("date_to", "Pick an end date before 9999-12-31.")
        return data


class AuditFilterForm(DateRangeMixin):
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditLog.Action.choices]
    )
    actor = forms.EmailField(required=False, label="Staff email")
    target = forms.EmailField(required=False, label="Customer email")


class UserSearchForm(forms.Form):
    email = forms.CharField(required=False, max_length=254, label="Email")
    subscription = forms.ChoiceField(
        required=False,
        label="Subscription",
        choices=[
            ("", "Any"),
            (SUBSCRIPTION_LIVE, "In use (active, trialing, past due)"),
            (SUBSCRIPTION_NONE, "Never subscribed"),
            *UserSubscription.Status.choices,
        ],
    )


def _amount_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        required=False, label=label, max_digits=12, decimal_places=2, min_value=Decimal("0")
    )


class PaymentSearchForm(DateRangeMixin):
    """Payment filters: type, status, user, Stripe id or receipt, amounts, dates; all optional."""

    kind = forms.ChoiceField(required=False, choices=[("", "Any type"), *Payment.Kind.choices])
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Payment.Status.choices]
    )
    email = forms.CharField(required=False, max_length=254, label="User email")
    stripe_id = forms.CharField(
        required=False,
        max_length=255,
        label="Stripe id or receipt",
        help_text="Payment intent, checkout session, invoice or subscription id.",
    )
    amount_min = _amount_field("Amount from")
    amount_max = _amount_field("Amount to")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "The highest amount is below the lowest.")
        return data

    def filters(self) -> PaymentFilters:
        data = self.cleaned_data
        return PaymentFilters(
            kind=data.get("kind", ""),
            status=data.get("status", ""),
            email=data.get("email", "").strip(),
            stripe_id=data.get("stripe_id", "").strip(),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            start=data.get("date_from"),
            end=data.get("date_to"),
        )

    def used(self) -> dict[str, str]:
        """The filters actually given, as text (for the audit log)."""
        return {key: str(value) for key, value in self.cleaned_data.items() if value}


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        label="Amount to refund",
        help_text="Leave empty to refund everything that is left.",
    )
    reason = forms.CharField(max_length=255, widget=forms.Textarea(attrs={"rows": 2}))
    # RefundRequest.sequence is a PositiveIntegerField: a forged value beyond it is refused here.
    seen = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data.get("reason", "")).strip()
        if not reason:
            raise forms.ValidationError("Give a reason for the refund.")
        return reason


class ServiceCostForm(forms.Form):
    credit_cost = forms.DecimalField(
        max_digits=10, decimal_places=2, min_value=Decimal("0"), label="Credits per call"
    )


class ServiceToggleForm(forms.Form):
    active = forms.BooleanField(required=False)


class PeriodForm(DateRangeMixin):
    days = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[
            (1, "Last 24 hours"),
            (7, "Last 7 days"),
            (30, "Last 30 days"),
            (90, "Last 90 days"),
        ],
        label="Period",
    )


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
