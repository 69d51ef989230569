"""How a history shows a ledger entry's stored description.

Entries are append-only and their description is written once, sometimes with
an identifier in it: a service call's entry holds the service's registered
name (``text_sentiment_analysis``), its refund ``Refund: text_sentiment_analysis``.
Apps above credits (which credits cannot import) register a resolver that turns
such an identifier into the words pages show; histories are rendered through
it at display time, so renaming a service's title renames its past entries too
and nothing stored is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable

# What a refund or reversal entry puts before the label of the entry it reverses.
REVERSAL_PREFIXES = ("Refund: ", "Reversal: ")

# A resolver returns the words for a description it knows, None for one it does not.
LabelResolver = Callable[[str], "str | None"]

_resolvers: list[LabelResolver] = []


def register_label_resolver(resolver: LabelResolver) -> None:
    """Add ``resolver`` (once) to those ``display_label`` asks, in registration order."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def display_label(description: str) -> str:
    """``description`` as a person reads it: identifiers a resolver knows become their titles."""
    for prefix in REVERSAL_PREFIXES:
        if description.startswith(prefix):
            return prefix + display_label(description[len(prefix) :])
    for resolver in _resolvers:
        words = resolver(description)
        if words:
            return words
    return description
