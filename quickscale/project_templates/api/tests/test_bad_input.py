"""Hostile or malformed input to the API: a clear 4xx in the envelope, and nothing charged.

Covers JSON nested 100,000 levels deep, numbers no service can use (1e400,
NaN), forms with more fields or files than Django reads, empty inputs, and the
published schema stating the same rules the code applies.
"""

import json
from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from credits.tests.factories import ledger_state
from services.base import BaseService
from services.models import Service, ServiceUsage
from services.registry import register_service
from services.validation import MAX_TEXT_CHARS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]

RUN = "/api/services/{}/run"
DEEP = 100_000


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def post_raw(client: Client, url: str, body: bytes, auth: dict[str, Any]) -> Any:
    return client.post(url, body, content_type="application/json", **auth)


def assert_refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def funded(user, fund):
    fund(user, 50)
    return user


@pytest.fixture
def unchanged(funded):
    """Assert, after the test, that no credit moved and no call was recorded."""
    before = ledger_state()
    yield
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


# --------------------------------------------------------------------------- nested JSON


@pytest.mark.parametrize(
    "url, body, code",
    [
        pytest.param(
            RUN.format("demo_free_service"),
            b'{"input": ' + deep(DEEP) + b"}",
            "invalid_input",
            id="run",
        ),
        pytest.param(
            "/api/text/",
            b'{"operation": "count", "text": ' + deep(DEEP) + b"}",
            "validation_error",
            id="text",
        ),
    ],
)
def test_json_nested_100k_levels_deep_is_a_422_naming_the_depth(
    client, auth, unchanged, url, body, code
):
    error = assert_refused(post_raw(client, url, body, auth), 422, code)
    assert "deeper than 64 levels" in error["message"]


def test_json_nested_within_the_bound_still_reaches_the_service(client, auth, unchanged):
    # 10 levels inside "input": parsed, then refused by the service as a text that is not a string.
    body = b'{"input": {"text": ' + deep(10) + b"}}"
    error = assert_refused(
        post_raw(client, RUN.format("demo_free_service"), body, auth), 422, "invalid_input"
    )
    assert "text" in error["details"]["fields"]


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 41])
def test_a_sentence_count_that_is_no_usable_number_is_a_422(client, auth, unchanged, number):
    body = f'{{"input": {{"text": "A. B. C. D.", "max_sentences": {number}}}}}'.encode()
    assert_refused(
        post_raw(client, RUN.format("text_summarizer"), body, auth), 422, "invalid_input"
    )


def test_a_large_but_finite_sentence_count_is_refused_by_the_service(client, auth, unchanged):
    body = b'{"input": {"text": "A. B. C. D.", "max_sentences": 1e300}}'
    error = assert_refused(
        post_raw(client, RUN.format("text_summarizer"), body, auth), 422, "invalid_input"
    )
    assert "max_sentences" in error["details"]["fields"]


# --------------------------------------------------------------------------- oversize forms


@pytest.mark.parametrize("debug", [False, True], ids=["production", "development"])
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_a_form_with_1001_fields_is_a_422_envelope(
    client, auth, unchanged, settings, debug, encoding
):
    settings.DEBUG = debug
    fields = {f"field{index}": "x" for index in range(1001)}
    url = RUN.format("demo_free_service")
    if encoding == "multipart":
        response = client.post(url, fields, **auth)
    else:
        body = "&".join(f"{name}={value}" for name, value in fields.items())
        response = client.post(url, body, content_type="application/x-www-form-urlencoded", **auth)
    error = assert_refused(response, 422, "validation_error")
    assert "body" in error["details"]["fields"]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "development"])
def test_a_form_with_101_files_is_a_422_envelope(client, auth, unchanged, settings, debug):
    settings.DEBUG = debug
    files = {f"file{index}": SimpleUploadedFile(f"{index}.txt", b"x") for index in range(101)}
    response = client.post(RUN.format("image_metadata_extractor"), files, **auth)
    assert_refused(response, 422, "validation_error")


# --------------------------------------------------------------------------- empty input


