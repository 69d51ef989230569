"""Avatars on S3-compatible object storage (S3_BUCKET set), against a real S3 server.

moto's S3 server runs on localhost (``common.testing.object_storage``); the app
reaches it over HTTP through boto3 and django-storages as it would reach AWS. An
avatar is stored as the re-encoded WebP with a fixed image type, pages link it
through a signed URL on the bucket's origin that states a short expiry, nothing
the app did not write is served, and a replaced or cleared avatar's object goes.
"""

import io
import re
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from PIL import Image

from users.models import Profile
from users.tests.factories import PASSWORD
from users.tests.test_avatar_security import (
    SCRIPT_TRACES,
    STORED_NAME,
    gif_html_polyglot,
    upload_avatar,
)

pytestmark = pytest.mark.django_db


def png_bytes(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), colour).save(buffer, "PNG")
    return buffer.getvalue()


def avatar_src(client) -> str:
    page = client.get(reverse("users:profile")).content.decode()
    (src,) = re.findall(r'<img class="avatar-image" src="([^"]+)"', page)
    return str(src).replace("&amp;", "&")


def test_an_avatar_is_stored_in_the_bucket_as_an_inline_webp_and_not_on_disk(
    client, user, settings, media_bucket
):
    profile = upload_avatar(client, user, "a.html", gif_html_polyglot())

    assert STORED_NAME.fullmatch(profile.avatar.name)
    head = media_bucket.head(profile.avatar.name)
    assert head is not None
    assert head["ContentType"] == "image/webp"
    assert head["ContentDisposition"] == "inline"
    stored = media_bucket.body(profile.avatar.name)
    assert Image.open(io.BytesIO(stored)).format == "WEBP"
    for trace in SCRIPT_TRACES:
        assert trace not in stored
    assert not (Path(settings.MEDIA_ROOT) / "avatars").exists()


def test_the_page_links_a_signed_url_on_the_buckets_origin_that_expires_soon(
    client, user, media_bucket
):
    profile = upload_avatar(client, user, "a.png", png_bytes())

    src = avatar_src(client)

    url = urlsplit(src)
    bucket = urlsplit(media_bucket.endpoint)
    assert (url.scheme, url.netloc) == (bucket.scheme, bucket.netloc)
    assert url.path == f"/{media_bucket.name}/{profile.avatar.name}"
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(media_bucket.expire_seconds)]
    assert query["X-Amz-Signature"][0]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    # The page's policy lets the browser load it from there.
    policy = client.get(reverse("users:profile"))["Content-Security-Policy"]
    (img_src,) = [d.split()[1:] for d in policy.split(";") if d.split()[:1] == ["img-src"]]
    assert f"{bucket.scheme}://{bucket.netloc}" in img_src
    # The browser's request: straight to the bucket, answered as the stored image.
    with urllib.request.urlopen(src, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/webp"
        assert response.headers["Content-Disposition"] == "inline"
        assert Image.open(io.BytesIO(response.read())).format == "WEBP"


def test_the_avatar_route_still_answers_with_the_stored_image_from_the_bucket(
    client, user, media_bucket
):
    profile = upload_avatar(client, user, "a.png", png_bytes())
    name = profile.avatar.name.removeprefix("avatars/")

    response = client.get(reverse("avatar", args=[name]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Disposition"] == f'inline; filename="{name}"'
    assert response["Last-Modified"]
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).format == "WEBP"


@pytest.mark.parametrize(
    "key",
    ["avatars/" + "ab" * 16 + ".webp", "avatars/page.html", "page.html"],
)
def test_an_object_the_app_did_not_write_is_not_served(client, user, media_bucket, key):
    media_bucket.client.put_object(
        Bucket=media_bucket.name,
        Key=key,
        Body=b"<script>alert(1)</script>",
        ContentType="text/html",
    )

    response = client.get(f"/media/{key}")

    assert response.status_code == 404
    assert b"alert(1)" not in response.content
    # No page links it: the profile shows no avatar at all.
    client.force_login(user)
    page = client.get(reverse("users:profile")).content.decode()
    assert media_bucket.endpoint not in page
    assert 'class="avatar-image"' not in page


def test_a_missing_avatar_is_a_404_not_a_500(client, media_bucket):
    assert client.get(reverse("avatar", args=["cd" * 16 + ".webp"])).status_code == 404


def test_replacing_then_clearing_an_avatar_deletes_each_old_object(
    client, user, media_bucket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = upload_avatar(client, user, "a.png", png_bytes("red")).avatar.name
    with django_capture_on_commit_callbacks(execute=True):
        second = upload_avatar(client, user, "b.png", png_bytes("blue")).avatar.name
    assert media_bucket.head(first) is None
    assert media_bucket.head(second) is not None

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("users:profile"), {"full_name": "", "bio": "", "clear_avatar": "on"}
        )
    assert response.status_code == 302
    assert not Profile.objects.get(user=user).avatar
    assert media_bucket.head(second) is None


def test_deleting_the_account_deletes_its_avatar_object(
    client, user, media_bucket, django_capture_on_commit_callbacks
):
    name = upload_avatar(client, user, "a.png", png_bytes()).avatar.name

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("users:delete"), {"password": PASSWORD})

    assert response.status_code == 302
    assert media_bucket.head(name) is None
