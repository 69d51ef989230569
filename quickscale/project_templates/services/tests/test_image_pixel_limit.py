"""The image service decodes at most SERVICE_MAX_IMAGE_PIXELS pixels per input.

A small PNG can declare a huge image (a decompression bomb); each decode of one
costs width x height x up to 4 bytes of memory, so the limit is checked on the
header, before any pixel is decoded, and a refused input is never charged.
"""

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from common.testing.process import run_python
from credits.tests.factories import ledger_state
from services.exceptions import ServiceInputError
from services.models import ServiceUsage
from services.registry import create_service_instance
from services.tests.factories import bomb_png, jpeg_with_exif, png_bytes
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def test_a_small_png_declaring_more_pixels_than_the_limit_is_refused_unread_and_uncharged(
    user, default_services, fund, settings
):
    settings.SERVICE_MAX_IMAGE_PIXELS = 4096 * 4096  # the default, whatever .env sets
    # 6320 x 6320 pixels in a few hundred bytes; its pixel data is 64 zero bytes,
    # so decoding it would fail as "truncated": the message shows it never was.
    data = bomb_png(6320, 6320)
    assert len(data) < 1000
    fund(user, 50)
    before = ledger_state()

    with pytest.raises(ServiceInputError) as error:
        create_service_instance("image_metadata_extractor").run(
            user, image=SimpleUploadedFile("big.png", data, content_type="image/png")
        )

    assert list(error.value.details) == ["image"]
    message = str(error.value.details["image"])
    assert "6320 x 6320" in message
    assert "16777216" in message
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


def test_the_limit_is_the_setting(settings):
    settings.SERVICE_MAX_IMAGE_PIXELS = 10 * 10
    service = create_service_instance("image_metadata_extractor")

    with pytest.raises(ServiceInputError, match="11 x 10 pixels; this service decodes at most 100"):
        service.validate_input(image=png_bytes(11, 10))
    assert service.validate_input(image=png_bytes(10, 10))["image"].width == 10


def test_a_jpeg_is_decoded_at_a_reduced_scale_but_reported_at_its_full_size(settings):
    # 400 x 240 is 96000 pixels; decoded at 1/8 scale it is 50 x 30 = 1500.
    settings.SERVICE_MAX_IMAGE_PIXELS = 2000
    buffer = io.BytesIO()
    Image.new("RGB", (400, 240), "teal").save(buffer, "JPEG")
    service = create_service_instance("image_metadata_extractor")

    result = service.execute_service(
        CustomUser(), **service.validate_input(image=buffer.getvalue())
    )

    assert (result["format"], result["width"], result["height"]) == ("JPEG", 400, 240)


def test_a_truncated_jpeg_is_refused_although_decoded_at_a_reduced_scale():
    buffer = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(buffer, "JPEG")
    data = buffer.getvalue()

    with pytest.raises(ServiceInputError, match="truncated"):
        create_service_instance("image_metadata_extractor").validate_input(
            image=data[: len(data) // 2]
        )


def test_exif_is_still_read_from_a_reduced_jpeg():
    service = create_service_instance("image_metadata_extractor")
    cleaned = service.validate_input(image=jpeg_with_exif(gps=True))

    result = service.execute_service(CustomUser(), **cleaned)

    assert result["exif"]["Make"] == "QuickCam"
    assert result["has_gps"] is True


def test_a_pixel_limit_below_one_stops_start_up():
    result = run_python(
        ["manage.py", "check"], {**os.environ, "SERVICE_MAX_IMAGE_PIXELS": "0"}, timeout=60
    )

    assert result.returncode != 0
    assert "SERVICE_MAX_IMAGE_PIXELS" in result.stderr
