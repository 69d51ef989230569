import json
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from api.models import APIKey, APIKeyUsage
from api.services import api_key_create, api_key_revoke
from credits import ledger
from credits.tests.factories import ledger_state
from services.base import BaseService
from services.models import Service, ServiceUsage
from services.registry import register_service
from services.tests.factories import bomb_png, png_bytes, truncated_png
from services.validation import MAX_TEXT_CHARS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]


def post_json(client, url: str, body, **headers) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def text_call(client, auth, operation: str, text: str) -> Any:
    return post_json(client, "/api/text/", {"operation": operation, "text": text}, **auth)


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# --------------------------------------------------------------------------- /api/text/


def test_text_analyze_charges_one_credit_and_links_the_usage_to_the_key(client, auth, user, fund):
    fund(user, 5)
    response = text_call(client, auth, "analyze", "I really love this!")
    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["error"] is None
    assert body["data"]["service"] == "text_sentiment_analysis"
    assert body["data"]["credits_charged"] == "1.00"
    assert body["data"]["result"]["label"] == "positive"
    assert ledger.balance(user).total == Decimal("4.00")
    usage = ServiceUsage.objects.get(pk=body["data"]["usage_id"])
    assert usage.origin == "api"
    assert APIKeyUsage.objects.get(usage=usage).key.user == user


def test_text_summarize_uses_the_summarizer_and_count_is_free(client, auth, user, fund):
    fund(user, 2)
    summary = text_call(client, auth, "summarize", "One thing. Two things. Three things. Four.")
    assert summary.json()["data"]["service"] == "text_summarizer"
    count = text_call(client, auth, "count", "three little words")
    assert count.json()["data"]["result"]["words"] == 3
    assert count.json()["data"]["credits_charged"] == "0.00"
    assert ledger.balance(user).total == Decimal("0.00")


def test_an_unknown_operation_is_a_422_naming_the_field(client, auth):
    error = assert_error(text_call(client, auth, "translate", "hola"), 422, "validation_error")
    assert "operation" in error["details"]["fields"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * (MAX_TEXT_CHARS + 1), id="huge"),
        pytest.param("\x00\x01\x02\x89PNG", id="binary"),
    ],
)
def test_unusable_text_is_a_422_and_charges_nothing(client, auth, user, fund, text):
    fund(user, 5)
    before = ledger_state()
    error = assert_error(text_call(client, auth, "analyze", text), 422, "invalid_input")
    assert "text" in error["details"]["fields"]
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


def test_text_that_is_not_a_string_is_a_422(client, auth):
    response = post_json(client, "/api/text/", {"operation": "count", "text": ["a"]}, **auth)
    assert_error(response, 422, "validation_error")


def test_a_body_that_is_not_json_is_a_422(client, auth):
    response = client.post("/api/text/", "{not json", content_type="application/json", **auth)
    assert_error(response, 422, "validation_error")


def test_without_enough_credits_the_answer_is_402_with_the_figures(client, auth, user, fund):
    fund(user, 1)
    error = assert_error(
        text_call(client, auth, "summarize", "A. B. C. D."), 402, "insufficient_credits"
    )
    assert error["details"] == {"required": "2.00", "available": "1.00"}
    assert ledger.balance(user).total == Decimal("1.00")


def test_an_inactive_service_behind_an_operation_is_a_404(client, auth):
    Service.objects.filter(name="demo_free_service").update(is_active=False)
    assert_error(text_call(client, auth, "count", "hi"), 404, "not_found")


# --------------------------------------------------------------------------- /api/services/


def test_services_lists_the_active_ones_with_their_cost(client, auth):
    Service.objects.filter(name="text_summarizer").update(is_active=False)
    data = client.get("/api/services/", **auth).json()["data"]
    costs = {row["name"]: row["credit_cost"] for row in data}
    # A project adds services of its own: every active one at its cost, no other.
    active = Service.objects.filter(is_active=True)
    assert costs == {service.name: str(service.credit_cost) for service in active}
    assert "text_summarizer" not in costs
    assert [row["name"] for row in data] == sorted(costs)
    defaults = {
        "demo_free_service": "0.00",
        "image_metadata_extractor": "10.00",
        "text_sentiment_analysis": "1.00",
    }
    assert costs.items() >= defaults.items()


def test_run_with_json_input(client, auth):
    response = post_json(
        client, "/api/services/demo_free_service/run", {"input": {"text": "a b c"}}, **auth
    )
    assert response.status_code == 200
    assert response.json()["data"]["result"]["words"] == 3


