"""Django admin for API keys: read-only, secrets never shown, bulk revoke."""

import pytest
from django.urls import reverse

from api.models import APIKey
from api.services import api_key_create
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_api_keys_are_revoked_in_bulk_and_their_secret_is_never_shown(superuser_client):
    owner = make_user()
    key, raw = api_key_create(owner, name="ci")

    page = superuser_client.get(reverse("admin:api_apikey_change", args=[key.pk]))
    assert page.status_code == 200
    assert key.secret_hash.encode() not in page.content
    assert raw.encode() not in page.content

    superuser_client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [str(key.pk)]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_api_keys_cannot_be_added_or_deleted_in_the_admin(superuser_client):
    key, _ = api_key_create(make_user(), name="ci")

    assert superuser_client.get(reverse("admin:api_apikey_add")).status_code == 403
    delete = superuser_client.post(
        reverse("admin:api_apikey_delete", args=[key.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert APIKey.objects.filter(pk=key.pk).exists()
