"""Input checks shared by services: each raises ``ServiceInputError`` for one field."""

from __future__ import annotations

from typing import Any

from services.exceptions import ServiceInputError

MAX_TEXT_CHARS = 20_000
# A batch of texts (batch_sentiment_analysis): how many, how long each, how long in all.
MAX_BATCH_TEXTS = 500
MAX_BATCH_TEXT_CHARS = 2_000
MAX_BATCH_CHARS = 200_000
# Control characters other than tab, newline and carriage return mean binary data.
_BINARY_CHARS = frozenset(chr(code) for code in range(32) if chr(code) not in "\t\n\r") | {"\x7f"}

# What ``clean_text`` accepts, as JSON Schema keywords for the API's published
# schema: a character that is neither white space (str.isspace) nor binary,
# with only white space before it and no binary character anywhere. Written
# so that no regex engine backtracks more than linearly, and so that Python's
# re and ECMA-262 (JSON Schema's dialect) read it alike.
_SPACE = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BINARY = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
TEXT_PATTERN = rf"^[{_SPACE}]*[^{_SPACE}{_BINARY}][^{_BINARY}]*$"
TEXT_JSON_SCHEMA: dict[str, Any] = {
    "minLength": 1,
    "maxLength": MAX_TEXT_CHARS,
    "pattern": TEXT_PATTERN,
    "description": (
        f"Readable text: 1 to {MAX_TEXT_CHARS} characters, not only white space, "
        "no control characters other than tab, line feed and carriage return."
    ),
}


def clean_text(value: Any, *, field: str = "text", max_chars: int = MAX_TEXT_CHARS) -> str:
    """Return ``value`` if it is non-empty readable text of at most ``max_chars`` characters."""
    if not isinstance(value, str):
        raise ServiceInputError.for_field(field, "Send the text as a string.")
    if not value.strip():
        raise ServiceInputError.for_field(field, "The text is empty. Send some words.")
    if len(value) > max_chars:
        raise ServiceInputError.for_field(
            field, f"The text has {len(value)} characters; the limit is {max_chars}."
        )
    if not _BINARY_CHARS.isdisjoint(value):
        raise ServiceInputError.for_field(
            field, "The text contains binary data (control characters). Send plain text."
        )
    return value


def clean_text_list(
    value: Any,
    *,
    field: str = "texts",
    max_items: int = MAX_BATCH_TEXTS,
    max_chars: int = MAX_BATCH_TEXT_CHARS,
    max_total_chars: int = MAX_BATCH_CHARS,
) -> list[str]:
    """Return a list of readable texts from a list of strings or one string, one text a line.

    Blank lines of a string are skipped (a pasted list often ends with one);
    each item of a list must be a text. Refuses an empty batch, more than
    ``max_items`` texts, and more than ``max_total_chars`` characters in all.
    """
    if isinstance(value, str):
        if len(value) > max_total_chars:
            raise ServiceInputError.for_field(
                field, f"The texts have {len(value)} characters; the limit is {max_total_chars}."
            )
        items: list[Any] = [line for line in value.splitlines() if line.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ServiceInputError.for_field(
            field, "Send the texts as a list of strings, or as one string with a text per line."
        )
    if not items:
        raise ServiceInputError.for_field(field, "There are no texts. Send at least one.")
    if len(items) > max_items:
        raise ServiceInputError.for_field(
            field, f"There are {len(items)} texts; the limit is {max_items} per batch."
        )
    texts: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            texts.append(clean_text(item, field=field, max_chars=max_chars))
        except ServiceInputError as error:
            raise ServiceInputError.for_field(field, f"Text {number}: {error.message}") from None
    total = sum(len(text) for text in texts)
    if total > max_total_chars:
        raise ServiceInputError.for_field(
            field, f"The texts have {total} characters; the limit is {max_total_chars}."
        )
    return texts


def clean_int(value: Any, *, field: str, default: int, low: int, high: int) -> int:
    """Return ``value`` as an int between ``low`` and ``high`` (``default`` when missing)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ServiceInputError.for_field(field, f"Send a whole number from {low} to {high}.")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        # OverflowError: int() of an infinite float; ValueError: of NaN or non-digits.
        raise ServiceInputError.for_field(
            field, f"Send a whole number from {low} to {high}."
        ) from None
    if not low <= number <= high or (isinstance(value, float) and value != number):
        raise ServiceInputError.for_field(field, f"Send a whole number from {low} to {high}.")
    return number


def only_fields(inputs: dict[str, Any], allowed: set[str]) -> None:
    """Refuse fields a service does not know, so typos do not pass silently."""
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        raise ServiceInputError(
            f"Unknown input field(s): {', '.join(unknown)}.",
            details={name: ["This field is not an input of this service."] for name in unknown},
        )
