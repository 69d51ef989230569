"""The money and credit formatters, in Python and as template filters."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from common.formatting import format_credit_count, format_credits, format_money


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("0"), "usd", "$0.00"),
        (Decimal("10.0"), "usd", "$10.00"),
        (Decimal("10.00"), "USD", "$10.00"),
        (Decimal("1234567.5"), "usd", "$1,234,567.50"),
        (Decimal("-5"), "usd", "-$5.00"),  # a refund shown as a negative amount
        (Decimal("-0.001"), "usd", "$0.00"),  # rounds to zero: no "-$0.00"
        (Decimal("0.005"), "usd", "$0.01"),  # half up, as money is rounded
        (Decimal("9.99"), "eur", "€9.99"),
        (Decimal("1200"), "jpy", "¥1,200"),  # zero-decimal currency: no cents
        (Decimal("1200.4"), "krw", "₩1,200"),
        (Decimal("12"), "chf", "CHF 12.00"),  # no owned symbol: the code
        (Decimal("10"), "cad", "CAD 10.00"),  # never "$", which reads as USD
        (10, "usd", "$10.00"),
        (0.1, "usd", "$0.10"),
        ("19.9", "gbp", "£19.90"),
    ],
)
def test_money_has_its_currency_two_decimals_and_separators(value, currency, expected):
    assert format_money(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.0300"), "$0.03"),
        (Decimal("0.0025"), "$0.0025"),
        (Decimal("0.12345"), "$0.1235"),
        (Decimal("2"), "$2.00"),
    ],
)
def test_unit_prices_keep_up_to_four_decimals_and_at_least_the_currencys(value, expected):
    assert format_money(value, "usd", max_places=4) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "0"),
        (Decimal("0.00"), "0"),
        (Decimal("-0.00"), "0"),
        (Decimal("600.00"), "600"),
        (Decimal("2000"), "2,000"),
        (Decimal("1234.50"), "1,234.5"),
        (Decimal("0.25"), "0.25"),
        (Decimal("0.0015"), "0.0015"),  # an LLM price per 1,000 tokens
        (Decimal("-496.00"), "-496"),  # a refund or an expiry taking credits
        (Decimal("1E+3"), "1,000"),  # exponent form from normalize()
        (Decimal("12345678901.25"), "12,345,678,901.25"),
        (3, "3"),
        (2.5, "2.5"),
    ],
)
def test_credits_have_no_decimals_unless_fractional(value, expected):
    assert format_credits(value) == expected


def test_credit_count_names_the_unit_in_singular_and_plural():
    assert format_credit_count(Decimal("1.00")) == "1 credit"
    assert format_credit_count(Decimal("-1")) == "-1 credit"
    assert format_credit_count(Decimal("2000")) == "2,000 credits"
    assert format_credit_count(Decimal("0.5")) == "0.5 credits"


@pytest.mark.parametrize("value", [None, "", "n/a", Decimal("NaN"), Decimal("Infinity")])
def test_values_that_are_not_numbers_are_shown_as_they_are(value):
    shown = "" if value is None else str(value)
    assert format_credits(value) == shown
    assert format_money(value, "usd") == shown


def test_template_filters_use_the_same_formatters():
    template = Template(
        "{% load formatting %}{{ amount|money:currency }} | {{ amount|money }} | "
        "{{ per|unit_price:currency }} | {{ balance|credits }} | {{ lot|credit_count }}"
    )
    html = template.render(
        Context(
            {
                "amount": Decimal("1234.5"),
                "currency": "eur",
                "per": Decimal("0.0300"),
                "balance": Decimal("2000.00"),
                "lot": Decimal("1"),
            }
        )
    )
    assert html == "€1,234.50 | $1,234.50 | €0.03 | 2,000 | 1 credit"
