from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from services import images
from services.exceptions import ServiceInputError
from services.registry import create_service_instance
from services.tests.factories import bomb_png, jpeg_with_exif, png_bytes, truncated_png
from services.validation import MAX_TEXT_CHARS
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def call(name: str, **inputs: Any) -> dict[str, Any]:
    service = create_service_instance(name)
    return service.execute_service(CustomUser(), **service.validate_input(**inputs))


TEXT_SERVICES = ["text_sentiment_analysis", "demo_free_service", "text_summarizer"]


@pytest.mark.parametrize("name", TEXT_SERVICES)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("  \n\t ", id="only white space"),
        pytest.param("x" * (MAX_TEXT_CHARS + 1), id="huge"),
        pytest.param("PNG\x00\x01\x02binary", id="binary"),
        pytest.param(12345, id="not a string"),
    ],
)
def test_text_services_refuse_unusable_text_with_a_field_error(name, text):
    with pytest.raises(ServiceInputError) as error:
        create_service_instance(name).validate_input(text=text)
    assert list(error.value.details) == ["text"]


@pytest.mark.parametrize("name", TEXT_SERVICES)
def test_text_services_refuse_fields_they_do_not_know(name):
    with pytest.raises(ServiceInputError) as error:
        create_service_instance(name).validate_input(text="hi", txet="typo")
    assert "txet" in error.value.details


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this product, it is wonderful!", "positive"),
        ("This is terrible and I hate it.", "negative"),
        ("The box is on the table.", "neutral"),
    ],
)
def test_sentiment_labels_a_text_with_vader_scores(text, label):
    result = call("text_sentiment_analysis", text=text)
    assert result["label"] == label
    assert -1 <= result["compound"] <= 1
    assert 0 <= result["confidence"] <= 1
    assert set(result["scores"]) == {"pos", "neu", "neg"}


def test_demo_service_counts_words_characters_and_lines():
    assert call("demo_free_service", text="Hello big\nworld") == {
        "words": 3,
        "characters": 15,
        "characters_without_spaces": 13,
        "lines": 2,
    }


def test_summarizer_keeps_the_most_representative_sentences_in_order():
    text = (
        "Credits pay for every service call. The weather was nice. "
        "Every service call consumes credits from the ledger. Cats sleep a lot. "
        "The ledger records credits for each service."
    )
    result = call("text_summarizer", text=text, max_sentences=2)
    assert result["original_sentences"] == 5
    assert len(result["sentences"]) == 2
    assert "weather" not in result["summary"]
    assert "Cats" not in result["summary"]
    positions = [text.index(sentence) for sentence in result["sentences"]]
    assert positions == sorted(positions)


def test_summarizer_returns_a_short_text_whole():
    assert call("text_summarizer", text="Only one sentence here.")["sentences"] == [
        "Only one sentence here."
    ]


@pytest.mark.parametrize("value", [0, 11, "three", 2.5, True])
def test_summarizer_refuses_a_bad_sentence_count(value):
    with pytest.raises(ServiceInputError) as error:
        create_service_instance("text_summarizer").validate_input(text="a", max_sentences=value)
    assert "max_sentences" in error.value.details


def test_image_metadata_reports_format_size_mode_and_no_gps():
    upload = SimpleUploadedFile("red.png", png_bytes(8, 6), content_type="image/png")
    result = call("image_metadata_extractor", image=upload)
    assert (result["format"], result["width"], result["height"], result["mode"]) == (
        "PNG",
        8,
        6,
        "RGB",
    )
    assert result["has_gps"] is False
    assert result["exif"] == {}


def test_image_metadata_reads_exif_fields_and_gps_presence():
    with_gps = call("image_metadata_extractor", image=jpeg_with_exif(gps=True))
    without = call("image_metadata_extractor", image=jpeg_with_exif(gps=False))
    assert with_gps["exif"]["Make"] == "QuickCam"
    assert with_gps["has_gps"] is True
    assert without["has_gps"] is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"just some text, not an image", "not an image", id="not an image"),
        pytest.param(truncated_png(), "truncated", id="truncated"),
        pytest.param(bomb_png(), "decompression bomb", id="bomb"),
        pytest.param(b"", "empty", id="empty file"),
    ],
)
def test_image_metadata_refuses_unusable_files_clearly(data, message):
    with pytest.raises(ServiceInputError, match=message) as error:
        create_service_instance("image_metadata_extractor").validate_input(
            image=SimpleUploadedFile("upload.png", data)
        )
    assert list(error.value.details) == ["image"]


def test_image_metadata_refuses_an_oversize_file_without_reading_it(monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(ServiceInputError, match="limit is 100"):
        create_service_instance("image_metadata_extractor").validate_input(
            image=SimpleUploadedFile("big.png", png_bytes(64, 64))
        )


def test_image_metadata_refuses_a_missing_file():
    with pytest.raises(ServiceInputError, match="Upload an image"):
        create_service_instance("image_metadata_extractor").validate_input(image="a string")
