import re

import pytest
from django.urls import reverse

from api.models import APIKey
from api.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_keys_page_needs_a_signed_in_user(client):
    assert client.get(reverse("api_keys:list")).status_code == 302


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(signed_in, user):
    response = signed_in.post(reverse("api_keys:list"), {"name": "laptop"})
    html = response.content.decode()
    key = APIKey.objects.get(user=user)
    start = html.index(f"qs_{key.prefix}_")
    full = html[start : html.index("<", start)]
    secret = full.split("_", 2)[2]
    assert len(secret) > 30
    assert secret not in key.secret_hash
    assert signed_in.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 200
    assert secret not in signed_in.get(reverse("api_keys:list")).content.decode()


def test_a_key_needs_a_name(signed_in):
    assert signed_in.post(reverse("api_keys:list"), {"name": ""}).status_code == 422
    assert not APIKey.objects.exists()


def test_revoking_a_key_makes_it_401_and_shows_it_revoked(signed_in, user):
    key, text = api_key_create(user, name="ci")
    response = signed_in.post(reverse("api_keys:revoke", args=[key.pk]), follow=True)
    assert "Revoked" in response.content.decode()
    assert signed_in.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {text}").status_code == 401


def test_nobody_can_revoke_someone_elses_key(signed_in, other_user):
    key, _ = api_key_create(other_user, name="theirs")
    assert signed_in.post(reverse("api_keys:revoke", args=[key.pk])).status_code == 404
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


def test_the_page_shows_each_keys_call_count(signed_in, user, default_services):
    _, text = api_key_create(user, name="counted")
    for _ in range(3):
        signed_in.post(
            "/api/text/",
            {"operation": "count", "text": "a"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {text}",
        )
    html = signed_in.get(reverse("api_keys:list")).content.decode()
    row = html[html.index("counted") :]
    assert '<td data-label="Calls" class="has-text-right">3</td>' in row[: row.index("</tr>")]


def test_a_keys_call_count_includes_the_jobs_it_queued(signed_in, user, default_services):
    _, text = api_key_create(user, name="batches")
    for body in (
        {"input": {"text": "a b"}, "async": True},  # a job
        {"input": {"text": "a b"}},  # a direct call
        {"input": {"text": "a b"}},
    ):
        signed_in.post(
            "/api/services/demo_free_service/run",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {text}",
        )
    html = signed_in.get(reverse("api_keys:list")).content.decode()
    row = html[html.index("batches") :]
    assert '<td data-label="Calls" class="has-text-right">3</td>' in row[: row.index("</tr>")]


def test_every_column_of_the_key_table_has_a_header_screen_readers_read(signed_in, user):
    api_key_create(user, name="ci")

    html = signed_in.get(reverse("api_keys:list")).content.decode()

    head = html[html.index('id="key-table"') :]
    head = head[head.index("<thead>") : head.index("</thead>")]
    headers = re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
    assert headers[-1] == '<span class="is-sr-only">Actions</span>'
    assert all(re.sub(r"<[^>]+>", "", header).strip() for header in headers)
