"""Test helpers: catalog rows, customers, signed event delivery, Stripe-shaped fixtures."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal
from typing import Any

from django.test import Client
from django.utils import timezone

from credits import ledger
from stripe_manager import shapes, signing, webhook_queue
from stripe_manager.models import ReceivedStripeEvent, StripeCustomer, StripeProduct
from stripe_manager.money import to_minor
from users.models import CustomUser

SECRET = "whsec_test_secret"
NOW = int(time.time())
DAY = 24 * 3600
_ids = itertools.count(1)


def make_catalog() -> dict[str, StripeProduct]:
    """A credit pack (100 credits, 10 USD) and two monthly plans (500 and 2000 credits)."""
    rows = {
        "pack": dict(
            name="100 credits", price=Decimal("10.00"), interval="none", credit_amount=100
        ),
        "basic": dict(name="Basic", price=Decimal("15.00"), interval="month", credit_amount=500),
        "pro": dict(name="Pro", price=Decimal("45.00"), interval="month", credit_amount=2000),
        "retired": dict(
            name="Old", price=Decimal("5.00"), interval="none", credit_amount=10, active=False
        ),
    }
    return {
        key: StripeProduct.objects.create(
            stripe_product_id=f"prod_{key}", stripe_price_id=f"price_{key}", **values
        )
        for key, values in rows.items()
    }


def make_customer(user: CustomUser, customer_id: str = "") -> StripeCustomer:
    return StripeCustomer.objects.create(
        user=user, stripe_customer_id=customer_id or f"cus_test{next(_ids)}"
    )


def price_obj(product: StripeProduct) -> dict[str, Any]:
    return shapes.price(
        product.stripe_price_id,
        product_id=product.stripe_product_id,
        unit_amount=to_minor(product.price, product.currency),
        currency=product.currency,
        interval=product.interval,
    )


def deliver(client: Client, event: dict[str, Any], *, secret: str = SECRET, **kw: Any) -> int:
    """POST ``event`` signed as Stripe signs it, then apply it as the worker would; return the
    POST's status code.

    The view stores the event; the worker's own source function
    (``webhook_queue.apply_next_due_event``) then applies every due event. An
    event that failed is due again later: ``webhook_retries_due`` runs those.
    """
    status = post_signed(client, event, secret=secret, timestamp=kw.pop("timestamp", None))
    apply_received_events()
    return status


def post_signed(
    client: Client, event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
) -> int:
    """POST ``event`` to the webhook signed as Stripe signs it, and nothing more (the stored
    event is not applied); return the status code."""
    body = json.dumps(event).encode()
    response = client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signing.sign(body, secret, timestamp=timestamp),
    )
    return int(response.status_code)


def event_processed(event: dict[str, Any]) -> bool:
    """Whether the received ``event`` has been applied."""
    return ReceivedStripeEvent.objects.filter(event_id=event["id"], state="processed").exists()


def apply_received_events() -> int:
    """Apply the events due now, as the database worker does; return how many."""
    applied = 0
    while webhook_queue.apply_next_due_event():
        applied += 1
    return applied


def webhook_retries_due() -> int:
    """Let the pending events' next attempt come, and make it; return how many were tried.

    Events that fail again are due later still, and wait for the next call.
    """
    waiting = ReceivedStripeEvent.objects.filter(state=ReceivedStripeEvent.State.PENDING)
    count = waiting.update(next_attempt_at=timezone.now())
    return sum(webhook_queue.apply_next_due_event() for _ in range(count))


def event_state(event: dict[str, Any]) -> tuple[str, int]:
    """The received event's state and how many attempts failed."""
    row = ReceivedStripeEvent.objects.get(event_id=event["id"])
    return row.state, row.attempts


def spend(user: CustomUser, amount: Decimal | int, reference: str, capture: Any) -> None:
    """A spend whose after-commit work (the auto top-up trigger) runs, as in production;
    ``capture`` is pytest-django's ``django_capture_on_commit_callbacks``."""
    with capture(execute=True):
        ledger.consume(user, amount, reference=reference)


def balance(user: CustomUser) -> tuple[Any, ...]:
    b = ledger.balance(user)
    return (b.subscription, b.pay_as_you_go, b.total)


