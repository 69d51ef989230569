"""How pages present a service: title and icon, result parts, "use it from code" snippets.

Pages hold a ``Service`` row or a service's name; the title and icon are the
registered class's (``BaseService.title`` / ``symbol``), or derived from the
name for a row whose class is gone (a removed custom service in old history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms

from services.base import DEFAULT_ICON, BaseService, service_title
from services.registry import registered_services

API_KEY_PLACEHOLDER = "YOUR_API_KEY"
EXAMPLE_TEXT = "I love how simple this is."


def title_of(name: str) -> str:
    """The title pages show for the service registered as ``name``."""
    cls = registered_services().get(name)
    return cls.title() if cls is not None else service_title(name)


def ledger_label(description: str) -> str | None:
    """A credit history's words for an entry described by a service's name (its title).

    Registered with ``credits.labels``: a call's ledger entry stores the name, an
    identifier; the history shows the title. None for any other description.
    """
    cls = registered_services().get(description)
    return cls.title() if cls is not None else None


def icon_of(name: str) -> str:
    """The icon pages show for the service registered as ``name``."""
    cls = registered_services().get(name)
    return cls.symbol() if cls is not None else DEFAULT_ICON


def field_label(key: str) -> str:
    """A result's key as a label: ``size_bytes`` -> ``Size bytes``."""
    return service_title(str(key))


@dataclass(frozen=True)
class CodeSnippets:
    """How to call one service from code: its API address, a curl command and a Python script."""

    endpoint: str
    curl: str
    python: str


def _example_inputs(form: forms.Form) -> tuple[dict[str, Any], dict[str, str]]:
    """Example JSON inputs and file fields for a service's form."""
    values: dict[str, Any] = {}
    files: dict[str, str] = {}
    for name, field in form.base_fields.items():
        if isinstance(field, forms.FileField):
            files[name] = "photo.jpg"
        elif isinstance(field, forms.IntegerField):
            values[name] = field.initial if isinstance(field.initial, int) else 1
        elif isinstance(field, forms.BooleanField):
            values[name] = True
        elif name == "texts":
            values[name] = f"{EXAMPLE_TEXT}\nThis took far too long."
        else:
            values[name] = EXAMPLE_TEXT
    return values, files


def python_literal(value: Any) -> str:
    """``value`` (JSON data) as Python source: ``"strings"``, ``True``, ``False``, ``None``."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, dict):
        items = (f"{python_literal(str(k))}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def code_snippets(service: type[BaseService], endpoint: str) -> CodeSnippets:
    """curl and Python calls of ``service`` at ``endpoint`` (its absolute run address)."""
    values, files = _example_inputs(service.form_class())
    if service.example_input is not None:
        values = dict(service.example_input)
    auth = f"Authorization: Bearer {API_KEY_PLACEHOLDER}"
    if files:
        form_lines = [f'  -F "{name}=@{path}"' for name, path in files.items()]
        form_lines += [f'  -F "{name}={value}"' for name, value in values.items()]
        curl = " \\\n".join([f"curl -X POST {endpoint}", f'  -H "{auth}"', *form_lines])
        opened = ", ".join(f'"{name}": open("{path}", "rb")' for name, path in files.items())
        data = f"\n    data={python_literal(values)}," if values else ""
        python = (
            "import requests\n\n"
            "response = requests.post(\n"
            f'    "{endpoint}",\n'
            f'    headers={{"Authorization": "Bearer {API_KEY_PLACEHOLDER}"}},\n'
            f"    files={{{opened}}},{data}\n"
            "    timeout=60,\n"
            ")\n"
            "response.raise_for_status()\n"
            'print(response.json()["data"])\n'
        )
        return CodeSnippets(endpoint=endpoint, curl=curl, python=python)
    body = json.dumps({"input": values}, ensure_ascii=False)
    curl = " \\\n".join(
        [
            f"curl -X POST {endpoint}",
            f'  -H "{auth}"',
            '  -H "Content-Type: application/json"',
            f"  -d '{body.replace(chr(39), chr(39) + chr(92) + chr(39) + chr(39))}'",
        ]
    )
    python = (
        "import requests\n\n"
        "response = requests.post(\n"
        f'    "{endpoint}",\n'
        f'    headers={{"Authorization": "Bearer {API_KEY_PLACEHOLDER}"}},\n'
        f"    json={python_literal({'input': values})},\n"
        "    timeout=60,\n"
        ")\n"
        "response.raise_for_status()\n"
        'print(response.json()["data"])\n'
    )
    return CodeSnippets(endpoint=endpoint, curl=curl, python=python)
