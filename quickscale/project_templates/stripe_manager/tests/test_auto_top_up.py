"""Auto top-up: settings, the card a checkout saves, one charge per threshold crossing,
credits from ``payment_intent.succeeded`` once, and refused cards.

Stripe is the offline simulator (its test cards ``pm_card_visa``,
``pm_card_authenticationRequired`` and ``pm_card_chargeDeclined``); tasks run
through the real database queue (``run_queued_tasks``).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django_tasks_db.models import DBTaskResult

from common.models import QueuedEmail
from common.testing.tasks import queued_task_names, run_queued_tasks
from credits import ledger
from stripe_manager import auto_top_up, services, shapes
from stripe_manager.auto_top_up import auto_top_up_refused_email, auto_top_up_save
from stripe_manager.exceptions import InvalidAutoTopUp
from stripe_manager.models import AutoTopUp, AutoTopUpCharge, Payment, SimulatedObject
from stripe_manager.refunds import refund_payment
from stripe_manager.simulator import cards
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import deliver, spend
from users.models import CustomUser
from users.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

Status = AutoTopUpCharge.Status
TASK = "stripe_manager.auto_top_up_tasks.charge_auto_top_up"


@pytest.fixture
def signed_in(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def run_tasks(capture) -> None:
    """Play the worker; the simulator's webhooks (sent after commit) reach the endpoint."""
    with capture(execute=True):
        run_queued_tasks()


def available(user) -> Decimal:
    return ledger.balance(user).available


def payment_intents() -> int:
    return SimulatedObject.objects.filter(kind="payment_intent").count()


# --------------------------------------------------------------------------- settings


def test_opting_in_saves_the_pack_and_threshold(user, catalog):
    row = auto_top_up_save(
        user=user, enabled=True, price_id="price_pack", threshold=Decimal("25.50")
    )

    assert row is not None
    assert (row.enabled, row.product, row.threshold) == (True, catalog["pack"], Decimal("25.50"))


@pytest.mark.parametrize("price_id", ["price_retired", "price_gone", "price_basic", ""])
def test_a_pack_not_on_sale_is_refused_and_nothing_changes(user, catalog, price_id):
    with pytest.raises(InvalidAutoTopUp, match="not on sale"):
        auto_top_up_save(user=user, enabled=True, price_id=price_id, threshold=10)

    assert not AutoTopUp.objects.exists()


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (0, "above 0"),
        (Decimal("-5"), "above 0"),
        ("-0.01", "above 0"),
        ("abc", "above 0"),
        ("NaN", "above 0"),
        ("Infinity", "above 0"),
        ("", "above 0"),
        (None, "above 0"),
        (1.5, "above 0"),
        ("10.005", "at most 2 decimals"),
        ("100.01", "at most the pack's 100 credits"),
        (101, "at most the pack's 100 credits"),
    ],
)
def test_a_threshold_out_of_range_is_refused_and_the_settings_stay(
    user, catalog, threshold, message
):
    before = auto_top_up_save(user=user, enabled=True, price_id="price_pack", threshold=40)
    assert before is not None

    with pytest.raises(InvalidAutoTopUp, match=message):
        auto_top_up_save(user=user, enabled=True, price_id="price_pack", threshold=threshold)

    after = AutoTopUp.objects.get(user=user)
    assert (after.enabled, after.threshold, after.updated_at) == (
        True,
        Decimal(40),
        before.updated_at,
    )


def test_the_threshold_may_equal_the_pack_size(user, catalog):
    row = auto_top_up_save(user=user, enabled=True, price_id="price_pack", threshold=100)
    assert row is not None and row.threshold == Decimal(100)


def test_the_database_refuses_a_threshold_of_zero(opted_in):
    with pytest.raises(IntegrityError), transaction.atomic():
        AutoTopUp.objects.filter(pk=opted_in.pk).update(threshold=0)


