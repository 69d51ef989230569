"""`manage.py send_credit_reminders`: email users whose credits expire within a few days.

Meant for cron (daily is enough). Each lot is reminded of once: the reminder
row is written in the same transaction as the send, so a failed send is
retried by the next run and a second run sends nothing new.
"""

import logging
from datetime import timedelta
from itertools import groupby
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from credits import selectors
from credits.emails import send_expiry_reminder_email
from credits.models import CreditLot, ExpiryReminder
from users.email_preferences import Topic, wants_email

logger = logging.getLogger(__name__)


class ReminderNotSent(Exception):
    """The mail server did not take a reminder (already logged); its rows roll back."""


class Command(BaseCommand):
    help = "Email users about credits that expire within --days days (default 3). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=3, help="Look this many days ahead.")

    def handle(self, *args: Any, **options: Any) -> None:
        lots = selectors.expiring_lots(within=timedelta(days=options["days"]))
        users = failed = 0
        for _, group in groupby(lots, key=lambda lot: lot.user_id):
            try:
                if self._remind(list(group)):
                    users += 1
            except ReminderNotSent:
                failed += 1
            except Exception:
                failed += 1
                logger.exception("expiry reminder failed")
        self.stdout.write(
            f"reminded {users} user{'s' if users != 1 else ''}"
            + (f", {failed} failed (retried next run)" if failed else "")
        )

    @staticmethod
    @transaction.atomic
    def _remind(lots: list[CreditLot]) -> bool:
        """Record then send one user's reminder; a concurrent run finds the rows and skips."""
        new = [lot for lot in lots if ExpiryReminder.objects.get_or_create(lot=lot)[1]]
        if not new or not new[0].user.is_active:
            return False
        if not wants_email(new[0].user, Topic.EXPIRY):
            return False  # switched off: the rows above are kept, so it is not asked again
        if not send_expiry_reminder_email(new[0].user, new):
            raise ReminderNotSent  # leaves the atomic block: the rows above are not kept
        return True
