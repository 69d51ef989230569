"""Plan changes as a user makes them: open the preview page, then confirm it."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

_CONFIRMATION = re.compile(r'name="confirmation" value="([^"]+)"')


def confirmation(page: str) -> str:
    """The signed confirmation carried by a preview page's form."""
    found = _CONFIRMATION.search(page)
    assert found, "the page has no confirmation form"
    return found.group(1)


def change_plan(client: Client, price_id: str) -> Any:
    """Preview the change to ``price_id`` and confirm it; returns the confirm response."""
    preview = client.get("/billing/plan/change/", {"price_id": price_id})
    assert preview.status_code == 200, preview
    token = confirmation(preview.content.decode())
    return client.post("/billing/plan/change/", {"confirmation": token})


def cancel_plan(client: Client) -> Any:
    """Open the cancellation page and confirm it; returns the confirm response."""
    page = client.get("/billing/plan/cancel/")
    assert page.status_code == 200, page
    token = confirmation(page.content.decode())
    return client.post("/billing/plan/cancel/", {"confirmation": token})
