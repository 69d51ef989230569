from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from credits import ledger
from credits.models import CreditHold, CreditLot, LedgerEntry
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_staff_can_read_lots_and_entries(admin_client, user):
    lot = ledger.grant(user, 5, source="purchase", reference="cs_1")
    entry = LedgerEntry.objects.get()

    assert admin_client.get(reverse("admin:credits_creditlot_changelist")).status_code == 200
    assert (
        admin_client.get(reverse("admin:credits_creditlot_change", args=[lot.pk])).status_code
        == 200
    )
    page = admin_client.get(reverse("admin:credits_ledgerentry_change", args=[entry.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


@pytest.mark.parametrize("model", ["creditlot", "ledgerentry"])
def test_the_admin_cannot_add_or_delete_credit_records(admin_client, user, model):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    pk = (CreditLot if model == "creditlot" else LedgerEntry).objects.get().pk

    assert admin_client.get(reverse(f"admin:credits_{model}_add")).status_code == 403
    assert admin_client.post(reverse(f"admin:credits_{model}_delete", args=[pk])).status_code == 403
    assert CreditLot.objects.count() == LedgerEntry.objects.count() == 1


def test_staff_can_read_holds_but_not_change_them(admin_client, user):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    hold = ledger.hold(user, 2, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    listing = admin_client.get(reverse("admin:credits_credithold_changelist"))
    page = admin_client.get(reverse("admin:credits_credithold_change", args=[hold.pk]))

    assert listing.status_code == page.status_code == 200
    assert b"call-1" in listing.content
    assert b'name="_save"' not in page.content
    assert admin_client.get(reverse("admin:credits_credithold_add")).status_code == 403
    delete = reverse("admin:credits_credithold_delete", args=[hold.pk])
    assert admin_client.post(delete).status_code == 403
    assert CreditHold.objects.get().state == "open"
