"""Service pages read like a product: titles and icons, results as UI with the raw JSON,
the real (truncated) input in the usage history, "use it from code" snippets, and a way
to buy credits when they run out."""

import json
import shlex
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from common.testing.html import elements, raw_texts, texts
from common.testing.tasks import run_queued_tasks
from services.base import BaseService, service_title
from services.checks import check_result_templates
from services.icons import ICONS, icon_html
from services.models import Job, Service, ServiceUsage
from services.presentation import API_KEY_PLACEHOLDER, code_snippets, title_of
from services.registry import register_service, registered_services
from services.templatetags.services_ui import MAX_RAW_JSON_CHARS, pretty_json
from services.tests.factories import jpeg_with_exif, png_bytes
from users.services import user_delete
from users.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]
HTMX = {"HTTP_HX_REQUEST": "true"}
LONG_TEXT = "This product is great. " * 20


def detail(name: str) -> str:
    return reverse("services:detail", args=[name])


# --------------------------------------------------------------------------- names


def test_every_registered_service_has_a_title_icon_and_one_line_description():
    for name, cls in registered_services().items():
        if name.startswith("test_"):
            continue
        assert cls.title() and cls.title() != name, name
        assert cls.symbol(), name
        assert cls.description and "\n" not in cls.description, name


def test_a_service_without_a_display_name_is_titled_from_its_name(isolated_registry):
    @register_service("test_word_cloud_maker")
    class Plain(BaseService):
        pass

    assert Plain.title() == "Test word cloud maker"
    assert Plain.symbol()
    assert title_of("test_word_cloud_maker") == "Test word cloud maker"
    assert title_of("removed_service") == service_title("removed_service") == "Removed service"


def test_the_list_and_the_page_show_the_title_not_the_identifier(client, member):
    listing = client.get(reverse("services:list")).content.decode()
    assert "Sentiment analysis" in listing
    assert ">text_sentiment_analysis<" not in listing
    page = client.get(detail("text_sentiment_analysis")).content.decode()
    assert texts(page)["service-title"] == "Sentiment analysis"
    assert '<h1 class="title" id="service-title"><svg class="service-icon"' in page
    assert "<title>Sentiment analysis" in page


def test_an_icon_name_draws_its_svg_and_anything_else_is_shown_as_escaped_text():
    assert icon_html("smile").startswith('<svg class="service-icon"')
    assert 'aria-hidden="true"' in icon_html("smile")
    assert icon_html("<b>") == '<span class="service-icon" aria-hidden="true">&lt;b&gt;</span>'
    for name, cls in registered_services().items():
        if not name.startswith("test_"):
            assert cls.symbol() in ICONS, name


# --------------------------------------------------------------------------- results


def test_a_sentiment_renders_as_a_label_and_a_score_bar_with_the_raw_json(client, member):
    html = client.post(detail("text_sentiment_analysis"), {"text": "I love it!"}, **HTMX)
    html = html.content.decode()
    found, text = elements(html), texts(html)
    assert text["sentiment-label"] == "Positive"
    assert "is-success" in str(found["sentiment-label"]["class"])
    score = found["sentiment-score"]
    assert score["max"] == "100" and 50 < int(str(score["value"])) <= 100
    assert "{'pos'" not in html and "&#x27;pos&#x27;" not in html
    raw = json.loads(raw_texts(html)["raw-result"].split("Raw JSON", 1)[1])
    assert raw["label"] == "positive" and set(raw["scores"]) == {"pos", "neu", "neg"}


def test_a_negative_sentiment_is_a_red_label_low_on_the_bar(client, member):
    html = client.post(detail("text_sentiment_analysis"), {"text": "Awful, terrible."}).content
    found = elements(html.decode())
    assert "is-danger" in str(found["sentiment-label"]["class"])
    assert int(str(found["sentiment-score"]["value"])) < 50


