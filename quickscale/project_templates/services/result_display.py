"""A job's result arranged for its page: plain values as rows, lists of records as tables.

A result is whatever JSON object the service returned. Its page shows each
plain value (text, number, a small object or list, written out on one line)
beside its key, and each list of objects (a batch's per-item results) as a
table whose columns are the objects' keys. A table shows its first
``MAX_TABLE_ROWS`` rows; the rest are in the API's answer and in the result
file, when the service writes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TABLE_ROWS = 100


@dataclass(frozen=True)
class ResultTable:
    """One list of records of a result: its key, the columns, the rows shown, how many in all."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    total: int

    @property
    def hidden(self) -> int:
        """How many rows the page leaves out."""
        return self.total - len(self.rows)


@dataclass(frozen=True)
class ResultDisplay:
    """A result as its page shows it: (key, text) pairs, then tables."""

    fields: list[tuple[str, str]]
    tables: list[ResultTable]


def result_display(result: dict[str, Any] | None) -> ResultDisplay | None:
    """Arrange ``result`` for a page; None when the job has no result."""
    if result is None:
        return None
    fields: list[tuple[str, str]] = []
    tables: list[ResultTable] = []
    for key, value in result.items():
        if _is_records(value):
            tables.append(_table(key, value))
        else:
            fields.append((key, as_text(value)))
    return ResultDisplay(fields=fields, tables=tables)


def as_text(value: Any) -> str:
    """Write a JSON value on one line: objects as ``key value · key value``, lists with commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return " · ".join(f"{key} {as_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(as_text(item) for item in value)
    return str(value)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _table(name: str, records: list[dict[str, Any]]) -> ResultTable:
    shown = records[:MAX_TABLE_ROWS]
    # Columns in the order keys first appear, so rows missing a key still line up.
    columns = list(dict.fromkeys(key for record in shown for key in record))
    rows = [[as_text(record.get(column)) for column in columns] for record in shown]
    return ResultTable(name=name, columns=columns, rows=rows, total=len(records))
