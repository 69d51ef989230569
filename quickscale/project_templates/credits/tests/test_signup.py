from decimal import Decimal

import pytest
from django.urls import reverse

from credits import ledger
from credits.models import CreditLot
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_a_new_account_gets_the_default_credit_balance_as_a_signup_lot(settings):
    settings.DEFAULT_CREDIT_BALANCE = Decimal(25)

    user = make_user()

    lot = CreditLot.objects.get(user=user)
    assert (lot.source, lot.amount, lot.reference) == ("signup", Decimal(25), f"signup:{user.pk}")
    assert ledger.balance(user).pay_as_you_go == Decimal(25)


def test_the_signup_grant_is_given_once_even_when_the_account_is_saved_again(settings):
    settings.DEFAULT_CREDIT_BALANCE = Decimal(25)
    user = make_user()

    user.first_name = "Ada"
    user.save()

    assert ledger.balance(user).total == Decimal(25)


def test_a_default_balance_of_zero_grants_nothing(settings):
    settings.DEFAULT_CREDIT_BALANCE = Decimal(0)

    user = make_user()

    assert not CreditLot.objects.filter(user=user).exists()


def test_signing_up_through_the_form_grants_the_default_balance(client, settings):
    settings.DEFAULT_CREDIT_BALANCE = Decimal(5)

    client.post(
        reverse("account_signup"),
        {
            "email": "new@example.com",
            "password1": "a-Long-pass-42!",
            "password2": "a-Long-pass-42!",
        },
    )

    lot = CreditLot.objects.get(user__email="new@example.com")
    assert lot.amount == Decimal(5)


def test_an_unusable_default_balance_is_reported_by_the_system_check(settings):
    from credits.receivers import check_credit_settings

    settings.DEFAULT_CREDIT_BALANCE = Decimal("2.555")

    assert [error.id for error in check_credit_settings()] == ["credits.E001"]
