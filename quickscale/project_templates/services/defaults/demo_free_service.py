"""A free service that counts words and characters: shows the framework at no cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.base import BaseService
from services.registry import register_service
from services.validation import clean_text, only_fields
from users.models import CustomUser


@register_service("demo_free_service")
class DemoFreeService(BaseService):
    """Count the words, characters and lines of a text."""

    display_name = "Word counter"
    icon = "hash"
    default_credit_cost = Decimal("0.00")
    description = "Free demo: word, character and line counts of a text."

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {"text"})
        return {"text": clean_text(inputs.get("text"))}

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        text: str = kwargs["text"]
        return {
            "words": len(text.split()),
            "characters": len(text),
            "characters_without_spaces": sum(1 for char in text if not char.isspace()),
            "lines": len(text.splitlines()),
        }
