"""Email builders the tests of ``common.mail_tasks`` queue (builders live at module level)."""

from __future__ import annotations

from common.email import RenderedEmail

builds: list[str] = []


def notice(address: str, name: str = "Eve") -> RenderedEmail | None:
    """A one-line email to ``address``; nothing to send when the address is empty."""
    builds.append(address)
    if not address:
        return None
    return RenderedEmail(to=(address,), subject=f"Hello {name}", body=f"Hi {name}.", html="")


def broken(address: str) -> RenderedEmail | None:
    """A builder with a bug: rendering fails every time."""
    raise LookupError(f"no template for {address}")
