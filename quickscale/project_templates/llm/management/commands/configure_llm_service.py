"""`manage.py configure_llm_service`: show or change an LLM service's provider, model and prices.

configure_llm_service structured_extraction                       show it
configure_llm_service structured_extraction --provider anthropic --model claude-sonnet-4-5
configure_llm_service my_llm --input-price 0.05 --output-price 0.2 --max-tokens-cap 2000
configure_llm_service my_llm --json-schema-file schema.json       (--no-json-schema: free text)

Its cost per call and on/off state stay with ``configure_service``. Every change is
validated as the admin validates it (a JSON Schema that is not valid JSON Schema,
a default above the cap...): a refused change writes nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from llm.models import LLMServiceConfig
from llm.service import LLMService
from services.exceptions import UnknownService
from services.models import Service
from services.registry import create_service_instance

# option name -> model field, for the plain values.
TEXT_OPTIONS = {"provider": "provider", "model": "model", "system_prompt": "system_prompt"}
INT_OPTIONS = {
    "max_tokens": "max_tokens",
    "max_tokens_cap": "max_tokens_cap",
    "context_window": "context_window",
    "max_input_chars": "max_input_chars",
}
DECIMAL_OPTIONS = {
    "temperature": "temperature",
    "input_price": "input_price_per_1k",
    "output_price": "output_price_per_1k",
}


def _decimal(option: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--{option.replace('_', '-')} {value!r} is not a number.") from None
    if not number.is_finite():
        raise CommandError(f"--{option.replace('_', '-')} must be a finite number.")
    return number


class Command(BaseCommand):
    help = "Show or change an LLM service's provider, model, limits, prices and prompt."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The LLM service's registered name.")
        parser.add_argument("--provider", choices=[c.value for c in LLMServiceConfig.Provider])
        parser.add_argument("--model", help="The provider's model name.")
        parser.add_argument("--temperature", help="0 to 2 (OpenAI-compatible models).")
        parser.add_argument("--max-tokens", type=int, help="Default output tokens per call.")
        parser.add_argument("--max-tokens-cap", type=int, help="Most output tokens per call.")
        parser.add_argument("--context-window", type=int, help="The model's context, tokens.")
        parser.add_argument("--max-input-chars", type=int, help="Longest input text accepted.")
        parser.add_argument("--input-price", help="Credits per 1,000 input tokens.")
        parser.add_argument("--output-price", help="Credits per 1,000 output tokens.")
        parser.add_argument("--system-prompt", help="The system prompt.")
        parser.add_argument("--prompt-template-file", help="A file holding the prompt template.")
        schema = parser.add_mutually_exclusive_group()
        schema.add_argument("--json-schema-file", help="A file holding the reply's JSON Schema.")
        schema.add_argument(
            "--no-json-schema", action="store_true", help="Free-text replies (no schema)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        try:
            service = create_service_instance(name)
        except UnknownService as error:
            raise CommandError(str(error)) from None
        if not isinstance(service, LLMService):
            raise CommandError(f"{name!r} is not an LLM service; use configure_service.")
        if not Service.objects.filter(name=name).exists():
            raise CommandError(f"{name!r} has no Service row yet: run bootstrap first.")
        changes = self._changes(options)
        with transaction.atomic():
            config = service.llm_config()
            config = LLMServiceConfig.objects.select_for_update().get(pk=config.pk)
            for field, value in changes.items():
                setattr(config, field, value)
            if changes:
                try:
                    config.save()
                except ValidationError as error:
                    problems = "; ".join(
                        f"{field}: {' '.join(messages)}"
                        for field, messages in error.message_dict.items()
                    )
                    raise CommandError(f"Refused, nothing changed. {problems}") from None
        verb = "Updated" if changes else "Current"
        self.stdout.write(f"{verb} {name}: {config.provider} {config.model}")
        self.stdout.write(
            f"  credits per 1,000 tokens: input {config.input_price_per_1k}, "
            f"output {config.output_price_per_1k}"
        )
        self.stdout.write(
            f"  max_tokens {config.max_tokens} (cap {config.max_tokens_cap}), context "
            f"{config.context_window}, input up to {config.max_input_chars} characters, "
            f"temperature {config.temperature}"
        )
        schema = "none (free text)" if config.json_schema is None else "set"
        self.stdout.write(f"  JSON schema: {schema}")
        problem = service.setup_problem()
        if problem:
            self.stdout.write(self.style.WARNING(problem))

    def _changes(self, options: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for option, field in TEXT_OPTIONS.items():
            if options[option] is not None:
                changes[field] = options[option]
        for option, field in INT_OPTIONS.items():
            if options[option] is not None:
                changes[field] = options[option]
        for option, field in DECIMAL_OPTIONS.items():
            if options[option] is not None:
                changes[field] = _decimal(option, options[option])
        if options["prompt_template_file"]:
            changes["prompt_template"] = self._read(options["prompt_template_file"])
        if options["no_json_schema"]:
            changes["json_schema"] = None
        elif options["json_schema_file"]:
            text = self._read(options["json_schema_file"])
            try:
                changes["json_schema"] = json.loads(text)
            except json.JSONDecodeError as error:
                raise CommandError(f"The JSON schema file is not JSON: {error}.") from None
        return changes

    @staticmethod
    def _read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
