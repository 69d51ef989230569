"""Password complexity and avatar checks."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from PIL import Image, UnidentifiedImageError

CHARACTER_CLASSES = (
    ("lowercase letters", re.compile(r"[a-z]")),
    ("uppercase letters", re.compile(r"[A-Z]")),
    ("digits", re.compile(r"[0-9]")),
    ("symbols", re.compile(r"[^a-zA-Z0-9]")),
)


class ComplexityValidator:
    """Require a minimum length and characters from several classes.

    ``min_length`` and ``min_classes`` default to PASSWORD_MIN_LENGTH and
    PASSWORD_MIN_CHARACTER_CLASSES (of: lowercase, uppercase, digits, symbols).
    """

    def __init__(self, min_length: int | None = None, min_classes: int | None = None) -> None:
        self.min_length = min_length or settings.PASSWORD_MIN_LENGTH
        self.min_classes = min_classes or settings.PASSWORD_MIN_CHARACTER_CLASSES

    def validate(self, password: str, user: Any = None) -> None:
        errors = []
        if len(password) < self.min_length:
            errors.append(
                ValidationError(
                    "This password is too short. It must contain at least %(min)d characters.",
                    code="password_too_short",
                    params={"min": self.min_length},
                )
            )
        present = sum(1 for _, pattern in CHARACTER_CLASSES if pattern.search(password))
        if present < self.min_classes:
            errors.append(
                ValidationError(
                    "Use at least %(count)d of: lowercase letters, uppercase letters, "
                    "digits, symbols.",
                    code="password_too_simple",
                    params={"count": self.min_classes},
                )
            )
        if errors:
            raise ValidationError(errors)

    def get_help_text(self) -> str:
        return (
            f"At least {self.min_length} characters, with at least {self.min_classes} of: "
            "lowercase letters, uppercase letters, digits, symbols."
        )


AVATAR_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}


@contextmanager
def reading_avatar(upload: "File[bytes]") -> Iterator[None]:
    """Read ``upload`` from its start; Pillow's refusals become the form's errors.

    The upload is rewound afterwards, whatever happened, for the next reader.
    """
    try:
        upload.seek(0)
        yield
    except ValidationError:
        raise
    except Image.DecompressionBombError:
        raise ValidationError(
            "The image has too many pixels; use a smaller one.", code="avatar_too_many_pixels"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(
            "This file is not an image we can read; use a JPEG, PNG, GIF or WebP image.",
            code="avatar_not_image",
        ) from None
    finally:
        upload.seek(0)


def validate_avatar(upload: "File[bytes]") -> None:
    """Refuse anything but a small JPEG/PNG/GIF/WebP of a sane pixel count.

    The size is checked before Pillow reads anything; the pixel count is read from
    the header before any pixel is decoded, so a decompression bomb (a tiny file
    that expands to gigabytes) is refused without being expanded.
    """
    max_bytes = settings.AVATAR_MAX_BYTES
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(
            "The image is too large (at most %(mb).1f MB).",
            code="avatar_too_large",
            params={"mb": max_bytes / 1024 / 1024},
        )
    with reading_avatar(upload), Image.open(upload) as image:
        width, height = image.size
        if width * height > settings.AVATAR_MAX_PIXELS:
            raise ValidationError(
                "The image has too many pixels (%(w)d x %(h)d); use a smaller one.",
                code="avatar_too_many_pixels",
                params={"w": width, "h": height},
            )
        if image.format not in AVATAR_FORMATS:
            raise ValidationError("Use a JPEG, PNG, GIF or WebP image.", code="avatar_bad_format")
        image.verify()
