"""Zero-decimal amounts stored before #17 multiplied by 100: ¥500 was stored as 5.00.

Until ``stripe_manager.money`` converted Stripe's integer amounts per currency,
every one was divided by 100, so in a zero-decimal currency (JPY, KRW, ...)
a ¥500 price, payment or refund was stored as 5.00. The code after it trusts
stored amounts: without this migration a staff refund of such a payment would
send Stripe 5 (¥5) and mark the payment fully refunded, and an auto top-up
would charge ¥5 until the catalog is synced again. Every money column filled
from a Stripe amount is corrected, for rows whose own currency (a refund's: its
payment's) is zero-decimal, compared case-insensitively; rows in any other
currency are not touched. Credits are counts, not money, and stay as they are;
``admin_dashboard.RefundRequest.amount`` and the audit log record what staff
typed and saw at the time and are left as written. The release before must
not run beside this one (it would multiply the corrected amounts by 100 again
when charging): ``docs/going-live.md`` says to stop it before migrating.

The zero-decimal list is copied here (Stripe's, as in ``common.formatting`` on
the day this was written): a migration must not change when app code does.

Overflow: the columns are ``numeric(12, 2)``, below 10**10. A value of 10**8 or
more would not fit once multiplied, but the code before could only store one
from a Stripe integer of 10**10 or more, beyond what Stripe charges (8 digits).
Should a row (edited by hand, say) be that large anyway, the migration stops
before changing anything and names it, rather than let PostgreSQL fail on a
bare "numeric field overflow". Going back divides by 100, exact for whole
amounts (all a zero-decimal currency has); a row with a fraction (which only a
hand edit can make) stops it the same way, since dividing it would round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import migrations
from django.db.models import F, Q
from django.db.models.functions import Lower, Mod
from django.db.models.lookups import Exact, In

logger = logging.getLogger(__name__)

ZERO_DECIMAL_CURRENCIES = (
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
)
FACTOR = 100
# numeric(12, 2): every column corrected here holds values below 10**10.
LARGEST_FITTING = 10**10 // FACTOR

# (model, its money columns, the path to the row's currency)
AMOUNTS = (
    ("StripeProduct", ("price",), "currency"),
    ("Payment", ("amount", "amount_refunded"), "currency"),
    ("Refund", ("amount",), "payment__currency"),
    ("AutoTopUpCharge", ("amount",), "currency"),
)


def _zero_decimal_rows(apps: Any, model_name: str, currency: str) -> Any:
    model = apps.get_model("stripe_manager", model_name)
    return model.objects.filter(In(Lower(currency), ZERO_DECIMAL_CURRENCIES))


def _refuse(rows: Any, bad: Q, model_name: str, why: str) -> None:
    found = list(rows.filter(bad).values_list("pk", flat=True)[:20])
    if found:
        raise RuntimeError(
            f"stripe_manager 0009: {model_name} rows {found} {why}; nothing was changed. "
            "Correct them by hand (their amounts at Stripe are the truth), then migrate again."
        )


def _check(apps: Any, bad_for: Callable[[str], Q], why: str) -> None:
    for model_name, columns, currency in AMOUNTS:
        rows = _zero_decimal_rows(apps, model_name, currency)
        bad = Q()
        for column in columns:
            bad |= bad_for(column)
        _refuse(rows, bad, model_name, why)


def _scale(apps: Any, *, multiply: bool) -> None:
    for model_name, columns, currency in AMOUNTS:
        rows = _zero_decimal_rows(apps, model_name, currency)
        changes = {
            column: F(column) * FACTOR if multiply else F(column) / FACTOR for column in columns
        }
        # One statement per table: a payment's amount and amount_refunded change together,
        # so its check constraint (refunded <= amount) holds at every row.
        updated = rows.update(**changes)
        logger.info(
            "zero-decimal amounts rescaled",
            extra={"model": model_name, "rows": updated, "factor": FACTOR, "multiply": multiply},
        )


def multiply_zero_decimal_amounts(apps: Any, schema_editor: Any) -> None:
    _check(
        apps,
        lambda column: (
            Q(**{f"{column}__gte": LARGEST_FITTING}) | Q(**{f"{column}__lte": -LARGEST_FITTING})
        ),
        f"hold amounts of {LARGEST_FITTING} or more, which would not fit multiplied by {FACTOR}",
    )
    _scale(apps, multiply=True)


def divide_zero_decimal_amounts(apps: Any, schema_editor: Any) -> None:
    _check(
        apps,
        lambda column: ~Q(Exact(Mod(column, 1), 0)),
        f"hold amounts with a fraction, which dividing by {FACTOR} would round",
    )
    _scale(apps, multiply=False)


class Migration(migrations.Migration):
    dependencies = [("stripe_manager", "0008_received_event_customer")]

    operations = [
        migrations.RunPython(multiply_zero_decimal_amounts, divide_zero_decimal_amounts),
    ]
