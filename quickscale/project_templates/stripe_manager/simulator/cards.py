"""Saved cards in the simulator: Stripe's test payment methods and what they do off-session.

A checkout opened with ``save_card`` keeps the card the payer picked on the
simulated checkout page as the customer's payment method; its
``payment_intent.succeeded`` event names it with ``setup_future_usage``, as
Stripe's does. An off-session charge (``charge_saved_card``) then behaves as
Stripe's test payment method of that id does when the customer is away:

- ``pm_card_visa`` succeeds (``payment_intent.succeeded`` is delivered);
- ``pm_card_authenticationRequired`` wants 3-D Secure: ``authentication_required``;
- ``pm_card_chargeDeclined`` is declined: ``card_declined``.

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
# What the simulated checkout page offers, in its order.
TEST_CARDS: dict[str, str] = {
    VISA: "Visa 4242 (always succeeds)",
    AUTHENTICATION_REQUIRED: "Needs authentication for later payments (3-D Secure)",
    DECLINED: "Declines later payments",
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
    charge: Callable[[str, int], str],
) -> OffSessionPayment:
    """An off-session PaymentIntent, confirmed at once; the same key gives the same answer.

    ``charge`` records a paid charge (customer, amount) and returns its intent id.
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
        status = "requires_payment_method" if refusal else "succeeded"
        if refusal is None:
            intent_id = charge(customer_id, amount)
        intent = {
            "key": idempotency_key,
            "id": intent_id,
            "status": status,
            "code": refusal[0] if refusal else "",
            "message": refusal[1] if refusal else "",
        }
        store.save(intent_id, "payment_intent", intent)
        if refusal is None:
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
    if intent["status"] != "succeeded":
        raise CardRefused(intent["message"], code=intent["code"], payment_intent_id=intent["id"])
    return OffSessionPayment(payment_intent_id=intent["id"], status="succeeded")
