"""The staff journey in a real Chromium (fixtures: common/testing/browser.py)."""

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from admin_dashboard.models import AuditLog
from admin_dashboard.tests.conftest import buy_credits
from credits import ledger
from services.configuration import ensure_service_rows
from services.models import Service
from stripe_manager.models import Payment
from users.models import CustomUser
from users.tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Staff-pass-2024!"


def test_staff_find_a_user_grant_credits_refund_a_purchase_and_see_both_in_the_audit_log(
    page: Any,
):
    call_command("seed_demo_catalog", stdout=None)
    customer = make_user(email="buyer@example.com")
    payment = buy_credits(customer)
    assert ledger.balance(customer).total == 100
    CustomUser.objects.create_user(email="ops@example.com", password=PASSWORD, is_staff=True)
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm and the Alpine confirm

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard").click()
    page.locator(".tabs").get_by_role("link", name="Users").click()
    page.get_by_label("Email").fill("buyer@")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="buyer@example.com").click()
    expect(page.locator("#balance-total")).to_have_text("100")

    page.get_by_label("Action").select_option("grant")
    page.get_by_label("Credits").fill("25")
    page.get_by_label("Reason").fill("Goodwill for the outage")
    page.get_by_role("button", name="Apply adjustment").click()
    expect(page.locator("#adjust-done")).to_contain_text("by 25.")  # swapped in by htmx
    expect(page.locator("#balance-total")).to_have_text("125")

    page.get_by_role("link", name=payment.receipt_number).click()
    page.get_by_role("link", name="Refund…").click()
    page.get_by_label("Reason").fill("Bought the wrong pack")
    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_text("Refunded $10.00")).to_be_visible()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert ledger.balance(customer).total == Decimal("25")

    page.locator(".tabs").get_by_role("link", name="Audit log").click()
    table = page.locator("#audit-table")
    expect(table).to_contain_text("Goodwill for the outage")
    expect(table).to_contain_text("Bought the wrong pack")
    assert set(AuditLog.objects.values_list("action", flat=True)) >= {
        AuditLog.Action.CREDIT_ADJUSTMENT,
        AuditLog.Action.REFUND,
        AuditLog.Action.PAYMENT_INVESTIGATION,
    }


def test_staff_switch_a_service_off_and_on_in_its_row(page: Any):
    ensure_service_rows()
    CustomUser.objects.create_user(email="ops@example.com", password=PASSWORD, is_staff=True)
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm before switching off
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard").click()
    page.locator(".tabs").get_by_role("link", name="Services").click()
    page.evaluate("window.sameDocument = true")  # gone after any full page load
    row = page.locator("#service-demo_free_service")

    row.get_by_role("button", name="Switch off").click()
    expect(row.get_by_role("button", name="Switch on")).to_be_visible()
    expect(row).to_contain_text("off")
    assert not Service.objects.get(name="demo_free_service").is_active

    row.get_by_role("button", name="Switch on").click()
    expect(row.get_by_role("button", name="Switch off")).to_be_visible()
    assert Service.objects.get(name="demo_free_service").is_active
    assert page.evaluate("window.sameDocument") is True
