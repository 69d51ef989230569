"""Technical metadata of an image with Pillow: format, size, mode, EXIF, GPS presence.

The upload is read into memory and never stored. It is checked before any
pixel is decoded: a size limit on the file, a format allow-list, and a limit on
the pixels a decode would allocate (SERVICE_MAX_IMAGE_PIXELS), taken from the
header, so a small file that declares a gigantic image (a decompression bomb)
is refused without being expanded. Everything reported comes from the header;
the pixels are decoded once, only to refuse a truncated or corrupt file, and
JPEGs (most photos) are decoded at 1/8 scale for that, which reads every byte
of the image but allocates 64 times less.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files import File
from PIL import ExifTags, Image, UnidentifiedImageError

from services.base import BaseService
from services.decorators import register_service
from services.exceptions import ServiceInputError
from services.forms import ImageInputForm
from services.validation import only_fields
from users.models import CustomUser

MAX_IMAGE_BYTES = 10 * 1024 * 1024
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
MAX_EXIF_FIELDS = 60
MAX_EXIF_VALUE_CHARS = 120
FIELD = "image"


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


def _read(value: Any) -> bytes:
    """Return the bytes of an uploaded file (or bytes), refusing oversize input unread."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, File):
        if value.size is not None and value.size > MAX_IMAGE_BYTES:
            raise _too_big(value.size)
        value.seek(0)
        data = value.read(MAX_IMAGE_BYTES + 1)
    else:
        raise ServiceInputError.for_field(FIELD, "Upload an image file.")
    if not data:
        raise ServiceInputError.for_field(FIELD, "The file is empty. Upload an image.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_big(len(data))
    return data


def _too_big(size: int) -> ServiceInputError:
    return ServiceInputError.for_field(
        FIELD, f"The file has {size} bytes; the limit is {MAX_IMAGE_BYTES} (10 MB)."
    )


def image_facts(data: bytes) -> ImageFacts:
    """Read what the service reports from ``data``, or raise ``ServiceInputError`` saying why not.

    The pixel limit is checked on the size the decode would have (a JPEG's
    reduced one) before anything is decoded.
    """
    with warnings.catch_warnings():
        # Pillow warns (then errors) about images above its own, higher limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb(None) from None
        except (UnidentifiedImageError, OSError):
            raise ServiceInputError.for_field(
                FIELD,
                "This file is not an image Pillow can read. "
                f"Upload one of: {', '.join(sorted(ALLOWED_FORMATS))}.",
            ) from None
        with image:
            width, height, mode = image.width, image.height, image.mode
            animated = bool(getattr(image, "is_animated", False))
            image.draft(None, (1, 1))  # JPEG: decode at the smallest scale; others: no-op
            if image.width * image.height > settings.SERVICE_MAX_IMAGE_PIXELS:
                raise _bomb((width, height))
            try:
                image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise _bomb((width, height)) from None
            except (OSError, SyntaxError, ValueError):
                raise ServiceInputError.for_field(
                    FIELD, "The image is truncated or corrupt. Upload the complete file."
                ) from None
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


def _bomb(size: tuple[int, int] | None) -> ServiceInputError:
    limit = settings.SERVICE_MAX_IMAGE_PIXELS
    declared = f"declares {size[0]} x {size[1]} pixels" if size else "declares too many pixels"
    return ServiceInputError.for_field(
        FIELD,
        f"The image {declared}; this service decodes at most {limit} pixels "
        "(a decompression bomb?). Upload a smaller image.",
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

    default_credit_cost = Decimal("10.00")
    description = "Image metadata: format, dimensions, mode, EXIF fields and whether GPS is set."
    form_class = ImageInputForm

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {FIELD})
        data = _read(inputs.get(FIELD))
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
