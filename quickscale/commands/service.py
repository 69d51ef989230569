"""`quickscale generate-service`: write a new service module and its test into a project.

The sources are `quickscale/service_templates/<type>.py` and `test_template.py`
(`test_template_llm.py` for an LLM service), valid Python with the placeholder name
`service_template_name`. The new module goes to `services/custom/<name>.py`, an LLM
service's to `llm/custom/<name>.py` (the llm app sits above services, so its
services live in it), with its test beside the app's tests. Every start of the project's web server
discovers it and creates its `Service` row from the class's defaults, so it is
live once a web server starts from the new code: right away where the server
reloads on code changes, else after `quickscale restart` or the next `up`.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from pathlib import Path

from quickscale.errors import USAGE_EXIT_CODE, QuickScaleError
from quickscale.project import Project
from quickscale.runtime.base import ServiceState

TEMPLATES = Path(__file__).resolve().parent.parent / "service_templates"
PLACEHOLDER = "service_template_name"
CLASS_PLACEHOLDER = "ServiceTemplateName"
NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,99}$")
# Names the project already uses for modules or services of its own.
RESERVED = frozenset(
    {
        "text_sentiment_analysis",
        "image_metadata_extractor",
        "demo_free_service",
        "text_summarizer",
        "batch_sentiment_analysis",
        "structured_extraction",
    }
)


class ServiceType(StrEnum):
    basic = "basic"
    text_processing = "text_processing"
    image_processing = "image_processing"
    data_validation = "data_validation"
    llm = "llm"


# Where each type's module and test go (app folder, tests folder); others: services.
FOLDERS = {ServiceType.llm: ("llm/custom", "llm/tests")}
DEFAULT_FOLDERS = ("services/custom", "services/tests")
# Every folder a service module may be in: a name is taken in any of them.
MODULE_FOLDERS = ("services/custom", "services/defaults", "llm/custom", "llm/defaults")


def folders(service_type: ServiceType) -> tuple[str, str]:
    """The project folders of a service of ``service_type``: its module's, its test's."""
    return FOLDERS.get(service_type, DEFAULT_FOLDERS)


GOOD_INPUTS = {
    ServiceType.basic: '{"text": "Hello world. Nice to meet you."}',
    ServiceType.text_processing: '{"text": "Hello world. Nice to meet you."}',
    ServiceType.image_processing: '{"image": _png()}',
    ServiceType.data_validation: '{"record": \'{"name": "Ada", "email": "ada@example.com"}\'}',
    ServiceType.llm: '{"text": "Ada Lovelace wrote the first program in 1843."}',
}
BAD_INPUTS = {
    ServiceType.basic: '{"text": ""}',
    ServiceType.text_processing: '{"text": "\\x00binary"}',
    ServiceType.image_processing: '{"image": b"not an image"}',
    ServiceType.data_validation: '{"record": "[1, 2]"}',
    ServiceType.llm: '{"text": "   "}',
}


@dataclass(frozen=True)
class GeneratedService:
    """What `generate` wrote."""

    name: str
    module: Path
    test: Path


def _usage(message: str) -> QuickScaleError:
    return QuickScaleError(message, exit_code=USAGE_EXIT_CODE)


def validate_service_name(project: Project, name: str) -> None:
    """Refuse a name that is not a lowercase identifier, is a keyword, or is taken."""
    if not NAME_PATTERN.match(name):
        raise _usage(
            f"{name!r} is not a valid service name. Use lowercase letters, digits and _, "
            "starting with a letter, e.g. my_service."
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise _usage(f"{name!r} is a Python keyword. Choose another name, e.g. {name}_service.")
    taken = name in RESERVED or any(
        (project.root / folder / f"{name}.py").exists() for folder in MODULE_FOLDERS
    )
    if taken:
        raise _usage(f"A service named {name!r} already exists. Choose another name.")


def _cost(value: str) -> Decimal:
    try:
        cost = Decimal(value)
    except InvalidOperation:
        raise _usage(f"--credit-cost {value!r} is not a number, e.g. 1.5.") from None
    if not cost.is_finite() or cost < 0 or cost != cost.quantize(Decimal("0.01")):
        raise _usage(f"--credit-cost {value!r} must be 0 or positive with at most 2 decimals.")
    return cost.quantize(Decimal("0.01"))


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) or "Service"


def display_name(name: str) -> str:
    """The title pages show for a new service: ``word_magic`` -> ``Word magic`` (edit it freely)."""
    return " ".join(name.replace("_", " ").split()).capitalize() or name


def _render(source: str, *, name: str, cost: Decimal | None, description: str | None) -> str:
    lines = []
    for line in source.replace(CLASS_PLACEHOLDER, _class_name(name)).splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if cost is not None and line.endswith("# quickscale:cost"):
            line = f'{indent}default_credit_cost = Decimal("{cost}")'
        elif description is not None and line.endswith("# quickscale:description"):
            line = f"{indent}description = {json.dumps(description)}"
        elif line.endswith("# quickscale:display-name"):
            line = f"{indent}display_name = {json.dumps(display_name(name))}"
        elif line.endswith("  # quickscale:cost") or line.endswith("  # quickscale:description"):
            line = line.rsplit("  # quickscale:", 1)[0]
        lines.append(line)
    return "\n".join(lines).replace(PLACEHOLDER, name) + "\n"


def _render_test(service_type: ServiceType, name: str) -> str:
    lines = []
    template = "test_template_llm.py" if service_type is ServiceType.llm else "test_template.py"
    for line in (TEMPLATES / template).read_text().splitlines():
        if line.endswith("# quickscale:good-input"):
            line = f"GOOD_INPUT: dict[str, Any] = {GOOD_INPUTS[service_type]}"
        elif line.endswith("# quickscale:bad-input"):
            line = f"BAD_INPUT: dict[str, Any] = {BAD_INPUTS[service_type]}"
        lines.append(line)
    return "\n".join(lines).replace(PLACEHOLDER, name) + "\n"


def generate(
    project: Project,
    name: str,
    service_type: ServiceType,
    *,
    credit_cost: str | None = None,
    description: str | None = None,
) -> GeneratedService:
    """Write `services/custom/<name>.py` (an LLM service: `llm/custom/`) and its test.

    Nothing is written on any refusal.
    """
    validate_service_name(project, name)
    if service_type is ServiceType.llm and credit_cost is not None:
        raise _usage(
            "An LLM service is priced per token, not per call: set its prices per 1,000 "
            "input and output tokens in the generated LLMDefaults (or later in the admin)."
        )
    cost = None if credit_cost is None else _cost(credit_cost)
    module_folder, test_folder = folders(service_type)
    custom = project.root / module_folder
    tests = project.root / test_folder
    if not custom.is_dir() or not tests.is_dir():
        app = module_folder.split("/")[0]
        raise QuickScaleError(
            f"{custom} or {tests} is missing: this project has no {app} app. "
            "Rebuild it with a current QuickScale."
        )
    module = custom / f"{name}.py"
    test = tests / f"test_custom_{name}.py"
    if test.exists():
        raise _usage(f"{test} already exists. Choose another name or delete that test.")
    source = (TEMPLATES / f"{service_type.value}.py").read_text()
    module_text = _render(source, name=name, cost=cost, description=description)
    test_text = _render_test(service_type, name)
    module.write_text(module_text)
    try:
        test.write_text(test_text)
    except OSError:
        module.unlink(missing_ok=True)
        raise
    return GeneratedService(name=name, module=module, test=test)


class Activation(Enum):
    """How a service just written becomes live in the project."""

    RELOADED = "The web server reloads on code changes: the service is live in a few seconds."
    RESTART = (
        "The web server runs without reload (production settings, or Docker's image): "
        "make the service live with: quickscale restart"
    )
    NEXT_UP = "The project is stopped: the service is live from the next: quickscale up"
    UNKNOWN = (
        "Whether the project runs could not be checked. The service is live after: "
        "quickscale restart"
    )


def activation(project: Project) -> Activation:
    """Whether the running project picks up a new service by itself, needs a restart, or neither."""
    from quickscale.commands.lifecycle import runtime_for

    runtime = runtime_for(project)
    try:
        if runtime.reloads_code():
            return Activation.RELOADED
        statuses = runtime.status()
    except QuickScaleError:
        return Activation.UNKNOWN
    running = any(row.name == "web" and row.state is ServiceState.RUNNING for row in statuses)
    return Activation.RESTART if running else Activation.NEXT_UP
