"""Avatar files: re-encoded to WebP on upload, recognised again before they are served.

An uploaded file is never stored as sent. Its pixels (first frame only, turned
upright by its EXIF orientation, scaled to fit ``AVATAR_EDGE``) are written to a
fresh lossy WebP, so nothing but pixels survives: no EXIF (GPS!), ICC profile,
comment, extra frame or bytes after the image, and no byte sequence an uploader
chose (a GIF that doubles as JavaScript or HTML loses everything that made it
so). Lossy WebP rather than PNG because PNG stores hard-to-compress pixel rows
almost verbatim, so crafted pixels could still carry chosen bytes; WebP is also
several times smaller for photos, keeps transparency, and every current browser
shows it. The file is stored under a random name with the ``.webp`` extension
(``users.models.avatar_path``) and served only as ``image/webp``
(``users.views.avatar``; with S3_BUCKET set, pages link a signed URL on the
bucket's origin instead, and the object is stored as ``image/webp``:
``common.media_storage``).
"""

from __future__ import annotations

import io
import re
from datetime import datetime

from django import forms
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from PIL import Image, ImageOps

from users.validators import AVATAR_FORMATS, reading_avatar, validate_avatar

AVATAR_FORMAT = "WEBP"
AVATAR_CONTENT_TYPE = "image/webp"
AVATAR_EXTENSION = ".webp"
AVATAR_FOLDER = "avatars"
# Twice the largest size a page shows (128 px on the profile), and room for
# high-density screens; larger uploads are scaled down to fit this square.
AVATAR_EDGE = 512
AVATAR_QUALITY = 85
# The only names ``avatar_path`` gives: 32 hex digits and the fixed extension.
STORED_NAME = re.compile(r"[0-9a-f]{32}" + re.escape(AVATAR_EXTENSION))
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class EncodedAvatar(ContentFile):  # type: ignore[type-arg]
    """WebP bytes written by ``avatar_encode``: the only thing a profile stores."""


def avatar_encode(upload: File[bytes]) -> EncodedAvatar:
    """Return ``upload``'s first frame as a fresh WebP, or raise ``ValidationError``.

    ``validate_avatar`` first refuses oversize files, other formats and pixel
    counts above AVATAR_MAX_PIXELS from the header alone; only then are pixels
    decoded (JPEGs at a reduced scale when they are larger than needed).
    """
    validate_avatar(upload)
    with reading_avatar(upload):
        with Image.open(upload, formats=sorted(AVATAR_FORMATS)) as image:
            # JPEGs decode at 1/2, 1/4 or 1/8 scale when that still leaves twice
            # the edge to scale from; other formats ignore this.
            image.draft(None, (2 * AVATAR_EDGE, 2 * AVATAR_EDGE))
            upright = ImageOps.exif_transpose(image)
        has_alpha = upright.mode in ALPHA_MODES or "transparency" in upright.info
        pixels = upright.convert("RGBA" if has_alpha else "RGB")
        pixels.thumbnail((AVATAR_EDGE, AVATAR_EDGE))
    # A new image holds the pixels and nothing else; WebP is written without
    # EXIF, ICC or XMP because none is passed to save().
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    buffer = io.BytesIO()
    clean.save(buffer, AVATAR_FORMAT, quality=AVATAR_QUALITY)
    return EncodedAvatar(buffer.getvalue(), name=f"avatar{AVATAR_EXTENSION}")


def is_webp(head: bytes) -> bool:
    """Whether ``head`` (the first 12 bytes of a file) opens a WebP container."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def stored_avatar_open(storage: Storage, name: str) -> File[bytes] | None:
    """Open the stored avatar ``name`` if it is one this module wrote, else None.

    Only names ``avatar_path`` gives are looked up (which also keeps the lookup
    inside the avatars folder), and only files that start as WebP are returned,
    so a file put there some other way is never served.
    """
    if not STORED_NAME.fullmatch(name):
        return None
    try:
        stored = storage.open(f"{AVATAR_FOLDER}/{name}", "rb")
    except FileNotFoundError:
        return None
    if not is_webp(stored.read(12)):
        stored.close()
        return None
    stored.seek(0)
    return stored


def stored_avatar_modified(storage: Storage, name: str) -> datetime | None:
    """When the stored avatar ``name`` was written, or None when there is no such avatar."""
    if not STORED_NAME.fullmatch(name):
        return None
    try:
        return storage.get_modified_time(f"{AVATAR_FOLDER}/{name}")
    except (FileNotFoundError, NotImplementedError):
        return None


class AvatarField(forms.FileField):
    """An avatar upload, cleaned into an ``EncodedAvatar`` (see ``avatar_encode``)."""

    def to_python(self, data: File[bytes] | None) -> EncodedAvatar | None:
        upload = super().to_python(data)
        if upload is None:
            return None
        return avatar_encode(upload)