def test_a_summary_renders_as_text_not_a_list(client, member):
    text = "Cats sleep a lot. Dogs bark at night. Cats and dogs both like food."
    html = client.post(detail("text_summarizer"), {"text": text, "max_sentences": 2}).content
    html = html.decode()
    summary = texts(html)["result-summary"]
    assert summary.endswith("2 of 3 sentences.")
    assert "['" not in html and "[&#x27;" not in html
    assert "Cats" in summary


def test_an_image_renders_its_metadata_and_exif_as_tables(client, member, fund):
    fund(member, 10)
    upload = SimpleUploadedFile("cam.jpg", jpeg_with_exif(gps=True), content_type="image/jpeg")
    html = client.post(detail("image_metadata_extractor"), {"image": upload}).content.decode()
    image = texts(html)["result-image"]
    assert "Format JPEG" in image
    assert "Dimensions 16 \u00d7 12 px" in image
    assert "GPS location Present" in image
    assert "Make QuickCam" in texts(html)["result-exif"]


def test_the_free_demo_renders_its_counts_as_a_definition_list(client, member):
    html = client.post(detail("demo_free_service"), {"text": "one two"}).content.decode()
    fields = texts(html)["result-fields"]
    assert "Words 2" in fields
    assert "Characters without spaces 6" in fields


def test_structured_output_renders_as_a_definition_list_with_tags():
    result = {
        "data": {"people": ["Ada Lovelace", "Alan Turing"], "places": [], "summary": "Two."},
        "model": "fake-1",
        "input_tokens": 12,
        "output_tokens": 7,
        "finish_reason": "stop",
    }
    html = render_to_string("services/results/llm.html", {"result": result})
    data = texts(html)["result-data"]
    assert "People Ada Lovelace Alan Turing" in data
    assert "Places None" in data
    assert "Summary Two." in data
    assert html.count('class="tag is-light"') == 2
    assert "fake-1 · 12 tokens in, 7 out" in texts(html)["result-llm"]


def test_a_plain_llm_reply_renders_as_text_with_its_line_breaks():
    html = render_to_string(
        "services/results/llm.html", {"result": {"text": "Hello\n\nWorld <b>", "data": None}}
    )
    assert texts(html)["result-text"] == "Hello World <b>"
    assert "&lt;b&gt;" in html and html.count("<p>") == 2


def test_a_result_key_named_items_is_shown_as_a_key():
    html = render_to_string("services/results/fields.html", {"result": {"items": [1, 2]}})
    assert texts(html)["result-fields"] == "Items 1, 2"


# --------------------------------------------------------------------------- usage history


def test_the_usage_history_shows_the_start_of_the_input_not_its_type(client, member):
    client.post(detail("text_summarizer"), {"text": LONG_TEXT, "max_sentences": 2})
    usage = ServiceUsage.objects.get()
    assert usage.input_summary.startswith("text: This product is great. This product")
    assert len(usage.input_summary) == 80 and usage.input_summary.endswith("…")
    assert "max_sentences" not in usage.input_summary  # past the 80 characters
    html = client.get(reverse("services:usage")).content.decode()
    assert usage.input_summary in html
    assert "max_sentences: int" not in html


def test_a_short_input_is_shown_whole_with_its_numbers(client, member):
    client.post(detail("text_summarizer"), {"text": "One.  Two.\nThree.", "max_sentences": 2})
    assert ServiceUsage.objects.get().input_summary == "text: One. Two. Three., max_sentences: 2"


def test_an_image_is_summarised_by_its_facts_not_its_bytes(client, member, fund):
    fund(member, 10)
    upload = SimpleUploadedFile("dot.png", png_bytes(3, 2), content_type="image/png")
    client.post(detail("image_metadata_extractor"), {"image": upload})
    assert ServiceUsage.objects.get().input_summary.startswith("PNG 3x2, ")


# --------------------------------------------------------------------------- code panel


