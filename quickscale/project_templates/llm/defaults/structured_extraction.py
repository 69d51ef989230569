"""Structured extraction: text in, JSON out that validates against a schema.

Its schema (people, organizations, places, dates, amounts and a one-line summary)
is a starting point: change it in the admin (LLM service configurations) and the
replies follow; a reply that does not validate is asked for once more, then the
call fails uncharged.
"""

from __future__ import annotations

from typing import Any

from llm.service import LLMDefaults, LLMService
from services.registry import register_service

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "people": _STRINGS,
        "organizations": _STRINGS,
        "places": _STRINGS,
        "dates": _STRINGS,
        "amounts": _STRINGS,
        "summary": {"type": "string"},
    },
    "required": ["people", "organizations", "places", "dates", "amounts", "summary"],
    "additionalProperties": False,
}


@register_service("structured_extraction")
class StructuredExtraction(LLMService):
    """Extract people, organizations, places, dates and amounts from a text, as JSON."""

    display_name = "Structured extraction"
    icon = "braces"
    description = (
        "Extracts people, organizations, places, dates and amounts from a text as JSON "
        "(an LLM; priced per token)."
    )
    llm_defaults = LLMDefaults(
        max_tokens=1024,
        system_prompt=(
            "You extract facts from documents. Answer with JSON only. List each item as "
            "written in the text, without duplicates; use empty lists for what is absent."
        ),
        prompt_template="Extract the entities of this text:\n\n$text",
        json_schema=EXTRACTION_SCHEMA,
    )
