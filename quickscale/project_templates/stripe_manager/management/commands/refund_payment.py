from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.formatting import format_credit_count, format_money
from stripe_manager.exceptions import RefundError
from stripe_manager.models import Payment
from stripe_manager.refunds import refund_payment


class Command(BaseCommand):
    help = "Refund all or part of a payment (by receipt number) and take back its credits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("receipt_number")
        parser.add_argument("--amount", help="amount to refund (default: all that is left)")
        parser.add_argument("--reason", default="", help="why (kept on the refund)")

    def handle(self, *args: Any, **options: Any) -> None:
        payment = Payment.objects.filter(receipt_number=options["receipt_number"]).first()
        if payment is None:
            raise CommandError(f"No payment with receipt number {options['receipt_number']}.")
        amount = options["amount"]
        try:
            refund = refund_payment(
                payment_id=payment.pk,
                amount=None if amount is None else amount,
                reason=options["reason"],
            )
        except RefundError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"refunded {format_money(refund.amount, refund.payment.currency)} ({refund.status}), "
            f"{format_credit_count(refund.credits_reversed or Decimal(0))} taken back"
        )
