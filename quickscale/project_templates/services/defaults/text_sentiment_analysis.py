"""Sentiment of a text with VADER (a lexicon and rules; offline, no model download)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.base import BaseService
from services.registry import register_service
from services.validation import clean_text, only_fields
from users.models import CustomUser

# VADER's own thresholds on the compound score.
POSITIVE_FROM = 0.05
NEGATIVE_UNTIL = -0.05

_analyzer: SentimentIntensityAnalyzer | None = None


def _get_analyzer() -> SentimentIntensityAnalyzer:
    """Load the lexicon once per process (it takes about 50 ms)."""
    global _analyzer
    if _analyzer is None:
        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


@register_service("text_sentiment_analysis")
class TextSentimentAnalysis(BaseService):
    """Label a text positive, negative or neutral, with VADER's scores."""

    display_name = "Sentiment analysis"
    icon = "smile"
    result_template = "services/results/sentiment.html"
    default_credit_cost = Decimal("1.00")
    description = "Sentiment of an English text: label, compound score and confidence (VADER)."

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {"text"})
        return {"text": clean_text(inputs.get("text"))}

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        return sentiment(kwargs["text"])


def sentiment(text: str) -> dict[str, Any]:
    """Label ``text`` positive, negative or neutral, with VADER's scores (also used in batches)."""
    scores = _get_analyzer().polarity_scores(text)
    compound = float(scores["compound"])
    if compound >= POSITIVE_FROM:
        label = "positive"
    elif compound <= NEGATIVE_UNTIL:
        label = "negative"
    else:
        label = "neutral"
    # How far the score is from the other labels: |compound| for a polar
    # label, closeness to 0 for neutral.
    confidence = abs(compound) if label != "neutral" else 1 - abs(compound)
    return {
        "label": label,
        "compound": round(compound, 4),
        "confidence": round(confidence, 4),
        "scores": {key: round(float(scores[key]), 4) for key in ("pos", "neu", "neg")},
    }