def test_each_service_page_shows_curl_and_python_for_its_endpoint(client, member):
    for service in Service.objects.filter(is_active=True):
        html = client.get(detail(service.name)).content.decode()
        code = raw_texts(html)
        endpoint = f"http://testserver/api/services/{service.name}/run"
        assert code["code-endpoint"] == f"POST {endpoint}", service.name
        assert endpoint in code["snippet-curl"] and endpoint in code["snippet-python"]
        assert f"Bearer {API_KEY_PLACEHOLDER}" in code["snippet-curl"]
        assert f"Bearer {API_KEY_PLACEHOLDER}" in code["snippet-python"]
        found = elements(html)
        for button in ("copy-curl", "copy-python"):
            assert found[button]["x-on:click"] == "copy"
        assert "<script>" not in html  # the copy button is an Alpine component in app.js


def test_the_curl_snippet_is_a_valid_command_sending_the_services_inputs():
    cls = registered_services()["text_summarizer"]
    snippets = code_snippets(cls, "https://example.com/api/services/text_summarizer/run")
    words = shlex.split(snippets.curl.replace("\\\n", " "))
    assert words[:4] == [
        "curl",
        "-X",
        "POST",
        "https://example.com/api/services/text_summarizer/run",
    ]
    body = json.loads(words[words.index("-d") + 1])
    assert body == {"input": {"text": "I love how simple this is.", "max_sentences": 3}}
    compile(snippets.python, "snippet.py", "exec")  # valid Python
    assert '"max_sentences": 3' in snippets.python


def test_a_text_with_a_quote_stays_one_shell_word(isolated_registry):
    from services import presentation

    cls = registered_services()["text_sentiment_analysis"]
    original = presentation.EXAMPLE_TEXT
    presentation.EXAMPLE_TEXT = "It's fine"
    try:
        curl = code_snippets(cls, "https://x.test/run").curl
    finally:
        presentation.EXAMPLE_TEXT = original
    words = shlex.split(curl.replace("\\\n", " "))
    assert json.loads(words[words.index("-d") + 1]) == {"input": {"text": "It's fine"}}


def test_an_image_service_snippet_uploads_a_file():
    cls = registered_services()["image_metadata_extractor"]
    snippets = code_snippets(cls, "https://example.com/api/services/image_metadata_extractor/run")
    words = shlex.split(snippets.curl.replace("\\\n", " "))
    assert words[words.index("-F") + 1] == "image=@photo.jpg"
    assert "Content-Type: application/json" not in snippets.curl
    compile(snippets.python, "snippet.py", "exec")
    assert 'files={"image": open("photo.jpg", "rb")}' in snippets.python


# --------------------------------------------------------------------------- credits


def test_insufficient_credits_links_to_buying_credits(client, member):
    upload = SimpleUploadedFile("dot.png", png_bytes(), content_type="image/png")
    html = client.post(detail("image_metadata_extractor"), {"image": upload}, **HTMX)
    html = html.content.decode()
    assert "Insufficient credits" in texts(html)["service-error"]
    assert elements(html)["buy-credits"]["href"] == reverse("stripe_manager:pricing")


def test_other_errors_do_not_offer_to_buy_credits(client, member):
    Service.objects.filter(name="demo_free_service").update(credit_cost=Decimal("0"))
    html = client.post(detail("demo_free_service"), {"text": "fine"}).content.decode()
    assert "buy-credits" not in elements(html)


# --------------------------------------------------------------------------- privacy


def test_deleting_the_account_erases_its_usage_inputs_and_keeps_the_rows(client, member, user):
    client.post(detail("demo_free_service"), {"text": "my secret plan"})
    usage = ServiceUsage.objects.get()
    assert usage.input_summary == "text: my secret plan"
    user_delete(user=user)
    usage.refresh_from_db()
    assert usage.input_summary == ""
    assert usage.status == ServiceUsage.Status.SUCCEEDED


