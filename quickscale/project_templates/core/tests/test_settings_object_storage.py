"""S3_BUCKET switches media to object storage; the other S3_* variables configure it.

Each case loads the settings in a fresh process with the given environment, as the
web and worker processes load them, then builds the default storage from them.
"""

from __future__ import annotations

import json
import os

import pytest

from common.bucket_urls import policy_with_image_origin
from common.testing.process import run_python

SHOW = (
    "import json, django; django.setup()\n"
    "from django.core.files.storage import default_storage as d\n"
    "d._setup()\n"
    "s = d._wrapped\n"
    "print(json.dumps([type(s).__name__, getattr(s, 'bucket_name', None),"
    " getattr(s, 'endpoint_url', None), getattr(s, 'region_name', None),"
    " getattr(s, 'access_key', None), getattr(s, 'querystring_expire', None),"
    " getattr(s, 'addressing_style', None), getattr(s, 'default_acl', None)]))"
)
S3 = {
    "S3_BUCKET": "media",
    "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_REGION": "eu-west-1",
    "S3_ACCESS_KEY_ID": "id",
    "S3_SECRET_ACCESS_KEY": "secret",
}


def _load(**env: str) -> tuple[int, str, str]:
    base = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        **dict.fromkeys([*S3, "S3_URL_EXPIRE_SECONDS"], ""),
    }
    result = run_python(["-c", SHOW], {**base, **env}, timeout=60)
    lines = result.stdout.strip().splitlines()
    return result.returncode, lines[-1] if lines else "", result.stderr


def test_without_a_bucket_media_stays_on_local_disk():
    returncode, out, err = _load()
    assert returncode == 0, err
    assert json.loads(out)[0] == "FileSystemStorage"


def test_a_bucket_makes_media_a_private_signed_s3_storage():
    returncode, out, err = _load(**S3, S3_URL_EXPIRE_SECONDS="90")
    assert returncode == 0, err
    assert json.loads(out) == [
        "MediaStorage",
        "media",
        "http://127.0.0.1:9000",
        "eu-west-1",
        "id",
        90,
        "path",
        None,
    ]


def test_the_signed_urls_last_five_minutes_unless_told():
    returncode, out, err = _load(S3_BUCKET="media")
    assert returncode == 0, err
    assert json.loads(out)[1:6] == ["media", None, None, None, 300]


ORIGIN = (
    "import json, django; django.setup()\n"
    "from urllib.parse import urlsplit\n"
    "from django.conf import settings\n"
    "from django.core.files.storage import default_storage\n"
    "url = urlsplit(default_storage.url('avatars/x.webp'))\n"
    "img = [d.split()[1:] for d in settings.CONTENT_SECURITY_POLICY.split(';')"
    " if d.split()[:1] == ['img-src']][0]\n"
    "print(json.dumps([f'{url.scheme}://{url.netloc}', img]))"
)


@pytest.mark.parametrize(
    "env",
    [
        {"S3_ENDPOINT_URL": "https://minio.example.net:9000", "S3_REGION": "us-east-1"},
        {"S3_ENDPOINT_URL": "", "S3_REGION": "eu-west-1"},
        {"S3_ENDPOINT_URL": "", "S3_REGION": "eu-west-1", "S3_BUCKET": "media.example.com"},
        {"S3_ENDPOINT_URL": "", "S3_REGION": ""},
    ],
    ids=["endpoint", "aws region", "aws dotted bucket", "aws no region"],
)
def test_the_sites_policy_lets_pages_load_images_from_where_the_signed_urls_point(env):
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings", "S3_URL_EXPIRE_SECONDS": ""}
    result = run_python(["-c", ORIGIN], {**base, **S3, **env}, timeout=60)
    assert result.returncode == 0, result.stderr
    url_origin, img_src = json.loads(result.stdout.strip().splitlines()[-1])
    assert url_origin.startswith("http") and url_origin in img_src
    assert img_src[:2] == ["'self'", "data:"]


def test_a_policy_without_img_src_is_refused():
    with pytest.raises(ValueError, match="img-src"):
        policy_with_image_origin("default-src 'self'", "https://bucket.example")
    assert policy_with_image_origin("img-src 'self'; font-src 'self'", "https://b.example") == (
        "img-src 'self' https://b.example; font-src 'self'"
    )


def test_an_expiry_out_of_range_or_a_bad_endpoint_refuses_to_start():
    for env, message in [
        ({"S3_URL_EXPIRE_SECONDS": "0"}, "S3_URL_EXPIRE_SECONDS must be 1 to 604800"),
        ({"S3_URL_EXPIRE_SECONDS": "604801"}, "S3_URL_EXPIRE_SECONDS must be 1 to 604800"),
        ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL"),
    ]:
        returncode, _, err = _load(**{**S3, **env})
        assert returncode != 0, env
        assert message in err, err[-500:]