def test_the_billing_page_saves_the_settings_and_refuses_bad_ones(signed_in, user, catalog):
    page = signed_in.get("/billing/")
    assert b'id="auto-top-up"' in page.content

    response = signed_in.post(
        "/billing/auto-top-up/", {"enabled": "on", "price_id": "price_pack", "threshold": "30"}
    )
    assert response.status_code == 303
    assert AutoTopUp.objects.get(user=user).threshold == Decimal(30)

    refused = signed_in.post(
        "/billing/auto-top-up/",
        {"enabled": "on", "price_id": "price_pack", "threshold": "500"},
        follow=True,
    )
    assert "at most the pack&#x27;s 100 credits" in refused.content.decode()
    assert AutoTopUp.objects.get(user=user).threshold == Decimal(30)

    signed_in.post("/billing/auto-top-up/", {"price_id": "price_pack", "threshold": "30"})
    assert AutoTopUp.objects.get(user=user).enabled is False


# --------------------------------------------------------------------------- the card


def _checkout(user) -> tuple[SimulatorGateway, str]:
    session = services.checkout_start(
        user=user,
        price_id="price_pack",
        quantity=1,
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/cancel",
    )
    return SimulatorGateway(), session.session_id


def test_a_checkout_while_opted_in_saves_the_card_the_payer_used(
    user, catalog, customer, django_capture_on_commit_callbacks
):
    auto_top_up_save(user=user, enabled=True, price_id="price_pack", threshold=20)
    simulator, session_id = _checkout(user)
    assert SimulatedObject.objects.get(object_id=session_id).data["save_card"] is True

    with django_capture_on_commit_callbacks(execute=True):
        simulator.complete_checkout(session_id, card=cards.AUTHENTICATION_REQUIRED)

    assert AutoTopUp.objects.get(user=user).payment_method_id == cards.AUTHENTICATION_REQUIRED
    assert available(user) == Decimal(100)  # the checkout's own credits, once


def test_a_checkout_without_opting_in_saves_no_card(
    user, catalog, customer, django_capture_on_commit_callbacks
):
    simulator, session_id = _checkout(user)
    assert SimulatedObject.objects.get(object_id=session_id).data["save_card"] is False

    with django_capture_on_commit_callbacks(execute=True):
        simulator.complete_checkout(session_id)

    assert not AutoTopUp.objects.exists()
    assert available(user) == Decimal(100)


def test_the_simulated_checkout_page_offers_the_test_cards_and_saves_the_chosen_one(
    signed_in, user, catalog, customer, django_capture_on_commit_callbacks
):
    auto_top_up_save(user=user, enabled=True, price_id="price_pack", threshold=20)
    _, session_id = _checkout(user)
    url = f"/stripe/simulator/checkout/{session_id}/"
    assert cards.DECLINED in signed_in.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(url, {"action": "pay", "card": cards.DECLINED})

    assert response.status_code == 303
    assert AutoTopUp.objects.get(user=user).payment_method_id == cards.DECLINED


# --------------------------------------------------------------------------- one crossing


