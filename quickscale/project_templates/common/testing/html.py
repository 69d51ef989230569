"""Read a rendered page's elements by id, for tests that check attributes (htmx triggers, links)."""

from __future__ import annotations

from html.parser import HTMLParser


class _ElementById(HTMLParser):
    """Collect the attributes of every element that has an id."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.elements[str(values["id"])] = values


def elements(html: str) -> dict[str, dict[str, str | None]]:
    """Return each element of ``html`` that has an id: its id -> its attributes."""
    parser = _ElementById()
    parser.feed(html)
    return parser.elements
