"""Stripe-shaped JSON objects for API version ``2026-10-28.endive`` (plain dicts).

The simulator builds the events it delivers from these, and the tests build
their fixtures from them. Field placement follows the pinned SDK's type
definitions: a subscription's period lives on its items, an invoice's
subscription under ``parent.subscription_details``, an invoice line's price
under ``pricing.price_details``, an invoice's payment intent under
an ``invoice_payment`` object (its own events and list endpoint), a refund its
``customer`` (since 2026-07-29.dahlia).

Only what Stripe puts in a payload: never a field the SDK documents as
includable or expandable-only (``invoice.payments``, ``charge.refunds``,
``checkout.session.line_items``). Code that reads a payload must not find in a
fixture what real Stripe leaves out; such data comes from its own events or
through the gateway.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from stripe_manager.gateway import API_VERSION

Obj = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _list(items: list[Obj], url: str = "") -> Obj:
    return {"object": "list", "data": items, "has_more": False, "url": url}


def event(event_type: str, obj: Obj, *, event_id: str = "", created: int | None = None) -> Obj:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def product(
    product_id: str,
    *,
    name: str,
    description: str = "",
    metadata: dict[str, str] | None = None,
    active: bool = True,
) -> Obj:
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "name": name,
        "description": description or None,
        "metadata": metadata or {},
        "created": int(time.time()),
        "livemode": False,
    }


def price(
    price_id: str,
    *,
    product_id: str,
    unit_amount: int,
    currency: str = "usd",
    interval: str = "none",
    metadata: dict[str, str] | None = None,
    active: bool = True,
) -> Obj:
    recurring = None
    if interval != "none":
        recurring = {"interval": interval, "interval_count": 1, "usage_type": "licensed"}
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "currency": currency,
        "metadata": metadata or {},
        "product": product_id,
        "recurring": recurring,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
        "livemode": False,
    }


def checkout_session(
    session_id: str,
    *,
    customer: str,
    mode: str,
    amount_total: int,
    currency: str = "usd",
    payment_status: str = "paid",
    status: str = "complete",
    metadata: dict[str, str] | None = None,
    payment_intent: str | None = None,
    subscription: str | None = None,
    invoice: str | None = None,
) -> Obj:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "currency": currency,
        "customer": customer,
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata or {},
        "mode": mode,
        "payment_intent": payment_intent,
        "payment_status": payment_status,
        "status": status,
        "subscription": subscription,
        "url": None,
        "created": int(time.time()),
    }


def subscription(
    subscription_id: str,
    *,
    customer: str,
    price_obj: Obj,
    item_id: str,
    status: str = "active",
    period_start: int,
    period_end: int,
    cancel_at_period_end: bool = False,
    created: int | None = None,
    schedule: str | None = None,
    metadata: dict[str, str] | None = None,
    pending_update: Obj | None = None,
    trial_start: int | None = None,
    trial_end: int | None = None,
) -> Obj:
    return {
        "id": subscription_id,
        "object": "subscription",
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": period_end if status == "canceled" else None,
        "created": created or period_start,
        "currency": price_obj["currency"],
        "customer": customer,
        "ended_at": int(time.time()) if status == "canceled" else None,
        "items": _list(
            [
                {
                    "id": item_id,
                    "object": "subscription_item",
                    "created": created or period_start,
                    "current_period_start": period_start,
                    "current_period_end": period_end,
                    "metadata": {},
                    "price": price_obj,
                    "quantity": 1,
                    "subscription": subscription_id,
                }
            ],
            f"/v1/subscription_items?subscription={subscription_id}",
        ),
        "livemode": False,
        "metadata": metadata or {},
        "pending_update": pending_update,
        "schedule": schedule,
        "start_date": created or period_start,
        "status": status,
        "trial_end": trial_end,
        "trial_start": trial_start,
    }


def invoice_line(*, price_obj: Obj, amount: int, period_start: int, period_end: int) -> Obj:
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": price_obj["currency"],
        "period": {"start": period_start, "end": period_end},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price_obj["id"], "product": price_obj["product"]},
            "unit_amount_decimal": str(price_obj["unit_amount"]),
        },
        "quantity": 1,
    }


def invoice(
    invoice_id: str,
    *,
    customer: str,
    subscription_id: str | None,
    lines: list[Obj],
    billing_reason: str = "subscription_cycle",
    status: str = "paid",
    created: int | None = None,
    customer_email: str | None = None,
) -> Obj:
    total = sum(int(line["amount"]) for line in lines)
    paid = total if status == "paid" else 0
    parent = None
    if subscription_id:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
        }
    periods = [line["period"] for line in lines] or [{"start": 0, "end": 0}]
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": total,
        "amount_paid": paid,
        "amount_remaining": total - paid,
        "billing_reason": billing_reason,
        "created": int(time.time()) if created is None else created,
        "currency": lines[0]["currency"] if lines else "usd",
        "customer": customer,
        "customer_email": customer_email,
        "hosted_invoice_url": None,
        "lines": _list(lines, f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "parent": parent,
        "period_start": min(p["start"] for p in periods),
        "period_end": max(p["end"] for p in periods),
        "status": status,
        "total": total,
        "next_payment_attempt": None,
    }


def invoice_payment(
    invoice_payment_id: str,
    *,
    invoice: str,
    payment_intent: str,
    amount: int,
    currency: str = "usd",
    status: str = "paid",
) -> Obj:
    """How a payment intent pays an invoice (``invoice_payment.paid`` carries one)."""
    return {
        "id": invoice_payment_id,
        "object": "invoice_payment",
        "amount_paid": amount if status == "paid" else None,
        "amount_requested": amount,
        "created": int(time.time()),
        "currency": currency,
        "invoice": invoice,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": payment_intent},
        "status": status,
    }


def refund(
    refund_id: str,
    *,
    amount: int,
    charge: str,
    payment_intent: str,
    customer: str | None = None,
    status: str = "succeeded",
    metadata: dict[str, str] | None = None,
    currency: str = "usd",
) -> Obj:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": charge,
        "created": int(time.time()),
        "currency": currency,
        "customer": customer,
        "metadata": metadata or {},
        "payment_intent": payment_intent,
        "reason": None,
        "status": status,
    }


def charge(
    charge_id: str,
    *,
    customer: str,
    payment_intent: str,
    amount: int,
    amount_refunded: int = 0,
    currency: str = "usd",
) -> Obj:
    refunded = amount_refunded
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "captured": True,
        "currency": currency,
        "customer": customer,
        "livemode": False,
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": refunded >= amount,
        "status": "succeeded",
    }


def payment_intent(
    intent_id: str,
    *,
    customer: str,
    amount: int,
    currency: str = "usd",
    status: str = "succeeded",
    payment_method: str | None = None,
    setup_future_usage: str | None = None,
    metadata: dict[str, str] | None = None,
    latest_charge: str | None = None,
    description: str | None = None,
    last_payment_error: Obj | None = None,
) -> Obj:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "created": int(time.time()),
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": last_payment_error,
        "latest_charge": latest_charge,
        "livemode": False,
        "metadata": metadata or {},
        "payment_method": payment_method,
        "setup_future_usage": setup_future_usage,
        "status": status,
    }
