"""Saved cards in the simulator: Stripe's test payment methods and what they do off-session.

A checkout opened with ``save_card`` keeps the card the payer picked on the
simulated checkout page as the customer's payment method; its
``payment_intent.succeeded`` event names it with ``setup_future_usage``, as
Stripe's does. An off-session charge (``charge_saved_card``) then behaves as
Stripe's test payment method of that id does when the customer is away:

- ``pm_card_visa`` succeeds (``payment_intent.succeeded`` is delivered);
- ``pm_card_authenticationRequired`` wants 3-D Secure: ``authentication_required``;
- ``pm_card_chargeDeclined`` is declined: ``card_declined``;
- ``pm_sim_processingThenDeclined`` (the simulator's own) leaves the intent
  ``processing``, with no event, until ``fail_processing`` declines it and
  delivers ``payment_intent.payment_failed``: a payment that fails later.

The checkout itself always succeeds (the payer is there to authenticate), so a
card can be saved that will fail later, as 4000 0000 0000 0341 does at Stripe.
"""

from __future__ import annotations

from collections.abc import Callable

from stripe_manager import shapes
from stripe_manager.gateway import CardRefused, GatewayError, OffSessionPayment
from stripe_manager.models import SimulatedObject
from stripe_manager.simulator import store
from stripe_manager.simulator.delivery import deliver
from stripe_manager.simulator.store import Obj

VISA = "pm_card_visa"
AUTHENTICATION_REQUIRED = "pm_card_authenticationRequired"
DECLINED = "pm_card_chargeDeclined"
PROCESSING_THEN_DECLINED = "pm_sim_processingThenDeclined"
# What the simulated checkout page offers, in its order.
TEST_CARDS: dict[str, str] = {
    VISA: "Visa 4242 (always succeeds)",
    AUTHENTICATION_REQUIRED: "Needs authentication for later payments (3-D Secure)",
    DECLINED: "Declines later payments",
    PROCESSING_THEN_DECLINED: "Later payments stay processing, then fail (simulator only)",
}
_REFUSALS = {
    AUTHENTICATION_REQUIRED: (
        "authentication_required",
        "This payment requires the customer to authenticate.",
    ),
    DECLINED: ("card_declined", "Your card was declined."),
}


def saved_card_event(
    *, customer: str, payment_intent: str, amount: int, currency: str, metadata: Obj, card: str
) -> Obj:
    """The ``payment_intent.succeeded`` event of a checkout that saved ``card``."""
    if card not in TEST_CARDS:
        raise GatewayError(f"The simulator has no test card {card!r}.")
    return shapes.event(
        "payment_intent.succeeded",
        shapes.payment_intent(
            payment_intent,
            customer=customer,
            amount=amount,
            currency=currency,
            payment_method=card,
            setup_future_usage="off_session",
            metadata=metadata,
        ),
    )


def charge_saved_card(
    *,
    customer_id: str,
    payment_method_id: str,
    amount: int,
    currency: str,
    description: str,
    idempotency_key: str,
    metadata: dict[str, str],
    charge: Callable[[str, int, str], str],
) -> OffSessionPayment:
    """An off-session PaymentIntent, confirmed at once; the same key gives the same answer.

    ``charge`` records a paid charge (customer, amount, currency) and returns its intent id.
    """
    earlier = SimulatedObject.objects.filter(
        kind="payment_intent", data__key=idempotency_key
    ).first()
    intent: Obj
    if earlier is not None:
        intent = earlier.data
    else:
        if payment_method_id not in TEST_CARDS:
            raise GatewayError(f"No such PaymentMethod: {payment_method_id!r}.")
        intent_id = shapes.new_id("pi_sim")
        refusal = _REFUSALS.get(payment_method_id)
        processing = payment_method_id == PROCESSING_THEN_DECLINED
        status = "requires_payment_method" if refusal else "succeeded"
        if processing:
            status = "processing"
        elif refusal is None:
            intent_id = charge(customer_id, amount, currency)
        intent = {
            "key": idempotency_key,
            "id": intent_id,
            "status": status,
            "code": refusal[0] if refusal else "",
            "message": refusal[1] if refusal else "",
            # What fail_processing's event repeats.
            "customer": customer_id,
            "amount": amount,
            "currency": currency,
            "metadata": metadata,
            "description": description,
            "payment_method": payment_method_id,
        }
        store.save(intent_id, "payment_intent", intent)
        if refusal is None and not processing:
            deliver(
                [
                    shapes.event(
                        "payment_intent.succeeded",
                        shapes.payment_intent(
                            intent_id,
                            customer=customer_id,
                            amount=amount,
                            currency=currency,
                            payment_method=payment_method_id,
                            metadata=metadata,
                            description=description,
                        ),
                    )
                ]
            )
    if intent["status"] not in ("succeeded", "processing"):
        raise CardRefused(intent["message"], code=intent["code"], payment_intent_id=intent["id"])
    return OffSessionPayment(payment_intent_id=intent["id"], status=intent["status"])


def fail_processing(intent_id: str) -> None:
    """Decline a ``processing`` intent and deliver its ``payment_intent.payment_failed``."""
    row = SimulatedObject.objects.filter(kind="payment_intent", object_id=intent_id).first()
    if row is None or row.data.get("status") != "processing":
        raise GatewayError(f"The simulator has no processing payment {intent_id!r}.")
    intent: Obj = {**row.data, "status": "requires_payment_method", "code": "card_declined"}
    intent["message"] = "Your card was declined."
    store.save(intent_id, "payment_intent", intent)
    deliver(
        [
            shapes.event(
                "payment_intent.payment_failed",
                shapes.payment_intent(
                    intent_id,
                    customer=intent["customer"],
                    amount=intent["amount"],
                    currency=intent["currency"],
                    status="requires_payment_method",
                    payment_method=intent["payment_method"],
                    metadata=intent["metadata"],
                    description=intent["description"],
                    last_payment_error={
                        "type": "card_error",
                        "code": "card_declined",
                        "message": intent["message"],
                    },
                ),
            )
        ]
    )


def payment_intent_state(intent_id: str) -> Obj | None:
    """A saved-card intent as ``retrieve_payment`` reports it, or None if there is none."""
    row = SimulatedObject.objects.filter(kind="payment_intent", object_id=intent_id).first()
    if row is None:
        return None
    data: Obj = row.data
    received = data.get("amount") or 0 if data["status"] == "succeeded" else 0
    return {
        "id": intent_id,
        "status": data["status"],
        "amount": data.get("amount"),
        "amount_received": received,
        "currency": data.get("currency"),
        "charge": None,
        "amount_refunded": None,
        "refunded": None,
        "livemode": False,
    }
