"""Django admin: every model has a working list; money and log models are read-only."""

from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

MODELS = sorted((model._meta.app_label, model._meta.model_name) for model in admin.site._registry)

# Records nobody may add, change or delete from the admin: they are history.
READ_ONLY = [
    ("credits", "creditlot"),
    ("credits", "ledgerentry"),
    ("admin_dashboard", "auditlog"),
    ("admin_dashboard", "refundrequest"),
    ("users", "securityevent"),
    ("stripe_manager", "processedstripeevent"),
    ("stripe_manager", "webhookfailure"),
    ("services", "serviceusage"),
    ("api", "apikey"),
    ("api", "apikeyusage"),
]


@pytest.fixture
def superuser_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(("app", "model"), MODELS, ids=[f"{a}.{m}" for a, m in MODELS])
def test_every_admin_list_loads_and_searches(superuser_client: Any, app: str, model: str):
    url = reverse(f"admin:{app}_{model}_changelist")

    assert superuser_client.get(url).status_code == 200
    assert superuser_client.get(url, {"q": "x"}).status_code == 200


@pytest.mark.parametrize(("app", "model"), READ_ONLY, ids=[f"{a}.{m}" for a, m in READ_ONLY])
def test_history_models_cannot_be_added_changed_or_deleted_in_the_admin(
    superuser_client: Any, app: str, model: str
):
    model_admin = next(
        ma
        for m, ma in admin.site._registry.items()
        if (m._meta.app_label, m._meta.model_name) == (app, model)
    )
    request = superuser_client.get(reverse("admin:index")).wsgi_request

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert superuser_client.get(reverse(f"admin:{app}_{model}_add")).status_code == 403


def _changelist_action(client: Any, app: str, model: str, action: str, pks: list[int]) -> Any:
    return client.post(
        reverse(f"admin:{app}_{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
    )


def test_services_are_switched_off_and_on_in_bulk(superuser_client: Any):
    from services.models import Service

    one = Service.objects.create(name="one")
    two = Service.objects.create(name="two")

    _changelist_action(superuser_client, "services", "service", "switch_off", [one.pk, two.pk])
    assert not Service.objects.filter(is_active=True).exists()
    _changelist_action(superuser_client, "services", "service", "switch_on", [one.pk])
    assert list(Service.objects.filter(is_active=True).values_list("name", flat=True)) == ["one"]
