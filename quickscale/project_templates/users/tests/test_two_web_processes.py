"""Two web processes behind one address behave as one: sessions, messages, lockout, uploads.

Each server is a uvicorn process of its own on its own port, on the test's
database (as two machines behind a load balancer); one browser's requests go
to whichever the test names. Rate limits, charges and the pricing copy across
processes are proven in ``api/tests/test_multiprocess.py``.
"""

from __future__ import annotations

import io
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
from PIL import Image

from common.testing.object_storage import ACCESS_KEY, REGION, SECRET_KEY, MediaBucket
from common.testing.redis import TEST_REDIS_URL, delete_keys, prefixed_cache_env
from common.testing.server import server_env, uvicorn
from common.testing.web_client import Answer, Upload, WebClient
from users.models import LoginLockout, Profile
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
PROFILE = "/accounts/profile/"
SAVED = "Your profile was saved."
LOCKOUT_ATTEMPTS = 4

Servers = Callable[..., tuple[int, int]]


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[Servers]:
    """``start(**settings)``: two servers (ports A and B) sharing one database and media folder."""
    with ExitStack() as stack:

        def start(**settings: str) -> tuple[int, int]:
            env = server_env(
                MEDIA_ROOT=str(tmp_path / "media"),
                ACCOUNT_LOCKOUT_ATTEMPTS=str(LOCKOUT_ATTEMPTS),
                **settings,
            )
            a, _ = stack.enter_context(uvicorn(env, tmp_path / "a.log"))
            b, _ = stack.enter_context(uvicorn(env, tmp_path / "b.log"))
            return a, b

        yield start


@pytest.fixture
def account(settings: Any) -> Any:
    """An account whose password the servers can check: hashed with the project's hasher.

    The suite hashes with MD5 for speed, a hasher the servers' settings do not list.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return make_user("ada@example.com")


@pytest.fixture
def redis_sessions(
    tmp_path: Path, redis_server: redis.Redis
) -> Iterator[tuple[dict[str, str], str]]:
    """Server settings for REDIS_SESSIONS on the test Redis (keys under a prefix of the test's)."""
    prefix = f"qs-test-{uuid.uuid4().hex[:12]}"
    env = {"REDIS_URL": TEST_REDIS_URL, "REDIS_SESSIONS": "true"}
    yield {**env, **prefixed_cache_env(tmp_path, prefix)}, prefix
    delete_keys(redis_server, f"{prefix}:*")


def sign_in(browser: WebClient, port: int, email: str, password: str) -> Answer:
    if "csrftoken" not in browser.cookies:
        assert browser.get(port, LOGIN).status == 200
    return browser.post(port, LOGIN, {"login": email, "password": password})


def signed_in(browser: WebClient, port: int) -> bool:
    answer = browser.get(port, PROFILE)
    assert answer.status in (200, 302), answer.status
    return answer.status == 200


@pytest.mark.parametrize("sessions", ["database", "redis"])
def test_a_session_started_on_one_process_is_signed_in_on_the_other(
    two_servers, account, redis_sessions, redis_server, sessions
):
    settings, prefix = redis_sessions
    a, b = two_servers(**(settings if sessions == "redis" else {}))
    browser = WebClient()
    assert not signed_in(browser, b)

    answer = sign_in(browser, a, account.email, PASSWORD)
    assert answer.status == 302, answer.text[:500]
    session_key = browser.cookies["sessionid"]
    page = browser.get(b, PROFILE)
    assert page.status == 200
    assert account.email in page.text
    if sessions == "redis":
        # cached_db: the session is in Redis (read from there), and in PostgreSQL.
        assert redis_server.exists(f"{prefix}:1:django.contrib.sessions.cached_db{session_key}")

    # Signing out on B ends the session everywhere: A refuses the cookie it had.
    old_cookie = WebClient()
    old_cookie.cookies = dict(browser.cookies)
    assert signed_in(old_cookie, a)
    assert browser.post(b, LOGOUT, {}).status == 302
    assert not signed_in(browser, a)
    assert not signed_in(old_cookie, a)
    if sessions == "redis":
        assert not redis_server.exists(f"{prefix}:1:django.contrib.sessions.cached_db{session_key}")


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, "PNG")
    return buffer.getvalue()


