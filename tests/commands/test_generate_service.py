"""`quickscale generate-service`: what it writes, what it refuses, and that it writes nothing then.

That the generated code lints and its test passes inside a real project is
checked in tests/integration/test_generated_services.py (one built project).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quickscale.cli import app
from quickscale.commands.service import ServiceType, folders
from quickscale.errors import QuickScaleError
from quickscale.runtime.base import ServiceState, ServiceStatus


@pytest.fixture
def project(inside: Path) -> Path:
    """The fake project of conftest, with the services and llm apps' folders."""
    for folder in (
        "services/custom",
        "services/tests",
        "services/defaults",
        "llm/custom",
        "llm/tests",
        "llm/defaults",
    ):
        (inside / folder).mkdir(parents=True, exist_ok=True)
    (inside / "services/custom/existing_one.py").write_text("")
    return inside


def written(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for app in ("services", "llm")
        for path in (root / app).rglob("*.py")
        if path.name != "existing_one.py"
    }


@pytest.mark.parametrize("kind", [member.value for member in ServiceType])
def test_generate_service_writes_a_module_and_its_test_as_valid_python(
    runner: CliRunner, project: Path, kind: str
) -> None:
    result = runner.invoke(app, ["generate-service", "word_magic", "--type", kind])
    assert result.exit_code == 0, result.output
    module_folder, test_folder = folders(ServiceType(kind))
    module = project / module_folder / "word_magic.py"
    test = project / test_folder / "test_custom_word_magic.py"
    assert written(project) == {
        f"{module_folder}/word_magic.py",
        f"{test_folder}/test_custom_word_magic.py",
    }
    tree = ast.parse(module.read_text())
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert "WordMagic" in classes
    assert "register_service('word_magic')" in ast.unparse(tree)
    ast.parse(test.read_text())
    assert "service_template_name" not in module.read_text() + test.read_text()
    assert "quickscale manage configure_service word_magic" in result.output


def test_credit_cost_and_description_become_the_class_defaults(
    runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(
        app,
        ["generate-service", "pricey", "--credit-cost", "2.5", "--description", 'Says "hi"'],
    )
    assert result.exit_code == 0, result.output
    namespace: dict[str, object] = {}
    tree = ast.parse((project / "services/custom/pricey.py").read_text())
    service_class = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    for statement in service_class.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            namespace[statement.targets[0].id] = ast.unparse(statement.value)
    assert namespace["default_credit_cost"] == "Decimal('2.50')"
    assert namespace["description"] == "'Says \"hi\"'"


@pytest.mark.parametrize("kind", [member.value for member in ServiceType])
def test_a_generated_service_gets_a_display_name_from_its_name_and_an_icon(
    runner: CliRunner, project: Path, kind: str
) -> None:
    result = runner.invoke(app, ["generate-service", "word_magic", "--type", kind])
    assert result.exit_code == 0, result.output
    folder = folders(ServiceType(kind))[0]
    tree = ast.parse((project / folder / "word_magic.py").read_text())
    service_class = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "WordMagic"
    )
    values = {
        statement.targets[0].id: ast.literal_eval(statement.value)
        for statement in service_class.body
        if isinstance(statement, ast.Assign)
        and isinstance(statement.targets[0], ast.Name)
        and statement.targets[0].id in ("display_name", "icon")
    }
    assert values["display_name"] == "Word magic"
    assert values["icon"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        pytest.param("class", "keyword", id="keyword"),
        pytest.param("match", "keyword", id="soft keyword"),
        pytest.param("existing_one", "already exists", id="existing custom service"),
        pytest.param("text_summarizer", "already exists", id="default service"),
        pytest.param("batch_sentiment_analysis", "already exists", id="default job service"),
        pytest.param("structured_extraction", "already exists", id="default llm service"),
        pytest.param("9lives", "not a valid service name", id="starts with a digit"),
        pytest.param("../evil", "not a valid service name", id="path characters"),
        pytest.param("My-Service", "not a valid service name", id="dash and capitals"),
    ],
)
def test_bad_names_are_refused_with_exit_2_and_nothing_written(
    runner: CliRunner, project: Path, name: str, why: str
) -> None:
    result = runner.invoke(app, ["generate-service", name])
    assert result.exit_code == 2
    assert why in result.output
    assert written(project) == set()


