"""``common.sessions``: Django's database sessions with a hand-written load."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from common.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_project_uses_this_store():
    assert settings.SESSION_ENGINE == "common.sessions"


def test_a_saved_session_loads_back_with_its_data():
    store = SessionStore()
    store["cart"] = {"credits": 100}
    store.save()

    loaded = SessionStore(session_key=store.session_key)

    assert loaded["cart"] == {"credits": 100}
    assert loaded.session_key == store.session_key


def test_an_expired_session_loads_empty_and_is_saved_under_a_new_key():
    store = SessionStore()
    store["user"] = "someone"
    store.save()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    loaded = SessionStore(session_key=store.session_key)

    assert loaded.get("user") is None
    loaded["user"] = "someone else"
    loaded.save()
    assert loaded.session_key != store.session_key


def test_an_unknown_key_loads_empty_and_is_dropped():
    store = SessionStore(session_key="x" * 32)

    assert dict(store.items()) == {}
    assert store.session_key is None  # a save creates a fresh key, never this one


def test_a_signed_in_request_loads_its_user_from_the_session(client, django_user_model):
    user = django_user_model.objects.create_user(email="kept@example.com", password="x")
    client.force_login(user)

    response = client.get("/accounts/profile/")

    assert response.status_code == 200
    assert response.context["user"] == user
