"""``SimulatorGateway``: the ``Gateway`` interface, offline.

Each operation changes the simulator's records (``store``) and queues the
events Stripe would send (``delivery``), in one transaction. Beyond the
interface, the simulator pays checkouts (``complete_checkout``) and advances a
subscription to its next period (``renew``): the local checkout page, the demo's
renewal button and ``simulate_renewal`` call these.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.urls import reverse

from stripe_manager import shapes
from stripe_manager.gateway import (
    CheckoutSession,
    Gateway,
    GatewayError,
    Mode,
    OffSessionPayment,
    PriceInfo,
    RefundResult,
    UpgradePreview,
    metadata_credit_amount,
    metadata_display_order,
    metadata_features,
    metadata_highlight,
    metadata_trial_credits,
    metadata_trial_days,
    price_currency,
)
from stripe_manager.models import SimulatedObject
from stripe_manager.simulator import cards, store
from stripe_manager.simulator.delivery import deliver
from stripe_manager.simulator.store import Obj

DAY_SECONDS = 24 * 3600
PERIOD_SECONDS = 30 * DAY_SECONDS


class SimulatorGateway(Gateway):
    """The ``Gateway`` interface, offline. Amounts in minor units like Stripe's."""

    # ----------------------------------------------------------------- interface

    @transaction.atomic
    def create_customer(self, *, email: str, user_id: int, idempotency_key: str) -> str:
        existing = SimulatedObject.objects.filter(kind="customer", data__key=idempotency_key)
        if (row := existing.first()) is not None:
            return row.object_id
        customer_id = shapes.new_id("cus_sim")
        store.save(
            customer_id, "customer", {"email": email, "user_id": user_id, "key": idempotency_key}
        )
        return customer_id

    @transaction.atomic
    def update_customer(self, *, customer_id: str, email: str, name: str) -> None:
        customer = store.load_for_update(customer_id, "customer")
        customer.update(email=email, name=name)
        store.save(customer_id, "customer", customer)

    @transaction.atomic
    def erase_customer(self, *, customer_id: str) -> None:
        customer = store.load_for_update(customer_id, "customer")
        # The idempotency key stays: it names the account by id only, like Stripe's own.
        store.save(customer_id, "customer", {"email": None, "name": None, "key": customer["key"]})

    @transaction.atomic
    def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        quantity: int,
        mode: Mode,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        trial_days: int | None = None,
        save_card: bool = False,
    ) -> CheckoutSession:
        price = store.price(price_id)
        session_id = shapes.new_id("cs_sim")
        store.save(
            session_id,
            "checkout_session",
            {
                "customer": customer_id,
                "price": price_id,
                "quantity": quantity,
                "mode": mode,
                "success_url": success_url.replace("{CHECKOUT_SESSION_ID}", session_id),
                "cancel_url": cancel_url,
                "metadata": metadata,
                # A trial is free today: Stripe's session totals what is due now.
                "amount_total": 0 if trial_days else int(price["unit_amount"]) * quantity,
                "trial_days": trial_days if mode == "subscription" else None,
                "save_card": save_card and mode == "payment",
                "status": "open",
            },
        )
        url = reverse("stripe_manager:simulator_checkout", args=[session_id])
        return CheckoutSession(session_id=session_id, url=url)

    @transaction.atomic
    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        portal_id = shapes.new_id("bps_sim")
        store.save(portal_id, "portal_session", {"customer": customer_id, "return_url": return_url})
        return reverse("stripe_manager:simulator_portal", args=[portal_id])

    def preview_upgrade(
        self, *, subscription_id: str, item_id: str, price_id: str
    ) -> UpgradePreview:
        sub = store.load(subscription_id, "subscription")
        at = self._proration_moment(sub, None)
        lines = self._proration_lines(sub, price_id, at)
        return UpgradePreview(
            amount_due=max(0, sum(int(line["amount"]) for line in lines)),
            currency=str(store.price(price_id)["currency"]),
            proration_date=at,
        )

    @transaction.atomic
    def upgrade_subscription(
        self,
        *,
        subscription_id: str,
        item_id: str,
        price_id: str,
        proration_date: int | None = None,
    ) -> None:
        sub = store.load_for_update(subscription_id, "subscription")
        lines = self._proration_lines(sub, price_id, self._proration_moment(sub, proration_date))
        sub.update(price=price_id, scheduled_price=None, cancel_at_period_end=False)
        store.save(subscription_id, "subscription", sub)
        paid = self._paid_invoice(sub, subscription_id, lines, "subscription_update")
        deliver([shapes.event("customer.subscription.updated", self._subscription_obj(sub)), *paid])

    @staticmethod
    def _proration_moment(sub: Obj, proration_date: int | None) -> int:
        """When to prorate: ``proration_date`` (refused outside the period, as Stripe does), or now.

        Simulated renewals move the clock ahead, so "now" is kept inside the period.
        """
        start, end = int(sub["period_start"]), int(sub["period_end"])
        if proration_date is None:
            return max(int(time.time()), start + 1)
        if not start <= proration_date <= end:
            raise GatewayError("The proration date must be within the current period.")
        return proration_date

    @staticmethod
    def _proration_lines(sub: Obj, price_id: str, at: int) -> list[Obj]:
        """The upgrade invoice's lines: the old plan's unused time back, the new plan's charged.

        One computation for the preview and the update, so the two agree.
        """
        old, new = store.price(sub["price"]), store.price(price_id)
        start, end = int(sub["period_start"]), int(sub["period_end"])
        left = max(0.0, min(1.0, (end - at) / max(1, end - start)))
        unused = -round(int(old["unit_amount"]) * left)
        remaining = round(int(new["unit_amount"]) * left)
        if sub["status"] == "trialing":
            unused = remaining = 0  # a trial stays free whatever the plan
        return [
            shapes.invoice_line(price_obj=old, amount=unused, period_start=at, period_end=end),
            shapes.invoice_line(price_obj=new, amount=remaining, period_start=at, period_end=end),
        ]

    @transaction.atomic
    def schedule_downgrade(self, *, subscription_id: str, price_id: str) -> None:
        sub = store.load_for_update(subscription_id, "subscription")
        store.price(price_id)
        sub["scheduled_price"] = price_id
        sub["schedule"] = sub.get("schedule") or shapes.new_id("sub_sched_sim")
        store.save(subscription_id, "subscription", sub)
        deliver([shapes.event("customer.subscription.updated", self._subscription_obj(sub))])

    @transaction.atomic
    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        sub = store.load_for_update(subscription_id, "subscription")
        sub["cancel_at_period_end"] = cancel
        store.save(subscription_id, "subscription", sub)
        deliver([shapes.event("customer.subscription.updated", self._subscription_obj(sub))])

    @transaction.atomic
    def expire_checkout_sessions(self, *, customer_id: str) -> list[str]:
        rows = SimulatedObject.objects.select_for_update().filter(
            kind="checkout_session", data__customer=customer_id, data__status="open"
        )
        expired = []
        for row in rows.order_by("object_id"):
            store.save(row.object_id, "checkout_session", {**row.data, "status": "expired"})
            expired.append(row.object_id)
        return expired

    @transaction.atomic
    def cancel_customer_subscriptions(self, *, customer_id: str) -> list[str]:
        rows = SimulatedObject.objects.select_for_update().filter(
            kind="subscription", data__customer=customer_id
        )
        ended = []
        for row in rows.order_by("object_id"):
            sub: Obj = row.data
            if sub["status"] in ("canceled", "incomplete_expired"):
                continue
            sub["status"] = "canceled"
            store.save(row.object_id, "subscription", sub)
            ended.append(shapes.event("customer.subscription.deleted", self._subscription_obj(sub)))
        deliver(ended)
        return [event["data"]["object"]["id"] for event in ended]

    @transaction.atomic
    def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundResult:
        earlier = SimulatedObject.objects.filter(kind="refund", data__key=idempotency_key).first()
        if earlier is not None:
            data = earlier.data
            return RefundResult(
                refund_id=earlier.object_id, status="succeeded", amount=data["amount"]
            )
        row = (
            SimulatedObject.objects.select_for_update()
            .filter(kind="charge", data__payment_intent=payment_intent_id)
            .first()
        )
        if row is None:
            raise GatewayError(f"No charge for payment {payment_intent_id!r}.")
        charge: Obj = row.data
        if amount <= 0 or amount > charge["amount"] - charge["amount_refunded"]:
            raise GatewayError("The refund is larger than what is left of the charge.")
        refund_id = shapes.new_id("re_sim")
        refund = shapes.refund(
            refund_id,
            amount=amount,
            charge=charge["id"],
            payment_intent=payment_intent_id,
            customer=charge["customer"],
            metadata=metadata,
            currency=charge["currency"],
        )
        store.save(refund_id, "refund", {"key": idempotency_key, "amount": amount})
        charge = shapes.charge(
            charge["id"],
            customer=charge["customer"],
            payment_intent=payment_intent_id,
            amount=charge["amount"],
            amount_refunded=charge["amount_refunded"] + amount,
            currency=charge["currency"],
        )
        store.save(charge["id"], "charge", charge)
        # Stripe sends both; the charge no longer lists its refunds (includable only).
        deliver([shapes.event("charge.refunded", charge), shapes.event("refund.created", refund)])
        return RefundResult(refund_id=refund_id, status="succeeded", amount=amount)

    def retrieve_payment(self, *, payment_intent_id: str) -> dict[str, Any]:
        row = SimulatedObject.objects.filter(
            kind="charge", data__payment_intent=payment_intent_id
        ).first()
        if row is None:
            # A saved-card intent without a charge (processing, or refused).
            state = cards.payment_intent_state(payment_intent_id)
            if state is None:
                raise GatewayError(f"The simulator has no payment {payment_intent_id!r}.")
            return state
        charge: Obj = row.data
        return {
            "id": payment_intent_id,
            "status": charge["status"],
            "amount": charge["amount"],
            "amount_received": charge["amount_captured"],
            "currency": charge["currency"],
            "charge": charge["id"],
            "amount_refunded": charge["amount_refunded"],
            "refunded": charge["refunded"],
            "livemode": False,
        }

    @transaction.atomic
    def charge_saved_card(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount: int,
        currency: str,
        description: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> OffSessionPayment:
        return cards.charge_saved_card(
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            amount=amount,
            currency=currency,
            description=description,
            idempotency_key=idempotency_key,
            metadata=metadata,
            charge=self._charge,
        )

    def invoice_payment_intents(self, *, invoice_id: str) -> list[str]:
        rows = SimulatedObject.objects.filter(
            kind="invoice_payment", data__invoice=invoice_id, data__status="paid"
        ).order_by("created_at", "object_id")
        return [str(row.data["payment"]["payment_intent"]) for row in rows]

    def list_prices(self, *, product_id: str | None = None) -> list[PriceInfo]:
        prices = SimulatedObject.objects.filter(kind="price").order_by("object_id")
        products = {
            row.object_id: row.data for row in SimulatedObject.objects.filter(kind="product")
        }
        result = []
        for row in prices:
            price: Obj = row.data
            product = products.get(price["product"], {})
            if product_id and price["product"] != product_id:
                continue
            if not price.get("active", True) or not product.get("active", True):
                continue
            metadatas = price.get("metadata"), product.get("metadata")
            where = f"Stripe price {price['id']} (product {price['product']})"
            result.append(
                PriceInfo(
                    price_id=price["id"],
                    product_id=price["product"],
                    name=product.get("name", price["id"]),
                    description=product.get("description") or "",
                    unit_amount=int(price["unit_amount"]),
                    currency=price_currency(price["currency"], where=where),
                    interval=(price.get("recurring") or {}).get("interval") or "none",
                    credit_amount=metadata_credit_amount(*metadatas),
                    display_order=metadata_display_order(*metadatas),
                    trial_days=metadata_trial_days(*metadatas, where=where),
                    trial_credit_amount=metadata_trial_credits(*metadatas, where=where),
                    highlight=metadata_highlight(*metadatas, where=where),
                    features=metadata_features(*metadatas, where=where),
                )
            )
        return result

    # ----------------------------------------------------------------- simulator only

    def checkout_session(self, session_id: str) -> Obj | None:
        row = SimulatedObject.objects.filter(object_id=session_id, kind="checkout_session").first()
        return None if row is None else {"id": session_id, **row.data}

    def portal_session(self, portal_id: str) -> Obj | None:
        row = SimulatedObject.objects.filter(object_id=portal_id, kind="portal_session").first()
        return None if row is None else {"id": portal_id, **row.data}

    @transaction.atomic
    def complete_checkout(self, session_id: str, card: str = cards.VISA) -> str:
        """Pay an open checkout session with test ``card``; return the success URL.

        A session opened with ``save_card`` keeps ``card`` for off-session charges.
        """
        session = store.load_for_update(session_id, "checkout_session")
        if session["status"] != "open":
            return str(session["success_url"])
        session["status"] = "complete"
        price = store.price(session["price"])
        events: list[Obj] = []
        subscription_id = invoice_id = payment_intent = None
        if session["mode"] == "subscription":
            now = int(time.time())
            subscription_id = shapes.new_id("sub_sim")
            trial_days = session.get("trial_days")
            # A trial: the first period is the trial itself, billed at $0.
            end = now + (int(trial_days) * DAY_SECONDS if trial_days else PERIOD_SECONDS)
            sub = {
                "customer": session["customer"],
                "price": session["price"],
                "item": shapes.new_id("si_sim"),
                "period_start": now,
                "period_end": end,
                "status": "trialing" if trial_days else "active",
                "cancel_at_period_end": False,
                "scheduled_price": None,
                "schedule": None,
                "created": now,
                "id": subscription_id,
                "trial_start": now if trial_days else None,
                "trial_end": end if trial_days else None,
            }
            store.save(subscription_id, "subscription", sub)
            line = shapes.invoice_line(
                price_obj=price,
                amount=0 if trial_days else int(price["unit_amount"]),
                period_start=now,
                period_end=end,
            )
            paid = self._paid_invoice(sub, subscription_id, [line], "subscription_create")
            invoice_id = paid[0]["data"]["object"]["id"]
            events += [
                shapes.event("customer.subscription.created", self._subscription_obj(sub)),
                *paid,
            ]
        else:
            payment_intent = self._charge(
                session["customer"], session["amount_total"], price["currency"]
            )
            if session.get("save_card"):
                events.append(
                    cards.saved_card_event(
                        customer=session["customer"],
                        payment_intent=payment_intent,
                        amount=session["amount_total"],
                        currency=price["currency"],
                        metadata=session["metadata"],
                        card=card,
                    )
                )
        store.save(session_id, "checkout_session", session)
        events.append(
            shapes.event(
                "checkout.session.completed",
                shapes.checkout_session(
                    session_id,
                    customer=session["customer"],
                    mode=session["mode"],
                    amount_total=session["amount_total"],
                    currency=price["currency"],
                    metadata=session["metadata"],
                    payment_status="no_payment_required" if session.get("trial_days") else "paid",
                    payment_intent=payment_intent,
                    subscription=subscription_id,
                    invoice=invoice_id,
                ),
            )
        )
        deliver(events)
        return str(session["success_url"])

    def refund_in_dashboard(self, payment_intent_id: str, amount: int) -> str:
        """Refund as staff do in Stripe's dashboard: no request of ours, no metadata.

        Returns the refund id; the project learns of it from ``refund.created``.
        """
        key = shapes.new_id("dashboard")
        result = self.create_refund(
            payment_intent_id=payment_intent_id, amount=amount, idempotency_key=key, metadata={}
        )
        return result.refund_id

    @transaction.atomic
    def cancel_checkout(self, session_id: str) -> str:
        session = store.load_for_update(session_id, "checkout_session")
        if session["status"] == "open":
            session["status"] = "expired"
            store.save(session_id, "checkout_session", session)
        return str(session["cancel_url"])

    @transaction.atomic
    def renew(self, subscription_id: str) -> str:
        """Advance a subscription to its next period, as the clock reaching period end would.

        Applies a scheduled downgrade, ends a subscription set to cancel (a trial
        so cancelled ends unbilled), or bills the next period (at a trial's end,
        its first paid one). Returns what happened.
        """
        sub = store.load_for_update(subscription_id, "subscription")
        if sub["status"] not in ("active", "trialing"):
            raise GatewayError("Only an active or trialing subscription can renew.")
        if sub["cancel_at_period_end"]:
            sub["status"] = "canceled"
            store.save(subscription_id, "subscription", sub)
            deliver([shapes.event("customer.subscription.deleted", self._subscription_obj(sub))])
            return "canceled"
        if sub.get("scheduled_price"):
            sub["price"] = sub["scheduled_price"]
        # A trial's end is its first paid period's start (Stripe keeps trial_start/end).
        sub.update(scheduled_price=None, schedule=None, status="active")
        start = sub["period_end"]
        sub["period_start"], sub["period_end"] = start, start + PERIOD_SECONDS
        store.save(subscription_id, "subscription", sub)
        price = store.price(sub["price"])
        line = shapes.invoice_line(
            price_obj=price,
            amount=int(price["unit_amount"]),
            period_start=sub["period_start"],
            period_end=sub["period_end"],
        )
        paid = self._paid_invoice(sub, subscription_id, [line], "subscription_cycle")
        deliver([shapes.event("customer.subscription.updated", self._subscription_obj(sub)), *paid])
        return "renewed"

    # ----------------------------------------------------------------- helpers

    def _subscription_obj(self, sub: Obj) -> Obj:
        return shapes.subscription(
            sub["id"],
            customer=sub["customer"],
            price_obj=store.price(sub["price"]),
            item_id=sub["item"],
            status=sub["status"],
            period_start=sub["period_start"],
            period_end=sub["period_end"],
            cancel_at_period_end=sub["cancel_at_period_end"],
            created=sub["created"],
            schedule=sub.get("schedule"),
            trial_start=sub.get("trial_start"),
            trial_end=sub.get("trial_end"),
        )

    def _charge(self, customer: str, amount: int, currency: str) -> str:
        payment_intent = shapes.new_id("pi_sim")
        charge_id = shapes.new_id("ch_sim")
        charge = shapes.charge(
            charge_id,
            customer=customer,
            payment_intent=payment_intent,
            amount=amount,
            currency=currency,
        )
        store.save(charge_id, "charge", charge)
        return payment_intent

    def _paid_invoice(
        self, sub: Obj, subscription_id: str, lines: list[Obj], reason: str
    ) -> list[Obj]:
        """Pay an invoice for ``lines``: its ``invoice.paid`` event, then ``invoice_payment.paid``.

        As in Stripe, the invoice in the payload does not list its payments (an
        includable field); the payment intent travels in the invoice payment's
        own event and is kept for ``invoice_payment_intents``.
        """
        total = sum(int(line["amount"]) for line in lines)
        invoice = shapes.invoice(
            shapes.new_id("in_sim"),
            customer=sub["customer"],
            subscription_id=subscription_id,
            lines=lines,
            billing_reason=reason,
        )
        events = [shapes.event("invoice.paid", invoice)]
        if total > 0:
            payment_intent = self._charge(sub["customer"], total, invoice["currency"])
            paid = shapes.invoice_payment(
                shapes.new_id("inpay_sim"),
                invoice=invoice["id"],
                payment_intent=payment_intent,
                amount=total,
                currency=invoice["currency"],
            )
            store.save(paid["id"], "invoice_payment", paid)
            events.append(shapes.event("invoice_payment.paid", paid))
        return events