# --------------------------------------------------------------------------- fixtures


def purchase_completed(
    customer: StripeCustomer, pack: StripeProduct, *, quantity: int = 1, session_id: str = ""
) -> dict[str, Any]:
    session_id = session_id or f"cs_test_{next(_ids)}"
    return shapes.event(
        "checkout.session.completed",
        shapes.checkout_session(
            session_id,
            customer=customer.stripe_customer_id,
            mode="payment",
            amount_total=to_minor(pack.price, pack.currency) * quantity,
            currency=pack.currency,
            metadata={
                "user_id": str(customer.user_id),
                "price_id": pack.stripe_price_id,
                "quantity": str(quantity),
                "credits": str(pack.credit_amount * quantity),
            },
            payment_intent=f"pi_{session_id}",
        ),
        event_id=f"evt_{session_id}",
    )


def subscription_event(
    event_type: str,
    customer: StripeCustomer,
    plan: StripeProduct,
    *,
    sub_id: str = "sub_1",
    status: str = "active",
    start: int = NOW,
    created: int = NOW,
    cancel_at_period_end: bool = False,
    event_id: str = "",
) -> dict[str, Any]:
    return shapes.event(
        event_type,
        shapes.subscription(
            sub_id,
            customer=customer.stripe_customer_id,
            price_obj=price_obj(plan),
            item_id=f"si_{sub_id}",
            status=status,
            period_start=start,
            period_end=start + 30 * DAY,
            cancel_at_period_end=cancel_at_period_end,
        ),
        created=created,
        event_id=event_id,
    )


def invoice_paid(
    customer: StripeCustomer,
    plan: StripeProduct,
    *,
    invoice_id: str,
    sub_id: str = "sub_1",
    start: int = NOW,
    reason: str = "subscription_cycle",
    previous: StripeProduct | None = None,
    created: int | None = None,
    event_type: str = "invoice.paid",
) -> dict[str, Any]:
    lines = []
    if previous is not None:
        lines.append(
            shapes.invoice_line(
                price_obj=price_obj(previous),
                amount=-500,
                period_start=start,
                period_end=start + 30 * DAY,
            )
        )
    lines.append(
        shapes.invoice_line(
            price_obj=price_obj(plan),
            amount=to_minor(plan.price, plan.currency),
            period_start=start,
            period_end=start + 30 * DAY,
        )
    )
    return shapes.event(
        event_type,
        shapes.invoice(
            invoice_id,
            customer=customer.stripe_customer_id,
            subscription_id=sub_id,
            lines=lines,
            billing_reason=reason,
            status="paid" if event_type == "invoice.paid" else "open",
            # A cycle invoice is created when its period starts. Never the wall clock:
            # tests order invoices by `created` against NOW, fixed at import.
            created=start if created is None else created,
        ),
        event_id=f"evt_{event_type}_{invoice_id}",
    )


def invoice_payment_paid(
    invoice_id: str, *, amount: int, payment_intent: str = ""
) -> dict[str, Any]:
    """The event carrying a plan invoice's payment intent (``pi_<invoice id>`` by default)."""
    return shapes.event(
        "invoice_payment.paid",
        shapes.invoice_payment(
            f"inpay_{invoice_id}",
            invoice=invoice_id,
            payment_intent=payment_intent or f"pi_{invoice_id}",
            amount=amount,
        ),
        event_id=f"evt_inpay_{invoice_id}",
    )


def refund_event(
    customer: StripeCustomer | str,
    payment_intent: str,
    refund_id: str,
    amount: int,
    *,
    event_type: str = "refund.created",
    status: str = "succeeded",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``refund.*`` event as Stripe sends it for any refund (dashboard, API, dispute)."""
    customer_id = customer if isinstance(customer, str) else customer.stripe_customer_id
    return shapes.event(
        event_type,
        shapes.refund(
            refund_id,
            amount=amount,
            charge=f"ch_{payment_intent}",
            payment_intent=payment_intent,
            customer=customer_id,
            status=status,
            metadata=metadata,
        ),
        event_id=f"evt_{event_type}_{refund_id}_{status}",
    )
