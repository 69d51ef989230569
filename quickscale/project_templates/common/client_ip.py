"""The client's IP address, honouring TRUSTED_PROXY_COUNT reverse proxies."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _clean(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [::1]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 1.2.3.4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """Return the address the request came from, or None when it cannot be read.

    With N trusted proxies, each appends the address it saw to X-Forwarded-For, so
    the N-th entry from the right is the one the outermost trusted proxy wrote;
    anything left of it is client-supplied and could be forged. Same rule as
    allauth's ALLAUTH_TRUSTED_PROXY_COUNT, so both count the same client.
    """
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    forwarded = request.headers.get("x-forwarded-for", "")
    if count > 0 and forwarded:
        hops = [hop for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= count:
            return _clean(hops[-count])
    return _clean(str(request.META.get("REMOTE_ADDR", "")))
