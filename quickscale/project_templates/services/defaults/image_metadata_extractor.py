"""Technical metadata of an image with Pillow: format, size, mode, EXIF, GPS presence.

The upload is read and checked by ``services.images`` (size, formats, pixel
limit, never stored). Everything reported comes from the header; the pixels
are decoded once, only to refuse a truncated or corrupt file, and JPEGs (most
photos) are decoded at 1/8 scale for that, which reads every byte of the image
but allocates 64 times less.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from PIL import ExifTags, Image

from services.base import BaseService
from services.forms import ImageInputForm
from services.images import FIELD, load_pixels, opened_image, read_upload
from services.registry import register_service
from services.validation import only_fields
from users.models import CustomUser

MAX_EXIF_FIELDS = 60
MAX_EXIF_VALUE_CHARS = 120


@dataclass(frozen=True)
class ImageFacts:
    """What the service reports about one image; no pixels are kept."""

    format: str
    width: int
    height: int
    mode: str
    animated: bool
    exif: dict[str, str]
    has_gps: bool


def image_facts(data: bytes) -> ImageFacts:
    """Read what the service reports from ``data``, or raise ``ServiceInputError`` saying why not.

    The pixel limit is checked on the size the decode would have (a JPEG's
    reduced one) before anything is decoded.
    """
    with opened_image(data) as image:
        width, height, mode = image.width, image.height, image.mode
        animated = bool(getattr(image, "is_animated", False))
        image.draft(None, (1, 1))  # JPEG: decode at the smallest scale; others: no-op
        load_pixels(image)
        # After load(): a PNG keeps EXIF that follows its pixels, read only then.
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo) if ExifTags.IFD.GPSInfo in exif else {}
        return ImageFacts(
            format=str(image.format),
            width=width,
            height=height,
            mode=mode,
            animated=animated,
            exif=_exif_fields(exif),
            has_gps=bool(gps),
        )


def _exif_fields(exif: Image.Exif) -> dict[str, str]:
    fields: dict[str, str] = {}
    for tag, value in exif.items():
        if len(fields) >= MAX_EXIF_FIELDS:
            break
        if isinstance(value, bytes):
            continue  # maker notes and thumbnails: binary, not metadata a person reads
        name = ExifTags.TAGS.get(tag, f"Tag{tag}")
        if name in {"GPSInfo", "ExifOffset"}:
            continue
        fields[name] = str(value)[:MAX_EXIF_VALUE_CHARS]
    return fields


@register_service("image_metadata_extractor")
class ImageMetadataExtractor(BaseService):
    """Report an image's format, dimensions, colour mode, EXIF fields and GPS presence."""

    display_name = "Image metadata"
    icon = "image"
    result_template = "services/results/image.html"
    default_credit_cost = Decimal("10.00")
    description = "Image metadata: format, dimensions, mode, EXIF fields and whether GPS is set."
    form_class = ImageInputForm

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {FIELD})
        data = read_upload(inputs.get(FIELD))
        return {FIELD: image_facts(data), "size_bytes": len(data)}

    def summarize_input(self, cleaned: dict[str, Any]) -> str:
        facts: ImageFacts = cleaned[FIELD]
        return f"{facts.format} {facts.width}x{facts.height}, {cleaned['size_bytes']} bytes"

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        facts: ImageFacts = kwargs[FIELD]
        return {
            "format": facts.format,
            "width": facts.width,
            "height": facts.height,
            "mode": facts.mode,
            "size_bytes": kwargs["size_bytes"],
            "animated": facts.animated,
            "exif": facts.exif,
            "has_gps": facts.has_gps,
        }
