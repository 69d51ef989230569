"""Sentiment of many texts at once, as a background job: the demo of a long-running service.

It runs only as a job (``long_running``): the web page and the API queue it,
and the jobs page follows its progress. Its cost is per text: the job holds
``credit_cost`` x the number of texts when it is queued and is charged for
the texts it processed, so a cancelled batch pays only for what it scored
(and keeps those scores). The scores are VADER's, as
``text_sentiment_analysis`` gives them for one text; the result lists them
per text and comes with a CSV file to download.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.base import SUMMARY_SHOWN_CHARS, BaseService, truncate
from services.defaults.text_sentiment_analysis import sentiment
from services.forms import BatchTextInputForm
from services.registry import register_service
from services.validation import clean_text_list, only_fields

if TYPE_CHECKING:
    from services.jobs import JobContext

CSV_NAME = "sentiment.csv"
CSV_COLUMNS = ("index", "label", "compound", "confidence", "pos", "neu", "neg", "text")
# A cell starting with one of these is a formula to a spreadsheet: written with a leading
# apostrophe, it is shown as text (OWASP's advice against CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@register_service("batch_sentiment_analysis")
class BatchSentimentAnalysis(BaseService):
    """Label each of many texts positive, negative or neutral; charged per text processed."""

    display_name = "Batch sentiment analysis"
    icon = "layers"
    result_template = "services/results/batch_sentiment.html"
    default_credit_cost = Decimal("0.20")
    description = (
        "Sentiment of many English texts (one per line), in the background: label and scores "
        "per text, and a CSV file. Charged per text processed."
    )
    form_class = BatchTextInputForm
    long_running = True
    max_run_seconds = 600

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {"texts"})
        return {"texts": clean_text_list(inputs.get("texts"))}

    def billable_units(self, cleaned: dict[str, Any]) -> int:
        return len(cleaned["texts"])

    def summarize_input(self, cleaned: dict[str, Any]) -> str:
        texts: list[str] = cleaned["texts"]
        first = " ".join(texts[0].split()) if texts else ""
        return truncate(f"{len(texts)} texts: {first}", SUMMARY_SHOWN_CHARS)

    def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
        texts: list[str] = kwargs["texts"]
        rows: list[dict[str, Any]] = []
        for index, text in enumerate(texts, start=1):
            rows.append({"index": index, **sentiment(text)})
            job.charge(1)
            job.keep_partial_result(_result(rows, total=len(texts)))
            # Raises JobCancelled once the owner cancelled: the texts scored so far are kept.
            job.progress(100 * index / len(texts), f"{index} of {len(texts)} texts")
        job.attach_file(CSV_NAME, _csv(rows, texts))
        return _result(rows, total=len(texts))


def _result(rows: list[dict[str, Any]], *, total: int) -> dict[str, Any]:
    labels = Counter(row["label"] for row in rows)
    return {
        "texts": total,
        "processed": len(rows),
        "counts": {label: labels[label] for label in ("positive", "neutral", "negative")},
        "results": rows,
    }


def _csv(rows: list[dict[str, Any]], texts: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        text = texts[row["index"] - 1]
        scores = row["scores"]
        writer.writerow(
            [
                row["index"],
                row["label"],
                row["compound"],
                row["confidence"],
                scores["pos"],
                scores["neu"],
                scores["neg"],
                f"'{text}" if text.startswith(_FORMULA_START) else text,
            ]
        )
    return buffer.getvalue().encode("utf-8")
