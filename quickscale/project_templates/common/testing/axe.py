"""axe-core in the browser tests: what a page gets wrong for people using assistive tech.

The checker is vendored under ``vendor/`` (``vendor/update_axe.sh`` fetches it
from npm); it is read by the tests only, never served. It goes into the page
with ``page.evaluate``: the Content-Security-Policy blocks script tags a test
would add, and DevTools evaluation is not subject to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

AXE_FILE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"

# Impacts that fail a page; "minor" and "moderate" findings are left to review.
FAILING_IMPACTS = frozenset({"serious", "critical"})
# A form field without an accessible name fails whatever impact axe gives it.
UNLABELLED_FIELD_RULES = frozenset(
    {"label", "select-name", "aria-input-field-name", "aria-toggle-field-name"}
)


@dataclass(frozen=True)
class Violation:
    """One rule broken on one page, with the elements that break it."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]
    summaries: tuple[str, ...]

    def __str__(self) -> str:
        where = "; ".join(
            f"{target} ({summary})"
            for target, summary in zip(self.targets, self.summaries, strict=True)
        )
        return f"[{self.impact}] {self.rule}: {self.help} at {where}"


@cache
def axe_source() -> str:
    return AXE_FILE.read_text(encoding="utf-8")


def run_axe(page: Any) -> list[Violation]:
    """Every violation axe finds on the page as it is now (all rules axe runs by default)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    results = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        Violation(
            rule=found["id"],
            impact=found.get("impact") or "",
            help=found["help"],
            targets=tuple(" ".join(map(str, node["target"])) for node in found["nodes"]),
            summaries=tuple(
                (node.get("failureSummary") or "").replace("\n", " ").strip()
                for node in found["nodes"]
            ),
        )
        for found in results
    ]


def failing(violations: list[Violation]) -> list[Violation]:
    """The violations a page may not have: serious or critical ones, and unlabelled fields."""
    return [
        violation
        for violation in violations
        if violation.impact in FAILING_IMPACTS or violation.rule in UNLABELLED_FIELD_RULES
    ]


def assert_accessible(page: Any, where: str = "") -> None:
    """Fail on a serious or critical axe violation or an unlabelled form field."""
    problems = failing(run_axe(page))
    assert not problems, f"{where or page.url}:\n" + "\n".join(map(str, problems))
