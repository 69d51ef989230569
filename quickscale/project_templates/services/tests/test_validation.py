"""The shared input checks, and the JSON Schema rules that state them for the API."""

import re
import sys
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.exceptions import ServiceInputError
from services.validation import MAX_TEXT_CHARS, TEXT_JSON_SCHEMA, clean_int, clean_text


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        1e300,
        Decimal("Infinity"),
        Decimal("NaN"),
        "1e400",
        "9" * 5000,
        True,
    ],
    ids=[
        "inf",
        "-inf",
        "nan",
        "1e300",
        "Decimal inf",
        "Decimal nan",
        "'1e400'",
        "5000 digits",
        "bool",
    ],
)
def test_clean_int_refuses_numbers_it_cannot_use_with_a_field_error(value):
    with pytest.raises(ServiceInputError) as error:
        clean_int(value, field="count", default=3, low=1, high=10)
    assert list(error.value.details) == ["count"]


@pytest.mark.parametrize("value, expected", [(None, 3), ("", 3), (4, 4), (4.0, 4), ("7", 7)])
def test_clean_int_still_accepts_whole_numbers_in_range(value, expected):
    assert clean_int(value, field="count", default=3, low=1, high=10) == expected


def accepted_by_the_schema(text: str) -> bool:
    """What an API client validating against the schema concludes, with Python's re."""
    return (
        TEXT_JSON_SCHEMA["minLength"] <= len(text) <= TEXT_JSON_SCHEMA["maxLength"]
        and re.search(TEXT_JSON_SCHEMA["pattern"], text) is not None
    )


def accepted_by_clean_text(text: str) -> bool:
    try:
        clean_text(text)
    except ServiceInputError:
        return False
    return True


WHITE_SPACE = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
BINARY = [chr(code) for code in range(32) if chr(code) not in "\t\n\r"] + ["\x7f"]


@given(st.text(alphabet=st.sampled_from(WHITE_SPACE + BINARY) | st.characters(), max_size=40))
@example("")
@example(" \u3000\x85\n")
@example("\ufeff")
@example("word\x00")
@example("\x1c")
@example("x" * MAX_TEXT_CHARS)
@example("x" * (MAX_TEXT_CHARS + 1))
@example("  word\n")
def test_the_schema_pattern_accepts_exactly_the_texts_clean_text_accepts(text):
    assert accepted_by_the_schema(text) == accepted_by_clean_text(text)


def test_every_white_space_character_and_every_binary_one_is_refused_alone():
    for char in WHITE_SPACE + BINARY:
        assert not accepted_by_the_schema(char * 3), repr(char)
        assert not accepted_by_clean_text(char * 3), repr(char)
