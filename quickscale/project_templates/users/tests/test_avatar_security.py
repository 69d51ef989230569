"""Avatars are re-encoded, stored under server-chosen names and served only as images.

A GIF can double as JavaScript or HTML (Pillow parses the GIF, a browser runs the
rest); these tests upload such polyglots and check that nothing of them survives
storage and that the media route never answers with anything but the fixed image
type, locked down so a browser neither sniffs nor runs it.
"""

import io
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageCms

from users.models import Profile

pytestmark = pytest.mark.django_db

STORED_NAME = re.compile(r"avatars/[0-9a-f]{32}\.webp")
SCRIPT_TRACES = (b"alert(", b"<script", b"*/=0", b"GIF8", b"Exif", b"sRGB")


def gif_javascript_polyglot() -> bytes:
    """``GIF89a/*<a GIF>*/=0;alert(1)``: a GIF to Pillow, a script to a browser.

    The logical screen width is the two bytes ``/*`` (10799 px), which opens a
    JavaScript comment that the bytes after the GIF trailer close.
    """
    screen = b"/*" + struct.pack("<H", 300) + b"\x80\x00\x00"  # 2-colour global palette
    palette = b"\x00\x00\x00\xff\x00\x00"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + palette + frame + b";" + b"*/=0;alert(1)"


def gif_html_polyglot() -> bytes:
    """A real GIF followed by a script tag, as a browser reading it as HTML would run."""
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), "green").save(buffer, "GIF")
    return buffer.getvalue() + b'<script src="/media/avatars/x.js"></script>'


POLYGLOTS = [
    pytest.param("a.js", gif_javascript_polyglot(), id="gif-javascript named a.js"),
    pytest.param("a.html", gif_html_polyglot(), id="gif-html named a.html"),
]


def upload_avatar(client: Any, user: Any, name: str, data: bytes) -> Profile:
    client.force_login(user)
    upload = SimpleUploadedFile(name, data, content_type="image/gif")
    response = client.post(reverse("users:profile"), {"full_name": "", "bio": "", "avatar": upload})
    assert response.status_code == 302, response.content.decode()[:500]
    return Profile.objects.get(user=user)


def stored_bytes(settings: Any, profile: Profile) -> bytes:
    path: Path = Path(settings.MEDIA_ROOT) / profile.avatar.name
    return path.read_bytes()


@pytest.mark.parametrize(("name", "data"), POLYGLOTS)
def test_a_polyglot_upload_is_stored_as_a_clean_webp_under_a_server_name(
    client, user, settings, name, data
):
    profile = upload_avatar(client, user, name, data)

    assert STORED_NAME.fullmatch(profile.avatar.name)
    stored = stored_bytes(settings, profile)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "WEBP"
        image.load()
    for trace in SCRIPT_TRACES:
        assert trace not in stored


@pytest.mark.parametrize(("name", "data"), POLYGLOTS)
def test_an_avatar_is_served_only_as_webp_with_nosniff_inline_and_no_policy(
    client, user, settings, name, data
):
    settings.DEBUG = False
    profile = upload_avatar(client, user, name, data)
    client.logout()

    response = client.get(profile.avatar.url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    filename = profile.avatar.name.removeprefix("avatars/")
    assert response["Content-Disposition"] == f'inline; filename="{filename}"'
    assert response["Content-Security-Policy"] == "default-src 'none'"
    body = b"".join(response.streaming_content)
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    assert b"alert(" not in body and b"<script" not in body


def test_everything_but_the_first_frames_pixels_is_stripped(client, user, settings):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "QuickCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (40, 30), "blue").save(
        buffer, "JPEG", exif=exif, icc_profile=srgb, comment=b"<script>alert(2)</script>"
    )
    data = buffer.getvalue() + b"<script>alert(3)</script>"

    profile = upload_avatar(client, user, "photo.jpg", data)

    stored = stored_bytes(settings, profile)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "WEBP"
        assert not image.getexif()
        assert "icc_profile" not in image.info and "exif" not in image.info
        assert image.size == (40, 30)
    riff_size = struct.unpack("<I", stored[4:8])[0]
    assert riff_size + 8 == len(stored), "bytes after the WebP container"
    for trace in SCRIPT_TRACES:
        assert trace not in stored


def test_only_the_first_frame_of_an_animation_is_kept(client, user, settings):
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)

    profile = upload_avatar(client, user, "moving.gif", buffer.getvalue())

    with Image.open(io.BytesIO(stored_bytes(settings, profile))) as image:
        assert image.format == "WEBP"
        assert getattr(image, "n_frames", 1) == 1
        red, green, blue = image.convert("RGB").getpixel((16, 16))  # type: ignore[misc]
        assert red > 200 and green < 60 and blue < 60


def test_a_large_avatar_is_scaled_down_keeping_its_proportions(client, user, settings):
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), "orange").save(buffer, "PNG")

    profile = upload_avatar(client, user, "big.png", buffer.getvalue())

    with Image.open(io.BytesIO(stored_bytes(settings, profile))) as image:
        assert image.size == (512, 341)


def test_the_exif_orientation_is_applied_before_the_exif_is_dropped(client, user, settings):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "navy").save(buffer, "JPEG", exif=exif)

    profile = upload_avatar(client, user, "phone.jpg", buffer.getvalue())

    with Image.open(io.BytesIO(stored_bytes(settings, profile))) as image:
        assert image.size == (20, 40)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("legacy.js", b"GIF89a/*x*/=0;alert(1)", id="javascript"),
        pytest.param("0123456789abcdef0123456789abcdef.js", b"alert(1)", id="javascript random"),
        pytest.param("0123456789abcdef0123456789abcdef.html", b"<script>1</script>", id="html"),
        pytest.param("0123456789abcdef0123456789abcdef.svg", b"<svg onload=alert(1)>", id="svg"),
        pytest.param("0123456789abcdef0123456789abcdef.webp", b"<script>1</script>", id="fake"),
    ],
)
def test_a_stored_file_we_did_not_write_is_never_served(client, settings, name, content):
    settings.DEBUG = False
    folder = Path(settings.MEDIA_ROOT) / "avatars"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)

    response = client.get(f"/media/avatars/{name}")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith(("text/javascript", "image/svg"))
    assert content not in response.content


def test_an_avatar_uploaded_in_the_admin_is_re_encoded_too(admin_client, user, settings):
    url = reverse("admin:users_customuser_change", args=[user.pk])
    form = {
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "0",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-full_name": "Dana",
        "profile-0-bio": "",
        "profile-0-user": str(user.pk),
        "profile-0-avatar": SimpleUploadedFile("me.gif", gif_html_polyglot()),
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    profile = Profile.objects.get(user=user)
    assert STORED_NAME.fullmatch(profile.avatar.name)
    stored = stored_bytes(settings, profile)
    assert Image.open(io.BytesIO(stored)).format == "WEBP"
    assert b"<script" not in stored
