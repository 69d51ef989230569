from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger, selectors
from credits.models import ExpiryReminder
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def test_live_lots_leave_out_spent_and_expired_lots(user):
    now = timezone.now()
    ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=2)
    )
    ledger.grant(user, 5, source="purchase", reference="cs_spent")
    ledger.grant(user, 5, source="purchase", reference="cs_kept")
    ledger.consume(user, 10, reference="use-1")

    assert [lot.reference for lot in selectors.live_lots(user)] == ["cs_kept"]
    ledger.reverse("use-1", amount=Decimal(1), key="re_1", reason="refund")
    assert [lot.reference for lot in selectors.live_lots(user, at=now + timedelta(days=3))] == [
        "cs_spent",
        "cs_kept",
    ]


def test_live_lots_put_subscription_lots_first_soonest_expiry_first(user):
    now = timezone.now()
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.grant(
        user, 5, source="subscription", reference="in_2", expires_at=now + timedelta(days=9)
    )
    ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=2)
    )

    assert [lot.reference for lot in selectors.live_lots(user)] == ["in_1", "in_2", "cs_1"]


def test_next_expiry_gives_the_soonest_date_and_everything_expiring_then(user):
    soon = timezone.now() + timedelta(days=2)
    ledger.grant(user, 5, source="subscription", reference="in_1", expires_at=soon)
    ledger.grant(user, Decimal("2.5"), source="admin", reference="promo", expires_at=soon)
    ledger.grant(
        user, 7, source="subscription", reference="in_2", expires_at=soon + timedelta(days=1)
    )
    ledger.grant(user, 100, source="purchase", reference="cs_1")

    assert selectors.next_expiry(user) == selectors.NextExpiry(at=soon, amount=Decimal("7.5"))


def test_next_expiry_is_none_when_nothing_expires(user):
    ledger.grant(user, 100, source="purchase", reference="cs_1")

    assert selectors.next_expiry(user) is None


def test_entries_page_is_newest_first_with_the_lots_each_entry_touched(
    user, django_assert_num_queries
):
    for i in range(30):
        ledger.grant(user, 1, source="purchase", reference=f"cs_{i}")

    with django_assert_num_queries(3):  # count, page, lot rows with their lots
        page = selectors.entries_page(user, page=2, per_page=20)
        keys = [entry.key for entry in page.object_list]
        lots = [row.lot.reference for entry in page.object_list for row in entry.lot_rows.all()]

    assert keys == [f"cs_{i}" for i in range(9, -1, -1)]
    assert lots == keys


def test_entries_page_out_of_range_gives_the_last_page(user):
    ledger.grant(user, 1, source="purchase", reference="cs_1")

    assert selectors.entries_page(user, page="99").number == 1
    assert selectors.entries_page(user, page="junk").number == 1


def test_entries_for_export_yield_everything_oldest_first(user):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.consume(user, 2, reference="use-1")

    assert [entry.key for entry in selectors.entries_for_export(user)] == ["cs_1", "use-1"]


def test_totals_by_source_sum_grants_and_usage_in_the_period(user, other_user, staff):
    start = timezone.now()
    ledger.grant(
        user, 100, source="subscription", reference="in_1", expires_at=start + timedelta(days=30)
    )
    ledger.grant(other_user, 50, source="purchase", reference="cs_1")
    ledger.consume(user, 30, reference="use-1")
    ledger.consume(other_user, 5, reference="use-2")
    ledger.adjust(other_user, -5, reference="adj-1", reason="correction", actor=staff)

    totals = selectors.totals_by_source(start=start, end=timezone.now() + timedelta(seconds=1))

    assert totals == {
        "subscription": selectors.SourceTotals(granted=Decimal(100), consumed=Decimal(30)),
        "purchase": selectors.SourceTotals(granted=Decimal(50), consumed=Decimal(5)),
    }
    assert selectors.totals_by_source(start=start - timedelta(days=2), end=start) == {}


def test_expiring_lots_skip_lots_already_reminded_and_lots_expiring_later(user):
    now = timezone.now()
    soon = ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=2)
    )
    reminded = ledger.grant(
        user, 5, source="subscription", reference="in_2", expires_at=now + timedelta(days=1)
    )
    ledger.grant(
        user, 5, source="subscription", reference="in_3", expires_at=now + timedelta(days=5)
    )
    ExpiryReminder.objects.create(lot=reminded)

    assert list(selectors.expiring_lots(within=timedelta(days=3))) == [soon]


def _usage(user: CustomUser, reference: str) -> selectors.GrantUsage | None:
    return selectors.grant_usage(selectors.entries_for_reference(user, reference))


def test_grant_usage_counts_a_reversal_as_reversed_and_only_use_as_spent(user):
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.consume(user, 30, reference="use-1")
    ledger.hold(user, 20, key="hold-1", expires_at=timezone.now() + timedelta(minutes=5))
    ledger.reverse("use-1", amount=Decimal(10), key="re_use", reason="call refunded")

    # 10 of the 30 used came back; the 20 held stay in the lot, so out of reach.
    assert _usage(user, "cs_1") == selectors.GrantUsage(
        granted=Decimal(100), reversed=Decimal(0), spent=Decimal(20)
    )
    ledger.reverse("cs_1", amount=Decimal(40), key="re_1", reason="refund")
    ledger.reverse("cs_1", key="re_2", reason="refund")

    # The first took 40; the second wanted the other 60, of which 20 are spent and
    # 20 held: it took 20 and is short 40.
    assert _usage(user, "cs_1") == selectors.GrantUsage(
        granted=Decimal(100), reversed=Decimal(60), spent=Decimal(20)
    )
    second = selectors.reversal_of("cs_1", "re_2")
    assert second is not None
    assert (second.amount, second.shortfall) == (Decimal(-20), Decimal(40))


def test_grant_usage_is_none_without_a_grant(user):
    assert _usage(user, "cs_unknown") is None
    assert selectors.reversal_of("", "re_1") is None
