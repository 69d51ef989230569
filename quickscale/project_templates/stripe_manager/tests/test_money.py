"""Stripe's integer amounts to ``Decimal`` and back, per currency (``stripe_manager.money``).

The currency lists below are written out from Stripe's currency guide
(https://docs.stripe.com/currencies), not read from the module, so a currency
dropped from or added to the module's lists fails here.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.formatting import format_money
from stripe_manager.money import AmountError, UnsupportedCurrency, from_minor, to_minor

ZERO_DECIMAL = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
]  # fmt: skip
THREE_DECIMAL = ["bhd", "jod", "kwd", "omr", "tnd"]
# Common ones, and Stripe's special cases HUF and TWD (whole units for payouts only, which
# this project never makes). ISK, its other two-decimal special case, has its own test.
TWO_DECIMAL = ["usd", "eur", "gbp", "chf", "huf", "twd"]


@pytest.mark.parametrize("currency", ZERO_DECIMAL)
def test_a_zero_decimal_amount_from_stripe_is_the_amount_itself(currency):
    assert from_minor(500, currency) == Decimal(500)
    assert from_minor(500, currency.upper()) == Decimal(500)


@pytest.mark.parametrize("currency", ZERO_DECIMAL)
def test_a_zero_decimal_amount_goes_to_stripe_unscaled(currency):
    assert to_minor(Decimal(500), currency) == 500
    assert to_minor(Decimal("500.00"), currency) == 500  # as a 2-place column returns it


@pytest.mark.parametrize("currency", TWO_DECIMAL)
def test_a_two_decimal_amount_counts_hundredths(currency):
    assert from_minor(1050, currency) == Decimal("10.50")
    assert to_minor(Decimal("10.50"), currency.upper()) == 1050


def test_usd_amounts_are_unchanged():
    assert from_minor(1000, "usd") == Decimal("10.00")
    assert from_minor(1, "usd") == Decimal("0.01")
    assert from_minor(-500, "usd") == Decimal("-5.00")  # a proration credit line
    assert to_minor(Decimal("10.00"), "usd") == 1000
    assert to_minor(Decimal("0.01"), "usd") == 1
    assert to_minor(10, "usd") == 1000


@pytest.mark.parametrize(
    ("units", "currency"), [(1050, "usd"), (500, "jpy"), (99999999, "krw"), (7, "eur")]
)
def test_an_amount_comes_back_from_stripe_as_it_went(units, currency):
    assert to_minor(from_minor(units, currency), currency) == units


def test_a_fraction_of_a_yen_is_refused_not_rounded():
    with pytest.raises(AmountError) as raised:
        to_minor(Decimal("12.50"), "jpy")
    assert str(raised.value) == (
        "12.50 JPY is not a whole number of its smallest unit (JPY amounts have whole units); "
        "nothing was rounded."
    )


def test_a_fraction_of_a_cent_is_refused_not_rounded():
    with pytest.raises(AmountError, match=r"0\.005 USD .* at most 2 decimals"):
        to_minor(Decimal("0.005"), "usd")


def test_isk_is_two_decimal_but_charged_in_whole_kronur_only():
    assert from_minor(500, "isk") == Decimal("5.00")
    assert from_minor(4010, "isk") == Decimal("40.10")  # an old fractional charge still reads
    assert to_minor(Decimal(5), "isk") == 500
    with pytest.raises(AmountError, match="ISK in whole units only"):
        to_minor(Decimal("40.10"), "isk")


@pytest.mark.parametrize("currency", THREE_DECIMAL)
def test_a_three_decimal_currency_is_refused_both_ways(currency):
    code = currency.upper()
    message = f"{code} amounts have three decimals, and this project keeps amounts with two"
    with pytest.raises(UnsupportedCurrency, match=message):
        from_minor(5120, currency)
    with pytest.raises(UnsupportedCurrency, match=message):
        to_minor(Decimal("5.12"), currency)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity")])
def test_a_value_that_is_not_an_amount_is_refused(value):
    with pytest.raises(AmountError, match="is not an amount of money"):
        to_minor(value, "usd")


@pytest.mark.parametrize("units", [5.0, "500", True])
def test_only_an_integer_is_read_as_stripes_amount(units):
    with pytest.raises(AmountError, match="Stripe amounts are integers"):
        from_minor(units, "usd")


def test_what_is_converted_is_shown_as_the_same_amount():
    assert format_money(from_minor(500, "jpy"), "jpy") == "¥500"
    assert format_money(from_minor(150000, "krw"), "krw") == "₩150,000"
    assert format_money(from_minor(1050, "usd"), "usd") == "$10.50"
