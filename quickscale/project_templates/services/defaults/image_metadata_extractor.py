"""Technical metadata of an image with Pillow: format, size, mode, EXIF, GPS presence.

The input is checked before anything is decoded: a size limit on the file, a
format allow-list, and a pixel limit read from the header, so a small file
that declares a gigantic image (a decompression bomb) is refused without
allocating it. Truncated or corrupt files are refused when decoded.
"""

from __future__ import annotations

import io
import warnings
from decimal import Decimal
from typing import Any

from django.core.files import File
from PIL import ExifTags, Image, UnidentifiedImageError

from services.base import BaseService
from services.decorators import register_service
from services.exceptions import ServiceInputError
from services.forms import ImageInputForm
from services.validation import only_fields
from users.models import CustomUser

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
MAX_EXIF_FIELDS = 60
MAX_EXIF_VALUE_CHARS = 120
FIELD = "image"


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


def open_image(data: bytes) -> Image.Image:
    """Decode ``data`` into a loaded image or raise ``ServiceInputError`` saying why not."""
    with warnings.catch_warnings():
        # Pillow warns (then errors) about huge images; our own lower limit decides first.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb() from None
        except (UnidentifiedImageError, OSError):
            raise ServiceInputError.for_field(
                FIELD, "This file is not an image Pillow can read. Upload a JPEG, PNG or WebP."
            ) from None
        if image.format not in ALLOWED_FORMATS:
            raise ServiceInputError.for_field(
                FIELD,
                f"Images in {image.format} format are not accepted. "
                f"Upload one of: {', '.join(sorted(ALLOWED_FORMATS))}.",
            )
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _bomb()
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb() from None
        except (OSError, SyntaxError, ValueError):
            raise ServiceInputError.for_field(
                FIELD, "The image is truncated or corrupt. Upload the complete file."
            ) from None
    return image


def _bomb() -> ServiceInputError:
    return ServiceInputError.for_field(
        FIELD,
        f"The image declares more than {MAX_IMAGE_PIXELS} pixels (a decompression bomb?). "
        "Upload a smaller image.",
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
        return {FIELD: open_image(data), "size_bytes": len(data)}

    def summarize_input(self, cleaned: dict[str, Any]) -> str:
        image: Image.Image = cleaned[FIELD]
        return f"{image.format} {image.width}x{image.height}, {cleaned['size_bytes']} bytes"

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        image: Image.Image = kwargs[FIELD]
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo) if ExifTags.IFD.GPSInfo in exif else {}
        return {
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "mode": image.mode,
            "size_bytes": kwargs["size_bytes"],
            "animated": bool(getattr(image, "is_animated", False)),
            "exif": _exif_fields(exif),
            "has_gps": bool(gps),
        }
