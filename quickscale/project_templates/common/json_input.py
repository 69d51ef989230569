"""JSON from outside, parsed within bounds: nesting depth and numbers are checked first.

``json.loads`` recurses once per nested array or object, so a body of 100,000
``[`` raises ``RecursionError`` deep inside the parser; and ``1e400`` parses
to ``inf``, which breaks any later ``int()``. ``loads_bounded`` refuses both
with ``JsonInputError`` (a ``ValueError``) before any caller sees the data:
the depth is measured by a linear scan that never recurses, and every number
is checked as it is parsed.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

# Far above any payload this project receives (Stripe's events nest about 8
# levels), far below the depth at which json.loads would exhaust the stack.
MAX_DEPTH = 64
# 40 digits hold any 128-bit integer; more than that is no quantity anyone sends.
MAX_INT_DIGITS = 40

# A backslash and the byte after it (valid JSON has escapes only in strings).
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Each bracket as a signed byte: +1 for an opening one, -1 for a closing one.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class JsonInputError(ValueError):
    """Raised by ``loads_bounded`` for text that is not JSON, or not JSON within bounds."""


def loads_bounded(
    raw: bytes | str, *, max_depth: int = MAX_DEPTH, max_int_digits: int = MAX_INT_DIGITS
) -> Any:
    """Parse ``raw`` (UTF-8 when bytes) as JSON, refusing deep nesting and unusable numbers.

    Refused with ``JsonInputError``: text that is not UTF-8 or not JSON; arrays
    and objects nested deeper than ``max_depth``; ``NaN`` and ``Infinity``;
    numbers too large for a float (``1e400``); integers longer than
    ``max_int_digits`` digits.
    """
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise JsonInputError("The body is not UTF-8 text.") from None
    if nesting_depth(raw) > max_depth:
        raise JsonInputError(f"The JSON nests deeper than {max_depth} levels.")

    def parse_int(literal: str) -> int:
        if len(literal.lstrip("-")) > max_int_digits:
            raise JsonInputError(f"A JSON integer has more than {max_int_digits} digits.")
        return int(literal)

    try:
        return json.loads(
            text, parse_int=parse_int, parse_float=_parse_float, parse_constant=_refuse_constant
        )
    except JsonInputError:
        raise
    except ValueError as error:
        raise JsonInputError(f"The body is not valid JSON: {error}") from None


def nesting_depth(text: bytes | str) -> int:
    """Return how deep arrays and objects nest in ``text``, ignoring brackets inside strings.

    Linear and never recursive. Unbalanced text gets a best effort: this bounds
    the parser's work; it does not validate.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    # Without its escapes no string holds a quote, so the pieces between quotes
    # alternate: outside a string, inside one, outside, ... (UTF-8 encodes every
    # other character in bytes of 0x80 and above, never a quote or a bracket.)
    outside_strings = b"".join(_ESCAPE.sub(b"", raw).split(b'"')[::2])
    steps = outside_strings.translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", steps)), default=0)


def _parse_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise JsonInputError(f"The JSON number {literal[:40]} is too large.")
    return number


def _refuse_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number.")
