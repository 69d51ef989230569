"""An offline extractive summary: the sentences whose words occur most in the text."""

from __future__ import annotations

import math
import re
from collections import Counter
from decimal import Decimal
from typing import Any

from services.base import BaseService
from services.forms import SummaryInputForm
from services.registry import register_service
from services.validation import clean_int, clean_text, only_fields
from users.models import CustomUser

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_STOP_WORD_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself
"""
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


def split_sentences(text: str) -> list[str]:
    """Split on ., ! or ? followed by white space, and on blank lines."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        sentences += [part.strip() for part in _SENTENCE_END.split(paragraph) if part.strip()]
    return sentences


def _words(sentence: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(sentence)) if w not in STOP_WORDS]


def summarize(text: str, max_sentences: int) -> list[str]:
    """Return at most ``max_sentences`` sentences of ``text``, in their original order."""
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return sentences
    frequency = Counter(word for sentence in sentences for word in _words(sentence))
    top = max(frequency.values(), default=1)

    def score(index: int) -> float:
        words = _words(sentences[index])
        if not words:
            return 0.0
        return sum(frequency[word] / top for word in words) / math.sqrt(len(words))

    best = sorted(range(len(sentences)), key=lambda index: (-score(index), index))
    return [sentences[index] for index in sorted(best[:max_sentences])]


@register_service("text_summarizer")
class TextSummarizer(BaseService):
    """Pick the most representative sentences of a text (no model, works offline)."""

    display_name = "Summarizer"
    icon = "text"
    result_template = "services/results/summary.html"
    default_credit_cost = Decimal("2.00")
    description = "Extractive summary: the text's most representative sentences, offline."
    form_class = SummaryInputForm

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {"text", "max_sentences"})
        return {
            "text": clean_text(inputs.get("text")),
            "max_sentences": clean_int(
                inputs.get("max_sentences"), field="max_sentences", default=3, low=1, high=10
            ),
        }

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        text: str = kwargs["text"]
        summary = summarize(text, kwargs["max_sentences"])
        return {
            "summary": " ".join(summary),
            "sentences": summary,
            "original_sentences": len(split_sentences(text)),
        }
