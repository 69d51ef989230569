"""Stripe's integer amounts and this project's ``Decimal`` amounts, converted per currency.

Stripe writes every amount (``unit_amount``, ``amount_total``, ``amount_paid``,
a refund's ``amount`` ...) as an integer count of the currency's *minor unit*,
and the minor unit is not always a cent (https://docs.stripe.com/currencies):

- Zero-decimal currencies (JPY, KRW, ... the list ``common.formatting`` also
  shows them by): the integer is the amount itself. ``unit_amount=500`` in
  JPY is ¥500, not ¥5.00.
- Three-decimal currencies (BHD, JOD, KWD, OMR, TND): the integer counts
  thousandths, and Stripe wants its last digit to be 0. This project refuses
  them (``UnsupportedCurrency``): its amounts are stored and shown with two
  places, so a price of 5.125 KWD could not be held exactly. The catalog sync
  and ``stripe_check`` name such a price (``gateway.price_currency``) before it
  can be sold; an event in one fails loudly rather than record a wrong amount.
- Every other currency has two decimals, including Stripe's special cases:
  ISK is kept two-decimal in the API for compatibility, but only whole krónur
  can be charged (amounts in multiples of 100), so ``to_minor`` refuses a
  fraction of a króna; HUF and TWD are whole units for payouts only, which
  this project never makes, so their charges stay two-decimal.

``to_minor`` never rounds: an amount that is not a whole number of the minor
unit (¥12.50) raises ``AmountError``, since rounding money silently charges or
refunds someone a different sum than the one asked.
"""

from __future__ import annotations

from decimal import Decimal

from common.formatting import currency_places

# Stripe's three-decimal currencies (refused here, see the module docstring).
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Two-decimal in Stripe's API, yet chargeable in whole units only: the minor units per unit.
WHOLE_UNITS_ONLY = {"isk": 100}


class AmountError(ValueError):
    """An amount Stripe's integer for its currency cannot carry exactly; the message says why."""


class UnsupportedCurrency(AmountError):
    """A currency whose amounts this project cannot store exactly (three-decimal ones)."""


def exponent(currency: str) -> int:
    """How many decimals ``currency``'s minor unit has in Stripe's API: 0 or 2.

    Raises ``UnsupportedCurrency`` for a three-decimal currency.
    """
    code = currency.lower()
    if code in THREE_DECIMAL_CURRENCIES:
        raise UnsupportedCurrency(
            f"{code.upper()} amounts have three decimals, and this project keeps amounts "
            f"with two, so it cannot sell in {code.upper()}."
        )
    return currency_places(code)


def from_minor(units: int, currency: str) -> Decimal:
    """Stripe's integer ``units`` of ``currency`` as an amount: 1050 USD is 10.50, 500 JPY 500."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise AmountError(f"Stripe amounts are integers, not {units!r}.")
    return Decimal(units).scaleb(-exponent(currency))


def to_minor(amount: Decimal | int, currency: str) -> int:
    """``amount`` of ``currency`` as Stripe's integer: 10.50 USD is 1050, ¥500 is 500.

    Raises ``AmountError`` for an amount that is not a whole number of the
    currency's minor unit (¥12.50, $0.005) or, for ISK, of krónur.
    """
    code = currency.lower()
    value = Decimal(amount)
    if not value.is_finite():
        raise AmountError(f"{amount!r} is not an amount of money.")
    places = exponent(code)
    units = value.scaleb(places)
    if units != units.to_integral_value():
        smallest = "whole units" if places == 0 else f"at most {places} decimals"
        raise AmountError(
            f"{value} {code.upper()} is not a whole number of its smallest unit "
            f"({code.upper()} amounts have {smallest}); nothing was rounded."
        )
    step = WHOLE_UNITS_ONLY.get(code, 1)
    if units % step:
        raise AmountError(
            f"{value} {code.upper()} has a fraction, and Stripe charges and refunds "
            f"{code.upper()} in whole units only; nothing was rounded."
        )
    return int(units)
