"""Every dashboard page renders for staff under the strict CSP: no inline code or styles."""

import re
from typing import Any

import pytest
from django.urls import reverse

from services.models import Service

pytestmark = pytest.mark.django_db

INLINE = [
    re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>", re.I),  # inline script
    re.compile(rb"<style", re.I),
    re.compile(rb"\sstyle=", re.I),
    re.compile(rb"\son[a-z]+=", re.I),  # onclick=, onsubmit=...
]


@pytest.fixture
def everything(customer, purchase):
    Service.objects.create(name="echo")
    return purchase


def _pages(purchase: Any, customer: Any) -> list[str]:
    return [
        reverse("admin_dashboard:dashboard"),
        reverse("admin_dashboard:users"),
        reverse("admin_dashboard:user_detail", args=[customer.pk]),
        reverse("admin_dashboard:payments"),
        reverse("admin_dashboard:payment_detail", args=[purchase.pk]),
        reverse("admin_dashboard:payment_refund", args=[purchase.pk]),
        reverse("admin_dashboard:products"),
        reverse("admin_dashboard:services"),
        reverse("admin_dashboard:service_detail", args=["echo"]),
        reverse("admin_dashboard:audit"),
    ]


def test_every_page_renders_without_inline_scripts_styles_or_handlers(
    staff_client, customer, everything
):
    for url in _pages(everything, customer):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        for pattern in INLINE:
            assert not pattern.search(response.content), (url, pattern.pattern)


def test_the_webhook_failure_figure_links_to_a_working_admin_filter(client, customer):
    from users.tests.factories import make_user

    client.force_login(make_user(is_staff=True, is_superuser=True))
    home = client.get(reverse("admin_dashboard:dashboard")).content.decode()
    link = re.search(r'href="(/admin/stripe_manager/webhookfailure/[^"]*)"', home)

    assert link is not None
    assert client.get(link.group(1).replace("&amp;", "&")).status_code == 200
