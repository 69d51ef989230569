"""Nothing under MEDIA_ROOT has a URL but the avatars' own route, in development too.

Uploaded files other than avatars are never stored; a file that lands in the media
folder anyway (a copy, a leftover) must not be served with a type guessed from its
name, which would let it run as a page or a script on the site's origin.
"""

import importlib
from pathlib import Path

import pytest
from django.urls import clear_url_caches

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls_built_in_development(settings, monkeypatch):
    """Rebuild the root URLconf with DEBUG on, as `runserver` in development sees it."""
    import core.urls

    # The API registers its URL namespace once per process; this rebuild is a second.
    monkeypatch.setenv("NINJA_SKIP_REGISTRY", "1")
    settings.DEBUG = True
    importlib.reload(core.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(core.urls)
    clear_url_caches()


@pytest.mark.parametrize("path", ["page.html", "avatars/../page.html", "other/code.js"])
def test_no_other_media_file_is_served_in_development(
    client, settings, urls_built_in_development, path
):
    media = Path(settings.MEDIA_ROOT)
    for name in ("page.html", "other/code.js"):
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(b"<script>alert(1)</script>")

    response = client.get(f"/media/{path}")

    assert response.status_code == 404
    assert b"alert(1)" not in response.content
