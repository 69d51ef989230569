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


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _TextById(HTMLParser):
    """Collect the text inside every element that has an id (its descendants' text included).

    With ``separate``, each tag counts as a space, as cells and list items read on a page.
    """

    def __init__(self, *, separate: bool) -> None:
        super().__init__()
        self.separate = separate
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []  # the id of each open element, None when it has none

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._separate()
        if tag in _VOID:
            return
        element_id = dict(attrs).get("id")
        self._open.append(element_id)
        if element_id:
            self.texts.setdefault(element_id, "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self._open:
            self._open.pop()
        self._separate()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data

    def _separate(self) -> None:
        if self.separate:
            self.handle_data(" ")


def texts(html: str) -> dict[str, str]:
    """Return the text of each element of ``html`` that has an id, white space collapsed."""
    parser = _TextById(separate=True)
    parser.feed(html)
    return {key: " ".join(value.split()) for key, value in parser.texts.items()}


def raw_texts(html: str) -> dict[str, str]:
    """Like ``texts``, with the white space kept (code, preformatted text)."""
    parser = _TextById(separate=False)
    parser.feed(html)
    return parser.texts