@pytest.mark.parametrize(
    "args",
    [["--type", "video"], ["--credit-cost", "-1"], ["--credit-cost", "abc"]],
)
def test_bad_options_are_refused_with_exit_2_and_nothing_written(
    runner: CliRunner, project: Path, args: list[str]
) -> None:
    result = runner.invoke(app, ["generate-service", "fine_name", *args])
    assert result.exit_code == 2
    assert written(project) == set()


def test_an_llm_service_goes_to_the_llm_app_and_is_a_subclass_of_llm_service(
    runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(app, ["generate-service", "titler", "--type", "llm"])
    assert result.exit_code == 0, result.output
    source = (project / "llm/custom/titler.py").read_text()
    tree = ast.parse(source)
    service_class = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    assert [ast.unparse(base) for base in service_class.bases] == ["LLMService"]
    assert "llm_defaults" in ast.unparse(service_class)
    test = (project / "llm/tests/test_custom_titler.py").read_text()
    assert "fake_llm" in test and "'titler'" in ast.unparse(ast.parse(test))
    assert "configure_llm_service titler" in result.output


def test_an_llm_service_name_taken_in_the_llm_app_is_refused(
    runner: CliRunner, project: Path
) -> None:
    (project / "llm/custom/titler.py").write_text("")
    result = runner.invoke(app, ["generate-service", "titler"])
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_an_llm_service_takes_no_credit_cost(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(
        app, ["generate-service", "titler", "--type", "llm", "--credit-cost", "2"]
    )
    assert result.exit_code == 2
    assert "priced per token" in result.output
    assert written(project) == set()


def test_outside_a_project_it_exits_2_and_writes_nothing(runner: CliRunner, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate-service", "lost_service"])
    assert result.exit_code == 2
    assert "inside a QuickScale project" in result.output
    assert list(in_tmp.rglob("*.py")) == []


# What the command says about when the new service is live.


def test_on_a_project_that_reloads_it_says_the_service_is_live_in_seconds(
    runner: CliRunner, project: Path, fake_runtime
) -> None:
    fake_runtime.reloads = True

    result = runner.invoke(app, ["generate-service", "fresh_one"])

    assert result.exit_code == 0, result.output
    assert (
        "The web server reloads on code changes: the service is live in a few seconds."
        in result.stdout
    )
    assert "quickscale restart" not in result.stdout
    assert "quickscale up" not in result.stdout


def test_on_a_running_project_without_reload_it_says_to_restart(
    runner: CliRunner, project: Path, fake_runtime
) -> None:
    result = runner.invoke(app, ["generate-service", "fresh_one"])

    assert result.exit_code == 0, result.output
    assert "make the service live with: quickscale restart" in result.stdout
    assert "quickscale up" not in result.stdout


def test_on_a_stopped_project_it_says_the_next_up_makes_it_live(
    runner: CliRunner, project: Path, fake_runtime
) -> None:
    fake_runtime.statuses = [
        ServiceStatus("web", ServiceState.STOPPED),
        ServiceStatus("db", ServiceState.STOPPED),
    ]

    result = runner.invoke(app, ["generate-service", "fresh_one"])

    assert result.exit_code == 0, result.output
    assert "The project is stopped: the service is live from the next: quickscale up" in (
        result.stdout
    )
    assert "quickscale restart" not in result.stdout


def test_when_the_runtime_cannot_tell_it_still_writes_and_says_restart(
    runner: CliRunner, project: Path, fake_runtime
) -> None:
    fake_runtime.status_error = QuickScaleError("Docker is not running.")

    result = runner.invoke(app, ["generate-service", "fresh_one"])

    assert result.exit_code == 0, result.output
    assert (project / "services/custom/fresh_one.py").is_file()
    assert "The service is live after: quickscale restart" in result.stdout