def save_profile_with_avatar(browser: WebClient, port: int) -> Answer:
    assert browser.get(port, PROFILE).status == 200
    return browser.post(
        port,
        PROFILE,
        {"full_name": "Ada Lovelace", "bio": ""},
        {"avatar": Upload("me.png", png("teal"), "image/png")},
    )


def avatar_src(page: Answer) -> str:
    (src,) = re.findall(r'<img class="avatar-image" src="([^"]+)"', page.text)
    return str(src).replace("&amp;", "&")


def test_a_message_and_an_avatar_saved_on_one_process_are_shown_by_the_other(
    two_servers, account, tmp_path
):
    a, b = two_servers()
    browser = WebClient()
    assert sign_in(browser, a, account.email, PASSWORD).status == 302

    saved = save_profile_with_avatar(browser, a)
    assert saved.status == 302, saved.text[:500]
    # The next page, served by B, shows the message A set; and only once.
    page = browser.get(b, saved.location)
    assert page.status == 200
    assert SAVED in page.text
    assert SAVED not in browser.get(a, PROFILE).text

    # The avatar A stored in the media folder is served by B.
    name = Profile.objects.get(user=account).avatar.name
    stored = (tmp_path / "media" / name).read_bytes()
    src = avatar_src(page)
    assert src == f"/media/{name}"
    image = browser.get(b, src)
    assert image.status == 200
    assert image.headers["Content-Type"] == "image/webp"
    assert image.body == stored


def test_an_avatar_uploaded_to_the_bucket_through_one_process_is_served_by_the_other(
    two_servers, account, media_bucket: MediaBucket, tmp_path
):
    a, b = two_servers(
        S3_BUCKET=media_bucket.name,
        S3_ENDPOINT_URL=media_bucket.endpoint,
        S3_REGION=REGION,
        S3_ACCESS_KEY_ID=ACCESS_KEY,
        S3_SECRET_ACCESS_KEY=SECRET_KEY,
    )
    browser = WebClient()
    assert sign_in(browser, a, account.email, PASSWORD).status == 302
    assert save_profile_with_avatar(browser, a).status == 302

    name = Profile.objects.get(user=account).avatar.name
    stored = media_bucket.body(name)
    assert not (tmp_path / "media" / name).exists()
    # B's page links a signed URL on the bucket's origin, and it fetches the object.
    src = avatar_src(browser.get(b, PROFILE))
    assert src.startswith(f"{media_bucket.endpoint}/{media_bucket.name}/{name}?")
    with urllib.request.urlopen(src, timeout=10) as response:
        assert response.read() == stored
    # B's own avatar route reads it from the bucket too.
    image = browser.get(b, f"/media/{name}")
    assert image.status == 200
    assert image.body == stored


def test_failed_sign_ins_spread_over_both_processes_lock_the_account_at_the_set_count(
    two_servers, account
):
    a, b = two_servers()
    browser = WebClient()
    # 3 failures, alternating: neither process locks on its own share.
    for port in (a, b, a):
        answer = sign_in(browser, port, account.email, "wrong-password")
        assert answer.status == 200, answer.status
        assert "Too many failed sign-ins" not in answer.text
    # The 4th, on B, reaches ACCOUNT_LOCKOUT_ATTEMPTS counted across both.
    answer = sign_in(browser, b, account.email, "wrong-password")
    assert answer.status == 429
    assert "Too many failed sign-ins" in answer.text
    row = LoginLockout.objects.get(scope=LoginLockout.Scope.ACCOUNT, key=account.email)
    assert (row.failures, row.locked_until is not None) == (LOCKOUT_ATTEMPTS, True)

    # Locked on both processes, even with the right password, for a fresh browser too.
    for port in (a, b):
        other_browser = WebClient()
        assert sign_in(other_browser, port, account.email, PASSWORD).status == 429
        assert not signed_in(other_browser, port)
