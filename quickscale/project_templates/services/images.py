"""Reading an uploaded image safely, for every service that takes one.

An upload is read into memory (never stored) with a size limit, opened only by
Pillow's readers for an allow-list of formats, and decoded only when the pixels
it declares fit SERVICE_MAX_IMAGE_PIXELS, so a small file that declares a
gigantic image (a decompression bomb) is refused without being expanded.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.files import File
from PIL import Image, UnidentifiedImageError

from services.exceptions import ServiceInputError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
FIELD = "image"


def read_upload(value: Any) -> bytes:
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


@contextmanager
def opened_image(data: bytes) -> Iterator[Image.Image]:
    """Open ``data`` lazily (header only) or raise ``ServiceInputError`` saying why not."""
    with warnings.catch_warnings():
        # Pillow warns (then errors) about images above its own, higher limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels(None) from None
        except (UnidentifiedImageError, OSError):
            raise ServiceInputError.for_field(
                FIELD,
                "This file is not an image Pillow can read. "
                f"Upload one of: {', '.join(sorted(ALLOWED_FORMATS))}.",
            ) from None
        with image:
            yield image


def load_pixels(image: Image.Image) -> None:
    """Decode ``image`` at its current size, refusing more pixels than the limit."""
    if image.width * image.height > settings.SERVICE_MAX_IMAGE_PIXELS:
        raise too_many_pixels(image.size)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(image.size) from None
    except (OSError, SyntaxError, ValueError):
        raise ServiceInputError.for_field(
            FIELD, "The image is truncated or corrupt. Upload the complete file."
        ) from None


def open_image(data: bytes) -> Image.Image:
    """Return ``data`` decoded in full, within the pixel limit, or raise ``ServiceInputError``."""
    with opened_image(data) as image:
        load_pixels(image)
        return image.copy()


def too_many_pixels(size: tuple[int, int] | None) -> ServiceInputError:
    limit = settings.SERVICE_MAX_IMAGE_PIXELS
    declared = f"declares {size[0]} x {size[1]} pixels" if size else "declares too many pixels"
    return ServiceInputError.for_field(
        FIELD,
        f"The image {declared}; this service decodes at most {limit} pixels "
        "(a decompression bomb?). Upload a smaller image.",
    )


def _too_big(size: int) -> ServiceInputError:
    return ServiceInputError.for_field(
        FIELD, f"The file has {size} bytes; the limit is {MAX_IMAGE_BYTES} (10 MB)."
    )
