"""Every handler, and each event delivered twice having one effect."""

import logging
from decimal import Decimal

import pytest
from django.core import mail

from common.testing.mail import pending_email_builders, send_queued_emails
from common.testing.tasks import queued_task_names
from credits.models import CreditLot
from stripe_manager import shapes
from stripe_manager.models import (
    Payment,
    ProcessedStripeEvent,
    Refund,
    StripeProduct,
    UserSubscription,
)
from stripe_manager.tests.factories import (
    DAY,
    NOW,
    balance,
    deliver,
    event_state,
    invoice_paid,
    invoice_payment_paid,
    price_obj,
    purchase_completed,
    refund_event,
    subscription_event,
    webhook_retries_due,
)

pytestmark = pytest.mark.django_db


def test_checkout_completed_for_a_paid_purchase_grants_credits_once(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"], quantity=3)
    with_email = len(mail.outbox)
    assert deliver(client, event) == 200
    assert deliver(client, event) == 200
    payment = Payment.objects.get()
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.amount == Decimal("30.00")
    assert payment.credits == 300
    assert balance(customer.user) == (0, 300, 300)
    assert len(mail.outbox) == with_email  # the request sends nothing itself
    # The receipt, queued with the event (the outbox row, no task), once for two deliveries.
    assert pending_email_builders() == ["stripe_manager.emails.receipt_email"]
    assert queued_task_names() == []


def test_the_receipt_email_is_sent_by_the_worker_after_the_purchase_commits(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, purchase_completed(customer, catalog["pack"]))
    assert mail.outbox == []  # the webhook only queued it
    send_queued_emails()
    assert len(mail.outbox) == 1
    assert Payment.objects.get().receipt_number in mail.outbox[0].subject


def test_an_unpaid_async_checkout_records_a_pending_payment_and_grants_nothing(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    event["data"]["object"]["payment_status"] = "unpaid"
    assert deliver(client, event) == 200
    assert Payment.objects.get().status == Payment.Status.PENDING
    assert balance(customer.user)[2] == 0


def test_async_payment_succeeded_grants_once(client, customer, catalog):
    completed = purchase_completed(customer, catalog["pack"])
    completed["data"]["object"]["payment_status"] = "unpaid"
    deliver(client, completed)
    succeeded = shapes.event(
        "checkout.session.async_payment_succeeded",
        {**completed["data"]["object"], "payment_status": "paid"},
        event_id="evt_async_ok",
    )
    assert deliver(client, succeeded) == 200
    assert deliver(client, succeeded) == 200
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert balance(customer.user)[2] == 100


def test_async_payment_failed_marks_the_payment_failed_without_credits(client, customer, catalog):
    completed = purchase_completed(customer, catalog["pack"])
    completed["data"]["object"]["payment_status"] = "unpaid"
    deliver(client, completed)
    failed = shapes.event(
        "checkout.session.async_payment_failed",
        completed["data"]["object"],
        event_id="evt_async_failed",
    )
    assert deliver(client, failed) == 200
    assert Payment.objects.get().status == Payment.Status.FAILED
    assert balance(customer.user)[2] == 0


def test_checkout_completed_for_a_subscription_grants_nothing_itself(client, customer, catalog):
    event = shapes.event(
        "checkout.session.completed",
        shapes.checkout_session(
            "cs_sub",
            customer=customer.stripe_customer_id,
            mode="subscription",
            amount_total=1500,
            subscription="sub_1",
            invoice="in_1",
        ),
    )
    assert deliver(client, event) == 200
    assert Payment.objects.count() == 0
    assert balance(customer.user)[2] == 0


def test_invoice_paid_grants_the_plan_credits_for_the_period_once(client, customer, catalog):
    event = invoice_paid(
        customer, catalog["basic"], invoice_id="in_1", reason="subscription_create"
    )
    assert deliver(client, event) == 200
    assert deliver(client, event) == 200
    lot = CreditLot.objects.get()
    assert lot.amount == 500
    assert lot.price_id == "price_basic"
    assert lot.expires_at is not None
    assert lot.expires_at.timestamp() == NOW + 30 * DAY
    payment = Payment.objects.get()
    assert payment.kind == Payment.Kind.SUBSCRIPTION
    # The invoice in a payload does not list its payments: invoice_payment.paid brings it.
    assert payment.stripe_payment_intent_id == ""
    assert balance(customer.user) == (500, 0, 500)


def test_an_upgrade_invoice_grants_the_new_plan_and_converts_the_old_plans_credits(
    client, customer, catalog
):
    deliver(client, invoice_paid(customer, catalog["basic"], invoice_id="in_1"))
    upgrade = invoice_paid(
        customer,
        catalog["pro"],
        invoice_id="in_2",
        previous=catalog["basic"],
        reason="subscription_update",
        created=NOW + 60,
    )
    assert deliver(client, upgrade) == 200
    assert deliver(client, upgrade) == 200
    assert balance(customer.user) == (2000, 500, 2500)


def test_an_upgrade_whose_proration_invoice_is_not_paid_keeps_the_old_plan(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    """payment_behavior=pending_if_incomplete: what Stripe sends when the card is declined.

    The subscription keeps its items (the new price waits in ``pending_update``)
    and the proration invoice fails; nothing switches and nothing is granted
    until that invoice is paid, after which Stripe applies the update.
    """
    basic, pro = catalog["basic"], catalog["pro"]
    deliver(client, subscription_event("customer.subscription.created", customer, basic))
    deliver(client, invoice_paid(customer, basic, invoice_id="in_1"))
    pending = subscription_event(
        "customer.subscription.updated", customer, basic, created=NOW + 60, event_id="evt_pend"
    )
    pending["data"]["object"]["pending_update"] = {
        "expires_at": NOW + DAY,
        "subscription_items": [{"id": "si_sub_1", "price": price_obj(pro), "quantity": 1}],
    }
    declined = invoice_paid(
        customer,
        pro,
        invoice_id="in_up",
        previous=basic,
        reason="subscription_update",
        created=NOW + 60,
        event_type="invoice.payment_failed",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, pending) == 200
        assert deliver(client, declined) == 200

    subscription = UserSubscription.objects.get()
    assert (subscription.price_id, subscription.product) == ("price_basic", basic)
    assert balance(customer.user) == (500, 0, 500)
    assert not CreditLot.objects.filter(price_id="price_pro").exists()
    assert Payment.objects.get(stripe_invoice_id="in_up").status == Payment.Status.FAILED
    send_queued_emails()
    assert "/billing/" in mail.outbox[-1].body

    # The customer pays the invoice later: Stripe applies the update.
    paid = invoice_paid(
        customer, pro, invoice_id="in_up", previous=basic, reason="subscription_update"
    )
    assert deliver(client, paid) == 200
    applied = subscription_event(
        "customer.subscription.updated", customer, pro, created=NOW + 120, event_id="evt_appl"
    )
    assert deliver(client, applied) == 200
    assert UserSubscription.objects.get().price_id == "price_pro"
    assert balance(customer.user) == (2000, 500, 2500)


def test_an_invoice_for_an_unknown_price_fails_until_the_catalog_knows_it(
    client, customer, catalog
):
    unknown = StripeProduct(
        stripe_price_id="price_new",
        stripe_product_id="prod_new",
        price=Decimal("9"),
        interval="month",
        name="New",
    )
    event = invoice_paid(customer, unknown, invoice_id="in_9")
    assert deliver(client, event) == 200  # stored; the attempt failed and is retried later
    assert event_state(event) == ("pending", 1)
    assert balance(customer.user)[2] == 0
    unknown.credit_amount = Decimal("50")
    unknown.save()
    assert webhook_retries_due() == 1
    assert event_state(event)[0] == "processed"
    assert balance(customer.user)[2] == 50


def test_a_one_off_invoice_without_a_subscription_grants_nothing(client, customer, catalog):
    event = invoice_paid(customer, catalog["basic"], invoice_id="in_x")
    event["data"]["object"]["parent"] = None
    assert deliver(client, event) == 200
    assert balance(customer.user)[2] == 0


def test_invoice_payment_failed_records_it_and_emails_a_billing_link(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    event = invoice_paid(
        customer, catalog["basic"], invoice_id="in_f", event_type="invoice.payment_failed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event) == 200
        assert deliver(client, event) == 200
    assert Payment.objects.get().status == Payment.Status.FAILED
    send_queued_emails()
    assert len(mail.outbox) == 1
    assert "/billing/" in mail.outbox[0].body
    assert balance(customer.user)[2] == 0
    # Stripe's retry succeeds: the same invoice is paid and granted.
    assert deliver(client, invoice_paid(customer, catalog["basic"], invoice_id="in_f")) == 200
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert balance(customer.user)[2] == 500


def test_invoice_upcoming_emails_the_renewal(
    client, customer, catalog, django_capture_on_commit_callbacks
):
    event = invoice_paid(
        customer, catalog["basic"], invoice_id="in_u", event_type="invoice.upcoming"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event) == 200
    send_queued_emails()
    assert len(mail.outbox) == 1
    assert "renews" in mail.outbox[0].body
    assert Payment.objects.count() == 0


def test_subscription_created_updated_and_deleted_track_the_subscription(client, customer, catalog):
    deliver(
        client,
        subscription_event(
            "customer.subscription.created", customer, catalog["basic"], created=NOW
        ),
    )
    row = UserSubscription.objects.get()
    assert (row.status, row.price_id, row.stripe_item_id) == ("active", "price_basic", "si_sub_1")
    assert row.current_period_start is not None
    assert row.current_period_start.timestamp() == NOW
    deliver(
        client,
        subscription_event(
            "customer.subscription.updated",
            customer,
            catalog["pro"],
            created=NOW + 10,
            cancel_at_period_end=True,
        ),
    )
    row.refresh_from_db()
    assert (row.price_id, row.cancel_at_period_end) == ("price_pro", True)
    deliver(
        client,
        subscription_event(
            "customer.subscription.deleted",
            customer,
            catalog["pro"],
            created=NOW + 20,
            status="canceled",
        ),
    )
    row.refresh_from_db()
    assert row.status == "canceled"


def test_a_late_subscription_updated_after_deleted_does_not_reactivate(client, customer, catalog):
    deleted = subscription_event(
        "customer.subscription.deleted",
        customer,
        catalog["basic"],
        status="canceled",
        created=NOW + 100,
    )
    late = subscription_event(
        "customer.subscription.updated",
        customer,
        catalog["basic"],
        status="active",
        created=NOW + 50,
    )
    # Even a late event stamped after the deletion cannot bring a canceled one back.
    later = subscription_event(
        "customer.subscription.updated",
        customer,
        catalog["basic"],
        status="active",
        created=NOW + 200,
        event_id="evt_later",
    )
    assert deliver(client, deleted) == 200
    assert deliver(client, late) == 200
    assert deliver(client, later) == 200
    assert UserSubscription.objects.get().status == "canceled"


def test_an_older_subscription_event_does_not_undo_a_newer_one(client, customer, catalog):
    newer = subscription_event(
        "customer.subscription.updated", customer, catalog["pro"], created=NOW + 10
    )
    older = subscription_event(
        "customer.subscription.updated", customer, catalog["basic"], created=NOW
    )
    deliver(client, newer)
    deliver(client, older)
    assert UserSubscription.objects.get().price_id == "price_pro"


def test_refund_created_reverses_each_refund_once_by_refund_id(client, customer, catalog):
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_r"))
    partial = refund_event(customer, "pi_cs_r", "re_1", 250)
    assert deliver(client, partial) == 200
    assert deliver(client, {**partial, "id": "evt_same_refund_again"}) == 200
    assert balance(customer.user)[2] == 75
    assert deliver(client, refund_event(customer, "pi_cs_r", "re_2", 750)) == 200
    assert balance(customer.user)[2] == 0
    payment = Payment.objects.get()
    assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("10.00"))
    assert Refund.objects.filter(status="succeeded").count() == 2


def test_a_pending_refund_is_applied_by_its_refund_updated_once_it_succeeds(
    client, customer, catalog
):
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_p"))
    pending = refund_event(customer, "pi_cs_p", "re_p", 1000, status="pending")
    assert deliver(client, pending) == 200
    assert balance(customer.user)[2] == 100
    succeeded = refund_event(customer, "pi_cs_p", "re_p", 1000, event_type="refund.updated")
    assert deliver(client, succeeded) == 200
    assert balance(customer.user)[2] == 0
    assert Refund.objects.get().stripe_refund_id == "re_p"


def test_refund_created_before_its_payment_fails_until_the_payment_arrives(
    client, customer, catalog
):
    refund = refund_event(customer, "pi_cs_early", "re_e", 1000)
    assert deliver(client, refund) == 200
    assert event_state(refund) == ("pending", 1)  # waits for its payment, retry scheduled
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_early"))
    assert balance(customer.user)[2] == 100
    assert webhook_retries_due() == 1
    assert event_state(refund)[0] == "processed"
    assert balance(customer.user)[2] == 0


def test_a_refund_for_a_customer_not_ours_answers_200_logs_and_changes_nothing(
    client, customer, catalog, caplog
):
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_mine"))
    before = (
        balance(customer.user),
        list(Payment.objects.values_list("status", "amount_refunded")),
    )
    caplog.set_level(logging.INFO, logger="stripe_manager.webhooks")

    assert deliver(client, refund_event("cus_someone_else", "pi_theirs", "re_theirs", 1000)) == 200

    assert "event for a customer not ours ignored" in [r.getMessage() for r in caplog.records]
    assert not Refund.objects.exists()
    assert (
        balance(customer.user),
        list(Payment.objects.values_list("status", "amount_refunded")),
    ) == before
    assert ProcessedStripeEvent.objects.filter(event_type="refund.created").count() == 1


def test_charge_refunded_is_not_applied_a_second_time(client, customer, catalog):
    deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_c"))
    deliver(client, refund_event(customer, "pi_cs_c", "re_c", 1000))
    charge = shapes.charge(
        "ch_pi_cs_c",
        customer=customer.stripe_customer_id,
        payment_intent="pi_cs_c",
        amount=1000,
        amount_refunded=1000,
    )
    assert deliver(client, shapes.event("charge.refunded", charge)) == 200
    assert Refund.objects.count() == 1
    assert Payment.objects.get().amount_refunded == Decimal("10.00")


def test_invoice_payment_paid_records_the_plan_payments_intent_in_either_order(
    client, customer, catalog
):
    basic = catalog["basic"]
    deliver(client, invoice_paid(customer, basic, invoice_id="in_a"))
    assert Payment.objects.get(stripe_invoice_id="in_a").stripe_payment_intent_id == ""
    assert deliver(client, invoice_payment_paid("in_a", amount=1500)) == 200
    assert Payment.objects.get(stripe_invoice_id="in_a").stripe_payment_intent_id == "pi_in_a"

    # Before its invoice: nothing to fill yet, and nothing to wait for (200).
    assert deliver(client, invoice_payment_paid("in_b", amount=1500)) == 200
    deliver(client, invoice_paid(customer, basic, invoice_id="in_b", start=NOW + DAY))
    assert Payment.objects.get(stripe_invoice_id="in_b").stripe_payment_intent_id == ""


def test_customer_deleted_answers_200_and_keeps_history(client, customer):
    event = shapes.event(
        "customer.deleted", {"id": customer.stripe_customer_id, "object": "customer"}
    )
    assert deliver(client, event) == 200
    customer.refresh_from_db()


def test_price_and_product_events_pull_that_product_from_the_gateway(client, db, settings):
    settings.STRIPE_GATEWAY = "simulator"
    from stripe_manager.simulator.catalog import seed_demo_catalog

    seed_demo_catalog()
    event = shapes.event(
        "price.created",
        shapes.price(
            "price_sim_basic_monthly",
            product_id="prod_sim_basic",
            unit_amount=1500,
            interval="month",
        ),
    )
    assert deliver(client, event) == 200
    row = StripeProduct.objects.get()
    assert row.stripe_price_id == "price_sim_basic_monthly"
    assert row.credit_amount == 500
    assert row.active
    from stripe_manager.models import SimulatedObject

    SimulatedObject.objects.filter(object_id="price_sim_basic_monthly").delete()
    deleted = shapes.event(
        "price.deleted",
        shapes.price(
            "price_sim_basic_monthly",
            product_id="prod_sim_basic",
            unit_amount=1500,
            interval="month",
        ),
    )
    assert deliver(client, deleted) == 200
    row.refresh_from_db()
    assert row.active is False