def test_staff_do_not_see_a_users_inputs_in_the_admin(client, member):
    client.post(detail("demo_free_service"), {"text": "my secret plan"})
    usage = ServiceUsage.objects.get()
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:services_serviceusage_change", args=[usage.pk]))
    assert page.status_code == 200
    assert "my secret plan" not in page.content.decode()


# --------------------------------------------------------------------------- job results


def test_a_batch_jobs_result_shows_label_counts_and_a_row_per_text(
    client, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            detail("batch_sentiment_analysis"),
            {"texts": "I love this.\nThis is terrible.\nIt is a table."},
        )
    run_queued_tasks()
    job = Job.objects.get()
    html = client.get(reverse("services:job", args=[job.pk])).content.decode()
    found = texts(html)
    assert found["batch-counts"] == "Positive 1 Neutral 1 Negative 1"
    rows = found["batch-rows"]
    assert rows.startswith("# Sentiment Score Confidence 1 Positive")
    assert "2 Negative -0." in rows
    raw = json.loads(raw_texts(html)["raw-result"].split("Raw JSON", 1)[1])
    assert raw["processed"] == 3


def test_a_job_of_a_service_without_its_own_template_labels_its_keys(
    client, member, isolated_registry
):
    @register_service("test_plain_job_service")
    class PlainJob(BaseService):
        def execute_service(self, user: Any, **kwargs: Any) -> dict[str, Any]:
            return {"word_count": 2, "per_word": [{"word_text": "a", "char_count": 1}]}

    service = Service.objects.create(name="test_plain_job_service", credit_cost=Decimal("0"))
    job = Job.objects.create(
        owner=member,
        service=service,
        origin="web",
        state=Job.State.SUCCEEDED,
        result=PlainJob().execute_service(member),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    html = client.get(reverse("services:job", args=[job.pk])).content.decode()
    found = texts(html)["job-result"]
    assert "Word count 2" in found
    assert "Per word Word text Char count a 1" in found


def test_a_missing_result_template_is_a_system_check_error(isolated_registry):
    assert check_result_templates() == []

    @register_service("test_bad_template_service")
    class BadTemplate(BaseService):
        result_template = "services/results/no_such_template.html"

    errors = check_result_templates()
    assert [error.id for error in errors] == ["services.E001"]
    assert "test_bad_template_service" in errors[0].msg


def test_a_huge_raw_result_is_left_to_the_api():
    small = render_to_string(
        "services/results/fields.html", {"result": {"a": 1}}
    )  # the default template
    assert "A 1" in texts(small)["result-fields"]
    assert pretty_json({"a": 1}) == '{\n  "a": 1\n}'
    assert pretty_json({"text": "x" * (MAX_RAW_JSON_CHARS + 1)}) == ""


def test_a_services_example_input_is_what_its_snippets_send(isolated_registry):
    @register_service("test_record_checker")
    class RecordChecker(BaseService):
        example_input = {"record": {"name": "Ada"}}

    snippets = code_snippets(RecordChecker, "https://x.test/api/services/test_record_checker/run")
    words = shlex.split(snippets.curl.replace("\\\n", " "))
    assert json.loads(words[words.index("-d") + 1]) == {"input": {"record": {"name": "Ada"}}}
    assert 'json={"input": {"record": {"name": "Ada"}}}' in snippets.python


def test_the_python_snippet_is_python_for_every_json_value(isolated_registry):
    @register_service("test_flags_service")
    class Flags(BaseService):
        example_input = {"on": True, "off": False, "none": None, "n": [1, 2.5], "s": 'say "hi"'}

    python = code_snippets(Flags, "https://x.test/run").python
    namespace: dict[str, Any] = {}
    call = python.split("response = requests.post(", 1)[1].rsplit(")\nresponse", 1)[0]
    exec(f"def post(*args, **kwargs): return kwargs\nresult = post({call})", namespace)
    assert namespace["result"]["json"] == {"input": Flags.example_input}
