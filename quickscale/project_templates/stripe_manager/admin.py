"""Staff views of billing data, with the catalog sync and refund actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from common.admin import ReadOnlyAdmin
from common.formatting import format_credit_count, format_money
from stripe_manager import webhook_queue
from stripe_manager.catalog import catalog_sync
from stripe_manager.exceptions import RefundError
from stripe_manager.gateway import GatewayError
from stripe_manager.models import (
    AutoTopUp,
    AutoTopUpCharge,
    Payment,
    ProcessedStripeEvent,
    ReceivedStripeEvent,
    Refund,
    StripeCustomer,
    StripeProduct,
    UserSubscription,
    WebhookFailure,
)
from stripe_manager.refunds import refund_payment
from users.models import CustomUser


@admin.register(StripeProduct)
class StripeProductAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "interval", "price", "currency", "credit_amount", "active"]
    list_filter = ["active", "interval"]
    readonly_fields = ["stripe_product_id", "stripe_price_id", "updated_at"]
    actions = ["sync_from_stripe"]
    # Adds a "Sync from Stripe" button: the action needs a selected row, and a
    # new site's catalog has none.
    change_list_template = "admin/stripe_manager/stripeproduct/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        sync = path(
            "sync/",
            self.admin_site.admin_view(self.sync_view),
            name="stripe_manager_stripeproduct_sync",
        )
        return [sync, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_sync": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """POST only: pull the whole catalog, then back to the list."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        self._sync(request)
        return HttpResponseRedirect(reverse("admin:stripe_manager_stripeproduct_changelist"))

    @admin.action(description="Sync the catalog from Stripe (pull-only)", permissions=["change"])
    def sync_from_stripe(self, request: HttpRequest, queryset: QuerySet[StripeProduct]) -> None:
        self._sync(request)

    def _sync(self, request: HttpRequest) -> None:
        try:
            upserted, deactivated = catalog_sync()
        except GatewayError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{upserted} prices synced, {deactivated} deactivated.")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["receipt_number", "user", "kind", "amount", "amount_refunded", "status"]
    list_filter = ["kind", "status"]
    search_fields = ["receipt_number", "user__email", "stripe_invoice_id"]
    actions = ["refund_in_full"]

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False

    def has_refund_permission(self, request: HttpRequest) -> bool:
        """Refunds move money: staff need the ``add_refund`` permission, not just a view."""
        return request.user.has_perm("stripe_manager.add_refund")

    @admin.action(
        description="Refund what is left of the selected payments", permissions=["refund"]
    )
    def refund_in_full(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        actor = request.user if isinstance(request.user, CustomUser) else None
        for payment in queryset:
            try:
                refund = refund_payment(payment_id=payment.pk, reason="Admin action", actor=actor)
            except RefundError as error:
                self.message_user(request, f"{payment.receipt_number}: {error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{payment.receipt_number}: refunded "
                    f"{format_money(refund.amount, payment.currency)}, "
                    f"{format_credit_count(refund.credits_reversed or 0)} taken back.",
                )


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["payment", "amount", "status", "stripe_refund_id", "credits_reversed"]
    list_filter = ["status"]
    search_fields = ["payment__receipt_number", "payment__user__email", "stripe_refund_id"]
    list_select_related = ["payment"]

    def has_change_permission(self, request: HttpRequest, obj: Refund | None = None) -> bool:
        return False


@admin.register(UserSubscription)
class UserSubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "product", "status", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status"]
    search_fields = ["user__email", "stripe_subscription_id", "price_id"]
    list_select_related = ["user", "product"]


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["stripe_customer_id", "user"]
    search_fields = ["stripe_customer_id", "user__email"]
    list_select_related = ["user"]


@admin.register(ReceivedStripeEvent)
class ReceivedStripeEventAdmin(ReadOnlyAdmin):
    """Events as received: pending (being applied or waiting for a retry), processed, given up."""

    list_display = ["event_id", "event_type", "state", "attempts", "received_at", "next_attempt_at"]
    list_filter = ["state", "event_type"]
    search_fields = ["event_id", "event_type"]
    actions = ["apply_now"]

    @admin.action(description="Apply the selected pending or given-up events now")
    def apply_now(self, request: HttpRequest, queryset: QuerySet[ReceivedStripeEvent]) -> None:
        count = webhook_queue.apply_now(list(queryset.values_list("pk", flat=True)))
        messages.info(request, f"{count} event{'s' if count != 1 else ''} due now.")


@admin.register(ProcessedStripeEvent)
class ProcessedStripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "event_type", "processed_at"]
    list_filter = ["event_type"]
    search_fields = ["event_id", "event_type"]


@admin.register(WebhookFailure)
class WebhookFailureAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "event_type", "attempts", "last_failed_at", "resolved_at"]
    list_filter = ["event_type", "resolved_at"]
    search_fields = ["event_id", "event_type", "error"]


@admin.register(AutoTopUp)
class AutoTopUpAdmin(ReadOnlyAdmin):
    list_display = ["user", "enabled", "product", "threshold", "sequence", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["user__email"]
    list_select_related = ["user", "product"]


@admin.register(AutoTopUpCharge)
class AutoTopUpChargeAdmin(ReadOnlyAdmin):
    """Every automatic top-up and how it ended (a refused card, its Stripe reason)."""

    list_display = ["idempotency_key", "user", "product", "status", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["user__email", "idempotency_key", "stripe_payment_intent_id"]
    list_select_related = ["user", "product"]
