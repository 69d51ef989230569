"""``loads_bounded``: JSON from outside, with nesting depth and numbers bounded."""

import json
import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.json_input import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    JsonInputError,
    loads_bounded,
    nesting_depth,
)


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + "0" + closer * depth


def test_a_hundred_thousand_levels_are_refused_without_recursing():
    limit = sys.getrecursionlimit()
    with pytest.raises(JsonInputError, match=f"deeper than {MAX_DEPTH}"):
        loads_bounded(nested(100_000).encode())
    assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")])
def test_the_bound_itself_is_accepted_and_one_more_level_refused(opener, closer):
    assert loads_bounded(nested(MAX_DEPTH, opener, closer)) is not None
    with pytest.raises(JsonInputError):
        loads_bounded(nested(MAX_DEPTH + 1, opener, closer))


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"text": "[[[[{{{{" * 1000, "escaped": '\\"[[[[\\\\', "more": "]]]]"})
    assert loads_bounded(text)["text"].startswith("[[[[")


def test_an_escaped_quote_does_not_end_a_string():
    # If the scanner took \" for the end of the string, the brackets would count.
    text = '["\\"' + "[" * (MAX_DEPTH + 5) + '"]'
    assert loads_bounded(text) == ['"' + "[" * (MAX_DEPTH + 5)]


def test_an_unterminated_string_full_of_escaped_quotes_is_refused_as_not_json():
    with pytest.raises(JsonInputError, match="not valid JSON"):
        loads_bounded('["' + '\\"' * 200_000)


@pytest.mark.parametrize(
    "text",
    ["1e400", "-1e400", '{"n": 1e400}', "NaN", "Infinity", "-Infinity", '{"n": [NaN]}'],
)
def test_numbers_that_are_not_finite_are_refused(text):
    with pytest.raises(JsonInputError):
        loads_bounded(text)


def test_integers_longer_than_the_bound_are_refused():
    assert loads_bounded("9" * MAX_INT_DIGITS) == int("9" * MAX_INT_DIGITS)
    assert loads_bounded("-" + "9" * MAX_INT_DIGITS) == -int("9" * MAX_INT_DIGITS)
    with pytest.raises(JsonInputError, match="digits"):
        loads_bounded("9" * (MAX_INT_DIGITS + 1))


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b"{not json", b"", b'{"a": 1} trailing'])
def test_text_that_is_not_utf8_json_is_refused(raw):
    with pytest.raises(JsonInputError):
        loads_bounded(raw)


def test_the_error_is_a_value_error_so_existing_handlers_catch_it():
    assert issubclass(JsonInputError, ValueError)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


@given(json_values)
def test_json_within_bounds_parses_exactly_as_json_loads_does(value):
    text = json.dumps(value)
    assert nesting_depth(text) == depth_of(value)
    parsed = loads_bounded(text.encode())
    assert json.dumps(parsed) == json.dumps(json.loads(text))


def test_floats_keep_their_value():
    assert math.isclose(loads_bounded("1.5e300"), 1.5e300)
    assert loads_bounded("1e-400") == 0.0