def test_a_spend_below_the_threshold_buys_the_pack_once(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    spend(user, 60, "call-1", capture)  # 120 -> 60: above the threshold
    assert not AutoTopUpCharge.objects.exists()

    spend(user, 20, "call-2", capture)  # 60 -> 40: crosses it
    spend(user, 5, "call-3", capture)  # still below, one top-up in flight already
    [charge] = AutoTopUpCharge.objects.all()
    assert (charge.status, charge.sequence, charge.idempotency_key) == (
        Status.QUEUED,
        1,
        f"auto-top-up:{user.pk}:1",
    )
    assert queued_task_names().count(TASK) == 1

    run_tasks(capture)

    charge.refresh_from_db()
    assert charge.status == Status.SUCCEEDED
    assert payment_intents() == 1
    assert available(user) == Decimal(135)
    payment = Payment.objects.get(stripe_payment_intent_id=charge.stripe_payment_intent_id)
    assert (payment.credits, payment.amount, payment.credit_reference) == (
        Decimal(100),
        Decimal("10.00"),
        charge.stripe_payment_intent_id,
    )
    assert QueuedEmail.objects.filter(key=f"receipt:{payment.pk}").exists()

    # Back above it; the next crossing is a new top-up with the next number.
    spend(user, 90, "call-4", capture)
    assert AutoTopUpCharge.objects.get(sequence=2).idempotency_key == f"auto-top-up:{user.pk}:2"


def test_replayed_payment_intent_events_grant_the_top_up_once(
    client, user, opted_in, customer, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    run_tasks(django_capture_on_commit_callbacks)
    charge = AutoTopUpCharge.objects.get()
    assert available(user) == Decimal(140)

    intent = shapes.payment_intent(
        charge.stripe_payment_intent_id,
        customer=customer.stripe_customer_id,
        amount=1000,
        payment_method=cards.VISA,
        metadata={"auto_top_up": charge.idempotency_key, "user_id": str(user.pk)},
    )
    # The same event again, and the same payment in an event with another id.
    for event_id in ("evt_replay", "evt_replay", "evt_other"):
        event = shapes.event("payment_intent.succeeded", intent, event_id=event_id)
        assert deliver(client, event) == 200

    assert available(user) == Decimal(140)
    assert Payment.objects.filter(user=user).count() == 1


def test_the_database_allows_one_top_up_in_flight_per_user(user, opted_in, catalog):
    fields = dict(user=user, product=catalog["pack"], amount=10, credits=100)
    AutoTopUpCharge.objects.create(sequence=1, idempotency_key="a", **fields)

    with pytest.raises(IntegrityError), transaction.atomic():
        AutoTopUpCharge.objects.create(
            sequence=2, idempotency_key="b", status=Status.CHARGED, **fields
        )


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_spends_across_the_threshold_make_one_payment_intent(catalog, settings):
    """Commits matter here (the trigger runs after each spend commits, under row locks),
    so this test commits for real, from 20 threads with their own connections."""
    from stripe_manager.tests.factories import make_customer
    from users.tests.factories import make_user

    user = make_user("racer@example.com")
    make_customer(user)
    ledger.grant(user, 100, source="admin", reference="race-fund")
    AutoTopUp.objects.create(
        user=user,
        enabled=True,
        product=catalog["pack"],
        threshold=Decimal(50),
        payment_method_id=cards.VISA,
    )
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def spender(index: int) -> None:
        try:
            start.wait()
            ledger.consume(CustomUser.objects.get(pk=user.pk), 5, reference=f"race-{index}")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=spender, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert available(user) == Decimal(0)  # every spend went through
    assert AutoTopUpCharge.objects.count() == 1
    assert queued_task_names().count(TASK) == 1

    run_queued_tasks()

    assert payment_intents() == 1
    assert AutoTopUpCharge.objects.get().status == Status.SUCCEEDED
    assert available(user) == Decimal(100)


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("card", "status", "reason"),
    [
        (cards.DECLINED, Status.DECLINED, "your card was declined"),
        (
            cards.AUTHENTICATION_REQUIRED,
            Status.AUTHENTICATION_REQUIRED,
            "your bank asked you to confirm the payment yourself",
        ),
    ],
)
def test_a_refused_card_turns_auto_top_up_off_and_asks_the_user_to_pay(
    signed_in, user, opted_in, card, status, reason, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    AutoTopUp.objects.filter(pk=opted_in.pk).update(payment_method_id=card)
    spend(user, 80, "call-1", capture)

    run_tasks(capture)

    charge = AutoTopUpCharge.objects.get()
    assert charge.status == status
    assert charge.stripe_payment_intent_id  # Stripe's failed intent, for staff
    assert charge.error.startswith(
        "authentication_required" if status == Status.AUTHENTICATION_REQUIRED else "card_declined"
    )
    assert AutoTopUp.objects.get(user=user).enabled is False
    assert available(user) == Decimal(40)  # the spend stands; nothing granted
    assert not Payment.objects.exists()

    queued = QueuedEmail.objects.get(key=f"auto_top_up_refused:{charge.pk}")
    assert queued.params == {"charge_id": charge.pk}
    email = auto_top_up_refused_email(charge.pk)
    assert email is not None and email.to == (user.email,)
    assert reason in email.body
    assert "/billing/#auto-top-up" in email.body

    # Off: a further spend starts nothing; the billing page offers to pay on-session.
    spend(user, 10, "call-2", capture)
    assert AutoTopUpCharge.objects.count() == 1
    page = signed_in.get("/billing/").content.decode()
    assert 'id="top-up-refused"' in page
    assert "Pay for 100 credits now" in page
    assert 'value="price_pack"' in page


def test_a_pack_taken_off_sale_before_the_charge_turns_auto_top_up_off(
    user, opted_in, catalog, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    catalog["pack"].active = False
    catalog["pack"].save()

    run_tasks(django_capture_on_commit_callbacks)

    charge = AutoTopUpCharge.objects.get()
    assert charge.status == Status.PACK_UNAVAILABLE
    assert payment_intents() == 0  # the card was never charged
    assert AutoTopUp.objects.get(user=user).enabled is False
    email = auto_top_up_refused_email(charge.pk)
    assert email is not None
    assert "no longer on sale" in email.body
    assert "Pick another pack" in email.body


def test_a_top_up_no_longer_needed_when_it_runs_is_skipped(
    user, opted_in, fund, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    fund(user, 500)  # e.g. a plan renewed meanwhile

    run_tasks(django_capture_on_commit_callbacks)

    assert AutoTopUpCharge.objects.get().status == Status.SKIPPED
    assert payment_intents() == 0
    assert AutoTopUp.objects.get(user=user).enabled is True


def test_a_user_not_opted_in_costs_a_spend_one_query_and_starts_nothing(
    user, fund, django_assert_num_queries
):
    fund(user, 100)
    with django_assert_num_queries(1):
        auto_top_up.on_available_lowered(None, user_id=user.pk, available=Decimal(1))
    assert not AutoTopUpCharge.objects.exists()


def test_staff_see_a_refused_top_up_with_stripes_reason_in_the_admin(
    user, staff, opted_in, django_capture_on_commit_callbacks
):
    AutoTopUp.objects.filter(pk=opted_in.pk).update(payment_method_id=cards.DECLINED)
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    run_tasks(django_capture_on_commit_callbacks)
    charge = AutoTopUpCharge.objects.get()
    staff.user_permissions.add(Permission.objects.get(codename="view_autotopupcharge"))
    client = Client()
    client.force_login(staff)

    listing = client.get("/admin/stripe_manager/autotopupcharge/").content.decode()
    detail = client.get(f"/admin/stripe_manager/autotopupcharge/{charge.pk}/change/")

    assert charge.idempotency_key in listing
    assert "Card declined" in listing
    assert "card_declined: Your card was declined." in detail.content.decode()


def test_a_top_up_whose_pack_the_user_changed_meanwhile_is_skipped(
    user, opted_in, catalog, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    bigger = catalog["pack"].__class__.objects.create(
        name="500 credits",
        price=Decimal("40.00"),
        credit_amount=500,
        stripe_product_id="prod_big",
        stripe_price_id="price_big",
    )
    auto_top_up_save(user=user, enabled=True, price_id=bigger.stripe_price_id, threshold=50)

    run_tasks(django_capture_on_commit_callbacks)

    assert AutoTopUpCharge.objects.get(sequence=1).status == Status.SKIPPED
    assert payment_intents() == 0
    # Still on, with the new pack: the next spend below the threshold buys that one.
    spend(user, 1, "call-2", django_capture_on_commit_callbacks)
    assert AutoTopUpCharge.objects.get(sequence=2).product == bigger


def test_the_sweep_sends_a_lost_charge_task_again_and_stripe_charges_once(
    user, opted_in, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    DBTaskResult.objects.filter(task_path=TASK).delete()  # the task was lost
    charge = AutoTopUpCharge.objects.get()

    assert auto_top_up.sweep_stalled_charges() == 0  # not stalled yet
    later = charge.enqueued_at + auto_top_up.STALL + timedelta(seconds=1)
    assert auto_top_up.sweep_stalled_charges(now=later) == 1
    assert auto_top_up.sweep_stalled_charges(now=later) == 0  # sent again once per stall

    run_tasks(django_capture_on_commit_callbacks)
    # A duplicate task of the same charge (the first was only late) charges nothing more.
    auto_top_up._enqueue_with_transaction(charge.pk)
    run_tasks(django_capture_on_commit_callbacks)

    assert AutoTopUpCharge.objects.get().status == Status.SUCCEEDED
    assert payment_intents() == 1
    assert available(user) == Decimal(140)


def test_a_refunded_top_up_takes_its_credits_back(
    user, opted_in, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    run_tasks(django_capture_on_commit_callbacks)
    payment = Payment.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        refund_payment(payment_id=payment.pk, reason="Asked by the customer")

    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert available(user) == Decimal(40)
