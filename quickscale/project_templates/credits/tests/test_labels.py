"""``credits.labels``: stored descriptions shown through the resolvers apps above register."""

from collections.abc import Iterator

import pytest

from credits import labels
from credits.models import LedgerEntry


@pytest.fixture
def resolvers() -> Iterator[list[labels.LabelResolver]]:
    """Resolvers a test adds, removed again after it (the apps' own ones stay)."""
    saved = list(labels._resolvers)
    yield labels._resolvers
    labels._resolvers[:] = saved


def _machine_words(description: str) -> str | None:
    return {"word_machine": "Word machine"}.get(description)


def test_a_known_identifier_reads_as_its_words_and_others_are_unchanged(resolvers):
    labels.register_label_resolver(_machine_words)

    assert labels.display_label("word_machine") == "Word machine"
    assert labels.display_label("Welcome credits") == "Welcome credits"
    assert labels.display_label("word_machine_2") == "word_machine_2"


def test_refunds_and_reversals_read_through_the_entry_they_undo(resolvers):
    labels.register_label_resolver(_machine_words)

    assert labels.display_label("Refund: word_machine") == "Refund: Word machine"
    twice = labels.display_label("Reversal: Refund: word_machine")
    assert twice == "Reversal: Refund: Word machine"


def test_a_resolver_registered_twice_is_asked_once(resolvers):
    calls: list[str] = []

    def counting(description: str) -> str | None:
        calls.append(description)
        return None

    labels.register_label_resolver(counting)
    labels.register_label_resolver(counting)
    labels.display_label("anything")

    assert calls == ["anything"]


def test_an_entry_label_is_shown_through_the_resolvers_and_stored_unchanged(resolvers):
    labels.register_label_resolver(_machine_words)
    entry = LedgerEntry(kind=LedgerEntry.Kind.CONSUME, description="word_machine")

    assert (entry.label, entry.stored_label) == ("Word machine", "word_machine")
    assert LedgerEntry(kind=LedgerEntry.Kind.CONSUME).label == "Usage"