def test_run_with_a_multipart_image(client, auth, user, fund):
    fund(user, 10)
    upload = SimpleUploadedFile("dot.png", png_bytes(5, 4), content_type="image/png")
    response = client.post("/api/services/image_metadata_extractor/run", {"image": upload}, **auth)
    result = response.json()["data"]["result"]
    assert (result["format"], result["width"], result["height"]) == ("PNG", 5, 4)
    assert ledger.balance(user).total == Decimal("0.00")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(truncated_png(), "truncated", id="truncated image"),
        pytest.param(bomb_png(), "decompression bomb", id="bomb"),
        pytest.param(b"%PDF-1.4 not an image", "not an image", id="not an image"),
    ],
)
def test_a_bad_image_is_a_422_and_charges_nothing(client, auth, user, fund, data, message):
    fund(user, 10)
    upload = SimpleUploadedFile("upload.png", data, content_type="image/png")
    response = client.post("/api/services/image_metadata_extractor/run", {"image": upload}, **auth)
    error = assert_error(response, 422, "invalid_input")
    assert message in error["message"]
    assert ledger.balance(user).total == Decimal("10.00")


@pytest.mark.parametrize(
    "path",
    [
        "/api/services/no_such_service/run",
        "/api/services/..%2F..%2Fetc%2Fpasswd/run",
        "/api/services/../credits/run",
        "/api/services/demo.free/run",
        "/api/services/%00/run",
    ],
)
def test_an_unknown_service_or_a_name_with_path_characters_is_a_404(client, auth, path):
    response = post_json(client, path, {"input": {"text": "hi"}}, **auth)
    assert_error(response, 404, "not_found")
    assert not ServiceUsage.objects.exists()


def test_an_inactive_service_cannot_be_run(client, auth):
    Service.objects.filter(name="demo_free_service").update(is_active=False)
    response = post_json(
        client, "/api/services/demo_free_service/run", {"input": {"text": "hi"}}, **auth
    )
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "body",
    ['{"text": "no input wrapper"}', '{"input": "not an object"}', "[1, 2]", "not json", ""],
)
def test_run_refuses_a_body_without_an_input_object(client, auth, body):
    response = client.post(
        "/api/services/demo_free_service/run", body, content_type="application/json", **auth
    )
    error = assert_error(response, 422, "invalid_input")
    assert "input" in error["details"]["fields"]


def test_run_refuses_unknown_input_fields(client, auth):
    response = post_json(
        client, "/api/services/demo_free_service/run", {"input": {"txt": "typo"}}, **auth
    )
    error = assert_error(response, 422, "invalid_input")
    assert "txt" in error["details"]["fields"]


def test_a_service_that_raises_is_a_500_with_credits_back_and_a_failed_usage(
    client, auth, user, fund, isolated_registry
):
    @register_service("test_api_exploding")
    class Exploding(BaseService):
        def execute_service(self, user, **kwargs):
            raise RuntimeError("GPU on fire")

    Service.objects.create(name="test_api_exploding", credit_cost=Decimal("4.00"))
    fund(user, 4)
    body = {"input": {"prompt": "anything"}}
    response = post_json(client, "/api/services/test_api_exploding/run", body, **auth)
    error = assert_error(response, 500, "service_failed")
    assert "GPU" not in error["message"]  # internal errors are not shown to callers
    assert ledger.balance(user).total == Decimal("4.00")
    usage = ServiceUsage.objects.get(pk=error["details"]["usage_id"])
    assert usage.status == ServiceUsage.Status.FAILED
    assert APIKeyUsage.objects.filter(usage=usage).exists()


# --------------------------------------------------------------------------- balance, usage


def test_balance_reports_the_key_owners_credits(client, auth, user, fund):
    fund(user, 7)
    data = client.get("/api/credits/balance/", **auth).json()["data"]
    assert data == {
        "total": "7.00",
        "subscription": "0.00",
        "pay_as_you_go": "7.00",
        "reserved": "0.00",
        "available": "7.00",
        "credit_system_enabled": True,
    }


