"""The API's request-body parser: django-ninja's, with JSON depth and numbers bounded."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from ninja.parser import Parser

from common.json_input import loads_bounded


class BoundedJsonParser(Parser):
    """Parse JSON bodies with ``loads_bounded``.

    django-ninja turns any error raised here into its "cannot parse" 400, which
    ``api/errors.py`` answers as a 422 naming the reason.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return cast(dict[str, Any], loads_bounded(request.body))
