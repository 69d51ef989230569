"""Auto top-up charges in flight: granted without their webhook, a ``processing`` intent
that fails later, the sweep, no lock held while Stripe answers, what triggers a top-up
(spends, not holds), a pack that shrank below the threshold, deleted accounts.

Stripe is the offline simulator; tasks run through the real database queue.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from common.models import QueuedEmail
from common.testing.tasks import queued_task_names, run_queued_tasks
from credits import ledger
from stripe_manager import auto_top_up, shapes
from stripe_manager.gateway import OffSessionPayment
from stripe_manager.models import AutoTopUp, AutoTopUpCharge, Payment, SimulatedObject
from stripe_manager.selectors import open_webhook_failure_count
from stripe_manager.simulator import cards
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import deliver, event_state, spend
from users.models import CustomUser
from users.services import user_delete

pytestmark = pytest.mark.django_db

Status = AutoTopUpCharge.Status
TASK = "stripe_manager.auto_top_up_tasks.charge_auto_top_up"


def total(user) -> Decimal:
    return ledger.balance(user).total


def use_card(setting: AutoTopUp, card: str) -> None:
    AutoTopUp.objects.filter(pk=setting.pk).update(payment_method_id=card)


# --------------------------------------------------------------------------- finding 1


def test_a_succeeded_intent_is_granted_by_the_task_when_its_webhook_never_comes(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    spend(user, 80, "call-1", capture)  # 120 -> 40

    with capture(execute=False) as lost:  # the simulator's payment_intent.succeeded is lost
        run_queued_tasks()

    charge = AutoTopUpCharge.objects.get()
    assert charge.status == Status.SUCCEEDED
    assert total(user) == Decimal(140)
    assert Payment.objects.get().stripe_payment_intent_id == charge.stripe_payment_intent_id

    # The webhook arriving after all grants nothing more.
    with capture(execute=True):
        for callback in lost:
            callback()
    assert total(user) == Decimal(140)
    assert Payment.objects.count() == 1


def test_a_processing_intent_that_fails_later_turns_auto_top_up_off_and_tells_the_user(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    use_card(opted_in, cards.PROCESSING_THEN_DECLINED)
    spend(user, 80, "call-1", capture)
    with capture(execute=True):
        run_queued_tasks()
    charge = AutoTopUpCharge.objects.get()
    assert charge.status == Status.CHARGED  # in flight: Stripe has not settled it
    spend(user, 5, "call-2", capture)
    assert AutoTopUpCharge.objects.count() == 1  # one in flight per user

    with capture(execute=True):  # Stripe declines it: payment_intent.payment_failed
        cards.fail_processing(charge.stripe_payment_intent_id)

    charge.refresh_from_db()
    assert charge.status == Status.DECLINED
    assert charge.error == "card_declined: Your card was declined."
    assert charge.finished_at is not None
    assert AutoTopUp.objects.get(user=user).enabled is False
    assert QueuedEmail.objects.filter(key=f"auto_top_up_refused:{charge.pk}").exists()
    assert total(user) == Decimal(35)
    assert not Payment.objects.exists()
    # Nothing stuck: turned on again, the next crossing queues a new top-up.
    AutoTopUp.objects.filter(user=user).update(enabled=True, payment_method_id=cards.VISA)
    spend(user, 1, "call-3", capture)
    assert AutoTopUpCharge.objects.get(sequence=2).status == Status.QUEUED


def test_a_failed_intent_of_a_payment_that_is_not_a_top_up_changes_nothing(
    client, user, opted_in, customer
):
    intent = shapes.payment_intent(
        "pi_other",
        customer=customer.stripe_customer_id,
        amount=1000,
        status="requires_payment_method",
        last_payment_error={"code": "card_declined", "message": "Declined."},
    )
    assert deliver(client, shapes.event("payment_intent.payment_failed", intent)) == 200
    assert AutoTopUp.objects.get(user=user).enabled is True


def test_the_sweep_refuses_a_processing_charge_whose_failure_event_never_came(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    use_card(opted_in, cards.PROCESSING_THEN_DECLINED)
    spend(user, 80, "call-1", capture)
    with capture(execute=True):
        run_queued_tasks()
    charge = AutoTopUpCharge.objects.get()
    later = charge.enqueued_at + auto_top_up.CONFIRM_WAIT + timedelta(seconds=1)

    assert auto_top_up.sweep_stalled_charges(now=later) == 0  # still processing at Stripe
    with capture(execute=False):  # declined, but the event is lost
        cards.fail_processing(charge.stripe_payment_intent_id)
    assert auto_top_up.sweep_stalled_charges() == 0  # not waiting long enough yet
    with capture(execute=True):
        assert auto_top_up.sweep_stalled_charges(now=later) == 1

    charge.refresh_from_db()
    assert charge.status == Status.DECLINED
    assert AutoTopUp.objects.get(user=user).enabled is False
    assert QueuedEmail.objects.filter(key=f"auto_top_up_refused:{charge.pk}").exists()


def test_the_sweep_grants_a_charged_intent_that_succeeded_without_its_webhook(
    user, opted_in, customer, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # its webhook is lost
        paid = SimulatorGateway().charge_saved_card(
            customer_id=customer.stripe_customer_id,
            payment_method_id=cards.VISA,
            amount=1000,
            currency="usd",
            description="Auto top-up",
            idempotency_key=f"auto-top-up:{user.pk}:1",
            metadata={},
        )
    long_ago = timezone.now() - auto_top_up.CONFIRM_WAIT - timedelta(minutes=1)
    charge = AutoTopUpCharge.objects.create(
        user=user,
        sequence=1,
        product=catalog["pack"],
        amount=Decimal("10.00"),
        credits=Decimal(100),
        idempotency_key=f"auto-top-up:{user.pk}:1",
        status=Status.CHARGED,
        stripe_payment_intent_id=paid.payment_intent_id,
        enqueued_at=long_ago,
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert auto_top_up.sweep_stalled_charges() == 1
        assert auto_top_up.sweep_stalled_charges() == 0  # granted once

    charge.refresh_from_db()
    assert charge.status == Status.SUCCEEDED
    assert total(user) == Decimal(220)
    assert Payment.objects.get().amount == Decimal("10.00")


def test_the_sweep_queues_again_a_charge_whose_worker_died_during_the_stripe_call(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    spend(user, 80, "call-1", capture)
    charge = AutoTopUpCharge.objects.get()
    long_ago = timezone.now() - auto_top_up.STALL - timedelta(minutes=1)
    # The worker marked it charging, then died; its task is done as far as the queue knows.
    AutoTopUpCharge.objects.filter(pk=charge.pk).update(
        status=Status.CHARGING, enqueued_at=long_ago
    )
    with capture(execute=True):
        run_queued_tasks()
    assert AutoTopUpCharge.objects.get().status == Status.CHARGING  # a repeated task: left

    assert auto_top_up.sweep_stalled_charges() == 1
    assert queued_task_names().count(TASK) == 1
    with capture(execute=True):
        run_queued_tasks()

    assert AutoTopUpCharge.objects.get().status == Status.SUCCEEDED
    assert SimulatedObject.objects.filter(kind="payment_intent").count() == 1
    assert total(user) == Decimal(140)


# --------------------------------------------------------------------------- finding 10


def test_a_paid_top_up_whose_charge_is_unknown_is_retried_not_dropped(
    client, user, opted_in, customer
):
    intent = shapes.payment_intent(
        "pi_unknown",
        customer=customer.stripe_customer_id,
        amount=1000,
        metadata={"auto_top_up": f"auto-top-up:{user.pk}:99", "user_id": str(user.pk)},
    )
    event = shapes.event("payment_intent.succeeded", intent)

    assert deliver(client, event) == 200  # stored; the attempt failed
    assert event_state(event) == ("pending", 1)  # retried later
    assert open_webhook_failure_count() == 1  # staff see the failure
    assert total(user) == Decimal(120)
    assert not Payment.objects.exists()


# --------------------------------------------------------------------------- finding 11


def test_a_pack_shrunk_below_the_threshold_since_opting_in_turns_auto_top_up_off(
    user, opted_in, catalog, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    spend(user, 80, "call-1", capture)
    # A catalog sync: the pack now gives 40 credits, below the threshold of 50.
    type(catalog["pack"]).objects.filter(pk=catalog["pack"].pk).update(credit_amount=40)

    with capture(execute=True):
        run_queued_tasks()

    charge = AutoTopUpCharge.objects.get()
    assert charge.status == Status.PACK_TOO_SMALL
    assert SimulatedObject.objects.filter(kind="payment_intent").count() == 0
    assert AutoTopUp.objects.get(user=user).enabled is False
    email = auto_top_up.auto_top_up_refused_email(charge.pk)
    assert email is not None
    assert "fewer credits than your threshold" in email.body


# --------------------------------------------------------------------------- finding 5


class WatchingGateway(SimulatorGateway):
    """The simulator, noting whether the charge request comes inside a transaction and
    whether another connection can lock the auto top-up rows meanwhile."""

    seen: dict[str, Any] = {}

    def charge_saved_card(self, **kwargs: Any) -> OffSessionPayment:
        self.seen["in_transaction"] = connection.in_atomic_block

        def lock_rows() -> None:
            try:
                with transaction.atomic():
                    list(AutoTopUp.objects.select_for_update(nowait=True))
                    list(AutoTopUpCharge.objects.select_for_update(nowait=True))
                self.seen["locked"] = True
            except Exception as error:  # reported by the test's assertion
                self.seen["locked"] = error
            finally:
                connection.close()

        other = threading.Thread(target=lock_rows)
        other.start()
        other.join()
        return super().charge_saved_card(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_row_lock_is_held_while_stripe_answers(catalog, settings):
    """Another connection can lock the settings and charge rows (the billing page's
    toggle, a spend's trigger) while the charge request is at Stripe."""
    from stripe_manager.tests.factories import make_customer
    from users.tests.factories import make_user

    user = make_user("locks@example.com")
    make_customer(user)
    ledger.grant(user, 100, source="admin", reference="locks-fund")
    AutoTopUp.objects.create(
        user=user,
        enabled=True,
        product=catalog["pack"],
        threshold=Decimal(50),
        payment_method_id=cards.VISA,
    )
    WatchingGateway.seen = {}
    settings.STRIPE_GATEWAY = f"{__name__}.WatchingGateway"

    ledger.consume(CustomUser.objects.get(pk=user.pk), 60, reference="locks-1")
    run_queued_tasks()

    assert WatchingGateway.seen == {"in_transaction": False, "locked": True}
    assert AutoTopUpCharge.objects.get().status == Status.SUCCEEDED
    assert total(user) == Decimal(140)


# --------------------------------------------------------------------------- finding 6


def test_a_hold_starts_no_top_up_and_its_settle_does_only_for_what_was_spent(
    user, opted_in, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    expires = timezone.now() + timedelta(minutes=5)
    with capture(execute=True):  # an estimate of 85: available 35, below the threshold
        ledger.hold(user, 85, key="llm-1", expires_at=expires)
    assert not AutoTopUpCharge.objects.exists()

    spend(user, 10, "call-1", capture)  # available 25, but 110 credits owned
    assert not AutoTopUpCharge.objects.exists()

    with capture(execute=True):  # it really cost 20: 90 owned
        ledger.settle("llm-1", amount=20)
    assert not AutoTopUpCharge.objects.exists()

    with capture(execute=True):
        ledger.hold(user, 60, key="llm-2", expires_at=expires)
    assert not AutoTopUpCharge.objects.exists()
    with capture(execute=True):  # within its hold: 45 owned, below the threshold
        ledger.settle("llm-2", amount=45)
    assert AutoTopUpCharge.objects.get().status == Status.QUEUED


# --------------------------------------------------------------------------- finding 2


def test_deleting_the_account_turns_auto_top_up_off_and_forgets_the_card(
    user, opted_in, django_capture_on_commit_callbacks
):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)  # a top-up queued

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=user)
        run_queued_tasks()

    setting = AutoTopUp.objects.get(user=user)
    assert (setting.enabled, setting.payment_method_id) == (False, "")
    assert AutoTopUpCharge.objects.get().status == Status.SKIPPED
    assert SimulatedObject.objects.filter(kind="payment_intent").count() == 0


def test_an_inactive_account_is_never_charged(user, opted_in, django_capture_on_commit_callbacks):
    spend(user, 80, "call-1", django_capture_on_commit_callbacks)
    CustomUser.objects.filter(pk=user.pk).update(is_active=False)  # deactivated by staff

    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()

    charge = AutoTopUpCharge.objects.get()
    assert (charge.status, charge.error) == (Status.SKIPPED, "The account is inactive.")
    assert AutoTopUp.objects.get(user=user).enabled is False
    assert SimulatedObject.objects.filter(kind="payment_intent").count() == 0
