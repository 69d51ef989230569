import io
import os
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from users.models import Profile

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def png(size: tuple[int, int] = (64, 64), fmt: str = "PNG", name: str = "me.png") -> Any:
    buffer = io.BytesIO()
    # Noise, so the file does not compress to almost nothing.
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def bomb_png() -> Any:
    """A PNG whose header claims 30000 x 30000 pixels, in a few kilobytes."""
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")
    return SimpleUploadedFile("bomb.png", buffer.getvalue(), content_type="image/png")


def test_the_profile_page_needs_a_signed_in_user(client):
    response = client.get(reverse("users:profile"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_plain_post_saves_the_profile_and_redirects(client, user):
    client.force_login(user)
    response = client.post(
        reverse("users:profile"), {"full_name": "Dana Scully", "bio": "FBI", "avatar": png()}
    )
    assert response.status_code == 302
    profile = Profile.objects.get(user=user)
    assert profile.full_name == "Dana Scully"
    assert profile.avatar.name.startswith("avatars/") and profile.avatar.name.endswith(".webp")
    assert "me.png" not in profile.avatar.name
    page = client.get(reverse("users:profile")).content.decode()
    assert profile.avatar.url in page


def test_an_htmx_post_gets_only_the_profile_fragment(client, user):
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"full_name": "Dana", "bio": ""}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("{#") is False
    assert 'id="profile-panel"' in html
    assert "<html" not in html
    assert "Your profile was saved." in html
    assert "HX-Request" in response["Vary"]


def test_a_new_avatar_replaces_and_deletes_the_old_file(
    client, user, settings, django_capture_on_commit_callbacks
):
    client.force_login(user)
    client.post(reverse("users:profile"), {"avatar": png()})
    first = Profile.objects.get(user=user).avatar.name
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("users:profile"), {"avatar": png(fmt="JPEG", name="b.jpg")})
    second = Profile.objects.get(user=user).avatar.name
    assert first != second
    assert not (settings.MEDIA_ROOT / first).exists()
    assert (settings.MEDIA_ROOT / second).exists()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("x.png", b"this is not an image", "image/png"), "not an image"),
        (SimpleUploadedFile("x.pdf", b"%PDF-1.4 hello", "application/pdf"), "not an image"),
    ],
)
def test_an_avatar_that_is_not_an_image_is_refused(client, user, upload, message):
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"avatar": upload}, **HTMX)
    assert message in response.content.decode()
    assert not Profile.objects.get(user=user).avatar


def test_an_avatar_in_another_format_is_refused(client, user):
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"avatar": png(fmt="BMP", name="a.bmp")})
    assert "Use a JPEG, PNG, GIF or WebP image." in response.content.decode()


def test_a_truncated_avatar_is_refused_and_nothing_is_stored(client, user, settings):
    data = png(size=(200, 200)).read()
    client.force_login(user)
    upload = SimpleUploadedFile("cut.png", data[: len(data) // 2], content_type="image/png")
    response = client.post(reverse("users:profile"), {"avatar": upload}, **HTMX)
    assert "not an image we can read" in response.content.decode()
    assert not Profile.objects.get(user=user).avatar
    assert not (settings.MEDIA_ROOT / "avatars").exists()


def test_a_too_large_avatar_is_refused(client, user, settings):
    settings.AVATAR_MAX_BYTES = 1000
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"avatar": png(size=(300, 300))})
    assert "too large" in response.content.decode()
    assert not Profile.objects.get(user=user).avatar


def test_a_decompression_bomb_is_refused_without_being_decoded(client, user):
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"avatar": bomb_png()}, **HTMX)
    assert "too many pixels" in response.content.decode()
    assert not Profile.objects.get(user=user).avatar


def test_an_avatar_over_the_pixel_limit_is_refused(client, user, settings):
    settings.AVATAR_MAX_PIXELS = 100 * 100
    client.force_login(user)
    response = client.post(reverse("users:profile"), {"avatar": png(size=(200, 200))})
    assert "too many pixels" in response.content.decode()


def test_errors_are_tied_to_the_avatar_field(client, user):
    client.force_login(user)
    html = client.post(
        reverse("users:profile"), {"avatar": SimpleUploadedFile("x.png", b"nope", "image/png")}
    ).content.decode()
    assert 'aria-describedby="id_avatar_help id_avatar_errors"' in html


def test_an_uploaded_avatar_is_served_with_debug_off(client, user, settings):
    settings.DEBUG = False
    client.force_login(user)
    client.post(reverse("users:profile"), {"full_name": "Dana", "bio": "", "avatar": png()})
    url = Profile.objects.get(user=user).avatar.url
    client.logout()

    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (64, 64)
    # A path that leaves the avatars folder is refused (SuspiciousFileOperation: 400).
    assert client.get(url.replace("avatars/", "avatars/..%2F..%2F")).status_code in (400, 404)
    assert client.get(url + "-missing").status_code == 404


def test_an_unchanged_avatar_answers_not_modified(client, user):
    client.force_login(user)
    client.post(reverse("users:profile"), {"full_name": "", "bio": "", "avatar": png()})
    url = Profile.objects.get(user=user).avatar.url

    first = client.get(url)
    again = client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])

    assert first.status_code == 200
    assert again.status_code == 304
    assert client.head(url).status_code == 200
