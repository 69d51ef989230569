"""The icons a service can name in ``icon``: small line drawings, inline SVG (no icon font, no CDN).

Emoji would need an emoji font, which many servers and some desktops lack
(they show an empty box). A service whose ``icon`` is not one of these names
shows it as text, so an emoji still works where the reader has the font.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Each icon: the SVG elements inside a 24x24 view box, drawn with the current text colour.
ICONS: dict[str, str] = {
    "gear": (
        '<circle cx="12" cy="12" r="3.5"/>'
        '<path d="M12 2.5v3M12 18.5v3M2.5 12h3M18.5 12h3M5.3 5.3l2.1 2.1M16.6 16.6l2.1 2.1'
        'M5.3 18.7l2.1-2.1M16.6 7.4l2.1-2.1"/>'
    ),
    "smile": (
        '<circle cx="12" cy="12" r="9"/><path d="M8 14.5c1 1.4 2.4 2 4 2s3-.6 4-2"/>'
        '<path d="M9 9.5h.01M15 9.5h.01"/>'
    ),
    "text": '<path d="M4 6h16M4 10h16M4 14h10M4 18h7"/>',
    "image": (
        '<rect x="3" y="4" width="18" height="16" rx="2"/><circle cx="9" cy="9.5" r="1.5"/>'
        '<path d="M21 16l-5-5-9 9"/>'
    ),
    "hash": '<path d="M9 4L7 20M17 4l-2 16M4.5 9h16M3.5 15h16"/>',
    "braces": (
        '<path d="M8 4H7a2 2 0 0 0-2 2v3.5L3.5 12 5 14.5V18a2 2 0 0 0 2 2h1"/>'
        '<path d="M16 4h1a2 2 0 0 1 2 2v3.5l1.5 2.5-1.5 2.5V18a2 2 0 0 1-2 2h-1"/>'
    ),
    "layers": (
        '<path d="M12 3l9 5-9 5-9-5 9-5z"/><path d="M3 12.5l9 5 9-5"/><path d="M3 16.5l9 5 9-5"/>'
    ),
    "check": '<circle cx="12" cy="12" r="9"/><path d="M8 12.5l3 3 5-6"/>',
    "bot": (
        '<rect x="4" y="8" width="16" height="12" rx="3"/><path d="M12 4v4M9 13h.01M15 13h.01'
        'M9.5 16.5h5"/>'
    ),
    "sparkles": (
        '<path d="M12 3l1.8 5.2L19 10l-5.2 1.8L12 17l-1.8-5.2L5 10l5.2-1.8L12 3z"/>'
        '<path d="M19 16v4M17 18h4"/>'
    ),
    "chat": '<path d="M4 5h16v11H9l-5 4V5z"/>',
}
DEFAULT = "gear"


def icon_html(icon: str) -> SafeString:
    """The icon named ``icon`` as inline SVG (hidden from screen readers); other text as is."""
    drawing = ICONS.get(icon)
    if drawing is None:
        return format_html('<span class="service-icon" aria-hidden="true">{}</span>', icon)
    return mark_safe(
        '<svg class="service-icon" viewBox="0 0 24 24" width="1em" height="1em" fill="none" '
        'stroke="currentColor" stroke-width="1.8" stroke-linecap="round" '
        f'stroke-linejoin="round" aria-hidden="true" focusable="false">{drawing}</svg>'
    )
