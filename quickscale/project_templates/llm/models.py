"""``LLMServiceConfig``: which provider and model an LLM service calls, its limits and prices.

One row per LLM service (a ``services.Service`` row whose class is an ``LLMService``),
created from the class's declared defaults the first time the service is used, then
the operator's: change it in the admin or with ``manage.py configure_llm_service``.

Every save is validated (``clean``), whatever the path: a structured-output schema
that is not valid JSON Schema, a prompt template with a broken placeholder, a default
``max_tokens`` above the cap or a cap that leaves no room for a prompt in the model's
context window are refused with a ``ValidationError`` and nothing is written.
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from llm.providers import PROVIDERS
from services.models import Service

PRICE_MAX_DIGITS = 12
PRICE_DECIMAL_PLACES = 4


def schema_problem(schema: Any) -> str:
    """Why ``schema`` is not a usable JSON Schema for structured output; "" when it is."""
    if not isinstance(schema, dict):
        return 'The JSON schema must be a JSON object, e.g. {"type": "object", ...}.'
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        return f"The JSON schema is not valid JSON Schema (at {where}): {error.message}"
    return ""


def template_problem(template: str) -> str:
    """Why ``template`` is not a usable prompt template; "" when it is."""
    parsed = string.Template(template)
    if not parsed.is_valid():
        return (
            "The prompt template has a broken placeholder: write $name or ${name} for an "
            "input field, and $$ for a dollar sign."
        )
    return ""


class LLMServiceConfig(models.Model):
    """How one LLM service calls its model, and what its tokens cost."""

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible (OPENAI_API_KEY / OPENAI_BASE_URL)"
        ANTHROPIC = "anthropic", "Anthropic (ANTHROPIC_API_KEY)"

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="llm_config")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=200, help_text="The provider's model name.")
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
        help_text="0 to 2 (OpenAI-compatible models; Anthropic's current API takes none).",
    )
    max_tokens = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="Output tokens allowed when the caller does not ask for a number.",
    )
    max_tokens_cap = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="The most output tokens a caller may ask for (held before the call).",
    )
    context_window = models.PositiveIntegerField(
        validators=[MinValueValidator(2)],
        help_text="The model's context window in tokens: prompt estimate + max_tokens must fit.",
    )
    max_input_chars = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="The longest input text this service accepts, in characters.",
    )
    input_price_per_1k = models.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Credits per 1,000 input (prompt) tokens.",
    )
    output_price_per_1k = models.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Credits per 1,000 output (generated) tokens.",
    )
    system_prompt = models.TextField(blank=True)
    prompt_template = models.TextField(
        help_text="The user message; $text (or ${field}) is replaced by that input field."
    )
    json_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="Optional JSON Schema the reply must validate against (structured output).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM service configuration"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_tokens__lte=models.F("max_tokens_cap")),
                name="llm_config_max_tokens_within_cap",
            ),
            models.CheckConstraint(
                condition=models.Q(input_price_per_1k__gte=0, output_price_per_1k__gte=0),
                name="llm_config_prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service.name}: {self.provider} {self.model}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Validate, then save: a bad configuration is refused on every path, not only forms."""
        self.full_clean(exclude=["service"], validate_unique=False, validate_constraints=False)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.provider not in PROVIDERS:
            errors["provider"] = f"Choose one of: {', '.join(PROVIDERS)}."
        if self.json_schema is not None and (problem := schema_problem(self.json_schema)):
            errors["json_schema"] = problem
        if problem := template_problem(self.prompt_template or ""):
            errors["prompt_template"] = problem
        if self.max_tokens and self.max_tokens_cap and self.max_tokens > self.max_tokens_cap:
            errors["max_tokens"] = (
                f"The default max_tokens ({self.max_tokens}) is above the cap "
                f"({self.max_tokens_cap})."
            )
        if (
            self.context_window
            and self.max_tokens_cap
            and self.max_tokens_cap >= self.context_window
        ):
            errors["max_tokens_cap"] = (
                f"The cap ({self.max_tokens_cap}) leaves no room for a prompt in the "
                f"context window ({self.context_window} tokens)."
            )
        if errors:
            raise ValidationError(errors)