def test_an_empty_json_input_is_a_422_naming_input(client, auth, unchanged):
    body = json.dumps({"input": {}}).encode()
    error = assert_refused(
        post_raw(client, RUN.format("demo_free_service"), body, auth), 422, "invalid_input"
    )
    assert list(error["details"]["fields"]) == ["input"]


@pytest.mark.parametrize("name", ["origin", "on_usage_created", "user", "self"])
@pytest.mark.parametrize("as_form", [False, True], ids=["json", "form"])
def test_an_input_named_like_an_argument_of_run_is_a_422_naming_it(
    client, auth, unchanged, name, as_form
):
    fields = {"text": "A fine day.", name: "x"}
    url = RUN.format("text_sentiment_analysis")
    if as_form:
        response = client.post(url, fields, **auth)
    else:
        response = post_raw(client, url, json.dumps({"input": fields}).encode(), auth)
    error = assert_refused(response, 422, "invalid_input")
    assert list(error["details"]["fields"]) == [name]


def test_an_empty_form_is_a_422_naming_input(client, auth, unchanged):
    response = client.post(RUN.format("demo_free_service"), {}, **auth)
    error = assert_refused(response, 422, "invalid_input")
    assert list(error["details"]["fields"]) == ["input"]


def test_an_empty_input_is_refused_even_by_a_service_that_takes_anything(
    client, auth, unchanged, isolated_registry
):
    @register_service("test_takes_anything")
    class TakesAnything(BaseService):
        def execute_service(self, user, **kwargs):
            return {"got": sorted(kwargs)}

    Service.objects.create(name="test_takes_anything", credit_cost=Decimal("0.00"))
    body = json.dumps({"input": {}}).encode()
    assert_refused(
        post_raw(client, RUN.format("test_takes_anything"), body, auth), 422, "invalid_input"
    )


# --------------------------------------------------------------------------- the schema says so


@pytest.fixture
def request_schemas(client) -> dict[str, jsonschema_rs.Validator]:
    """Validators of the published request bodies, resolved against the whole document."""
    document = client.get("/api/openapi.json").json()

    def body(path: str, media_type: str) -> jsonschema_rs.Validator:
        schema = document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
        return jsonschema_rs.validator_for({"components": document["components"], **schema})

    return {
        "text": body("/api/text/", "application/json"),
        "run": body("/api/services/{name}/run", "application/json"),
        "run form": body("/api/services/{name}/run", "multipart/form-data"),
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(" \t\n\u3000\x85", id="only white space"),
        pytest.param("nul\x00byte", id="NUL"),
        pytest.param("bell\x07", id="control character"),
        pytest.param("x" * (MAX_TEXT_CHARS + 1), id="one too long"),
    ],
)
@pytest.mark.parametrize("operation", ["analyze", "summarize", "count"])
def test_a_text_the_services_refuse_is_invalid_in_the_published_schema(
    client, auth, unchanged, request_schemas, operation, text
):
    body = {"operation": operation, "text": text}
    assert not request_schemas["text"].is_valid(body)
    assert_refused(
        post_raw(client, "/api/text/", json.dumps(body).encode(), auth), 422, "invalid_input"
    )


@pytest.mark.parametrize(
    "text",
    ["hi", " \tindented\nand wrapped\r\n", "日本語のテキスト", "emoji 😀", "x" * MAX_TEXT_CHARS],
    ids=["short", "white space around", "Japanese", "emoji", "longest"],
)
def test_a_text_valid_in_the_published_schema_is_accepted(
    client, auth, funded, request_schemas, text
):
    body = {"operation": "count", "text": text}
    assert request_schemas["text"].is_valid(body)
    response = post_raw(client, "/api/text/", json.dumps(body).encode(), auth)
    assert response.status_code == 200, response.content[:300]


def test_the_published_run_schema_refuses_an_empty_input_and_accepts_a_field(request_schemas):
    assert not request_schemas["run"].is_valid({"input": {}})
    assert request_schemas["run"].is_valid({"input": {"text": "hi"}})
    assert not request_schemas["run form"].is_valid({})
    assert request_schemas["run form"].is_valid({"text": "hi"})
