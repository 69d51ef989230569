from io import StringIO

import pytest
from django.core.management import call_command

from services.models import Service
from services.registry import registered_services


@pytest.mark.django_db(transaction=True)
def test_bootstrap_creates_a_service_row_for_every_registered_class(settings):
    """transaction=True: bootstrap runs migrate and createcachetable, which commit."""
    settings.DJANGO_SUPERUSER_EMAIL = ""
    out = StringIO()
    call_command("bootstrap", "--skip-collectstatic", stdout=out)
    assert set(registered_services()) <= set(Service.objects.values_list("name", flat=True))
    assert "bootstrap: services: defaults created" in out.getvalue()