def test_usage_is_paginated_newest_first_and_only_the_key_owners(
    client, auth, other_user, default_services
):
    for text in ("one", "two", "three"):
        text_call(client, auth, "count", text)
    other_key = api_key_create(other_user, name="other")[1]
    text_call(client, {"HTTP_AUTHORIZATION": f"Bearer {other_key}"}, "count", "theirs")

    first = client.get("/api/usage/?page=1&page_size=2", **auth).json()["data"]
    second = client.get("/api/usage/?page=2&page_size=2", **auth).json()["data"]
    assert (first["total"], first["has_next"], len(first["items"])) == (3, True, 2)
    assert (second["has_next"], len(second["items"])) == (False, 1)
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert client.get("/api/usage/?page=9", **auth).json()["data"]["items"] == []


@pytest.mark.parametrize("query", ["page=0", "page_size=0", "page_size=101", "page=abc"])
def test_usage_refuses_bad_paging_with_a_422(client, auth, query):
    assert_error(client.get(f"/api/usage/?{query}", **auth), 422, "validation_error")


# --------------------------------------------------------------------------- 401, 429


@pytest.mark.parametrize(
    ("header", "code"),
    [
        pytest.param(None, "missing_api_key", id="missing"),
        pytest.param("Token abc", "malformed_authorization", id="wrong scheme"),
        pytest.param("Bearer", "malformed_authorization", id="no key"),
        pytest.param("Bearer a b", "malformed_authorization", id="two tokens"),
        pytest.param("Bearer qs_deadbeef0000_nope", "invalid_api_key", id="unknown key"),
        pytest.param("Bearer not-a-key", "invalid_api_key", id="garbage"),
    ],
)
@pytest.mark.parametrize("url", ["/api/services/", "/api/credits/balance/", "/api/usage/"])
def test_requests_without_a_valid_key_are_401(client, header, code, url):
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    assert_error(client.get(url, **headers), 401, code)


def test_a_revoked_key_is_401(client, user):
    key, text = api_key_create(user, name="gone")
    api_key_revoke(user, key_id=key.pk)
    response = client.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {text}")
    assert_error(response, 401, "invalid_api_key")


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(client, user):
    key, _ = api_key_create(user, name="k")
    forged = f"qs_{key.prefix}_{'x' * 43}"
    assert_error(
        client.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {forged}"), 401, "invalid_api_key"
    )


def test_the_key_of_a_deactivated_account_is_401(client, auth, user):
    user.is_active = False
    user.save()
    assert_error(client.get("/api/services/", **auth), 401, "invalid_api_key")


def test_a_successful_call_records_when_the_key_was_last_used(client, auth, user):
    client.get("/api/services/", **auth)
    assert APIKey.objects.get(user=user).last_used_at is not None


def test_over_the_rate_limit_the_answer_is_429_with_retry_after(client, auth, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    assert client.get("/api/services/", **auth).status_code == 200
    assert client.get("/api/services/", **auth).status_code == 200
    response = client.get("/api/services/", **auth)
    error = assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(response["Retry-After"])


def test_the_rate_limit_counts_per_key(client, auth, user, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    second = api_key_create(user, name="second")[1]
    assert client.get("/api/services/", **auth).status_code == 200
    assert client.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200


def test_counting_calls_makes_no_database_statement_fail(client, auth):
    """Every statement PostgreSQL refuses is an ERROR line in its log, even when the
    caller swallows the error: calls within one minute must cause none."""
    failures: list[str] = []

    def watch(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
            raise

    with connection.execute_wrapper(watch):
        for _ in range(5):
            assert client.get("/api/services/", **auth).status_code == 200
    assert failures == []


def test_any_other_api_path_is_a_404_envelope(client, auth):
    assert_error(client.get("/api/nothing/here/", **auth), 404, "not_found")


# --------------------------------------------------------------------------- schema and docs


def test_every_endpoint_declares_its_error_statuses_and_retry_after(client):
    schema = client.get("/api/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) == 9
    for operation in operations:
        assert {"200", "401", "402", "404", "413", "422", "429"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert operation["security"]
    run = schema["paths"]["/api/services/{name}/run"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(run)


class AssetFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name])


def test_the_docs_page_uses_only_local_assets(client, settings):
    """Its CSP is checked in Chromium with the others (test_browser.py)."""
    # Assets are served from the apps' static folders whatever DEBUG the project's
    # .env sets: with DEBUG off, WhiteNoise would serve only what collectstatic copied.
    settings.WHITENOISE_USE_FINDERS = True
    response = client.get("/api/docs")
    assert response.status_code == 200
    finder = AssetFinder()
    finder.feed(response.content.decode())
    assert finder.urls
    assert all(url.startswith("/static/") for url in finder.urls), finder.urls
    for url in finder.urls:
        assert client.get(url).status_code == 200, url
