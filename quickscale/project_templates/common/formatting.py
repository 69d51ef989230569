"""The one way amounts of money and credits are written, on pages, in emails and in messages.

Money: the currency's symbol where it is unambiguous (``$1,234.50``, ``€9.00``,
``¥1,200``), else its code (``CHF 12.00``); thousands separators; two decimals,
or none for the currencies Stripe counts in whole units (JPY, KRW, ...).
Credits: thousands separators and no decimals unless the amount has a fraction
(``2,000``, ``0.5``, ``0.0015``): a credit is a count, not a price.

Both take ``Decimal``, ``int``, ``float`` or a numeric string (a float goes through
``str`` so ``0.1`` stays ``0.1``). A value that is not a number is returned as text
unchanged rather than raising, so a page never fails on a display detail.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Stripe's zero-decimal currencies: amounts are whole units, never shown with cents.
# https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
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
    }
)

# Only symbols one currency owns in practice; "$" alone means USD (the catalog's
# default), other dollars keep their code ("CAD 10.00") so nobody reads them as USD.
CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def _to_decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def currency_places(currency: str) -> int:
    """How many decimals ``currency`` (an ISO code, any case) is shown with."""
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def _as_text(value: object) -> str:
    return "" if value is None else str(value)


def format_money(value: object, currency: str = "usd", *, max_places: int | None = None) -> str:
    """``value`` in ``currency`` as a person reads it: ``$1,234.50``, ``-$5.00``, ``CHF 12.00``.

    ``max_places`` lets a unit price keep the decimals that matter (``$0.0025`` per
    credit with 4) while never showing fewer than the currency's own.
    """
    number = _to_decimal(value)
    if number is None:
        return _as_text(value)
    code = (currency or "usd").lower()
    places = currency_places(code)
    if max_places is not None and max_places > places:
        exponent = number.normalize().as_tuple().exponent
        wanted = -exponent if isinstance(exponent, int) else places
        places = min(max(places, wanted), max_places)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    digits = f"{abs(rounded):,.{places}f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{code.upper()} {digits}"


def format_credits(value: object) -> str:
    """A number of credits: ``2,000``, ``1,234.5``, ``0.0015``, ``-3``; never ``600.00``."""
    number = _to_decimal(value)
    if number is None:
        return _as_text(value)
    if number == 0:
        return "0"  # not "-0"
    if number == number.to_integral_value():
        return f"{number.to_integral_value():,f}"
    normal = number.normalize()
    exponent = normal.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else 2
    return f"{normal:,.{places}f}"


def format_credit_count(value: object) -> str:
    """``1 credit``, ``2,000 credits``, ``0.5 credits``: the number with its unit."""
    text = format_credits(value)
    number = _to_decimal(value)
    return f"{text} credit" if number is not None and abs(number) == 1 else f"{text} credits"
