"""A bar chart of credits spent per day, as numbers an SVG template draws.

Server-rendered on purpose: no chart library, nothing to load, readable without
JavaScript. The template (``home/includes/usage_chart.html``) draws one ``rect``
per day from these coordinates in a fixed ``viewBox`` that scales to its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from common.formatting import format_credits

WIDTH = 600
HEIGHT = 160
# Room under the bars for the first, middle and last dates.
AXIS = 18
GAP = 2


@dataclass(frozen=True)
class Bar:
    day: date
    spent: Decimal
    x: float
    y: float
    width: float
    height: float

    @property
    def label(self) -> str:
        return f"{self.day:%b %-d}: {format_credits(self.spent)}"


@dataclass(frozen=True)
class UsageChart:
    bars: list[Bar]
    total: Decimal
    peak: Decimal
    width: int = WIDTH
    height: int = HEIGHT
    plot_height: int = HEIGHT - AXIS

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def ticks(self) -> list[Bar]:
        """The bars whose dates are written under the axis: first, middle, last."""
        if not self.bars:
            return []
        return [self.bars[0], self.bars[len(self.bars) // 2], self.bars[-1]]

    @property
    def summary(self) -> str:
        """What the chart shows, in words, for screen readers and as its description."""
        if not self.bars:
            return "No days to show."
        first, last = self.bars[0].day, self.bars[-1].day
        busiest = max(self.bars, key=lambda bar: bar.spent)
        text = f"{format_credits(self.total)} credits spent from {first:%b %-d} to {last:%b %-d}"
        if busiest.spent:
            most = format_credits(busiest.spent)
            text += f"; the most in one day was {most} on {busiest.day:%b %-d}"
        return text + "."


def usage_chart(days: list[tuple[date, Decimal]]) -> UsageChart:
    """Lay out one bar per day, scaled so the busiest day fills the plot's height."""
    peak = max((spent for _, spent in days), default=Decimal(0))
    plot = HEIGHT - AXIS
    slot = WIDTH / len(days) if days else WIDTH
    bars = []
    for index, (day, spent) in enumerate(days):
        # A day with any use gets at least a sliver, so small days are not invisible.
        height = float(spent / peak) * plot if peak > 0 else 0.0
        if spent > 0:
            height = max(height, 2.0)
        bars.append(
            Bar(
                day=day,
                spent=spent,
                x=round(index * slot + GAP / 2, 2),
                y=round(plot - height, 2),
                width=round(slot - GAP, 2),
                height=round(height, 2),
            )
        )
    return UsageChart(bars=bars, total=sum((s for _, s in days), Decimal(0)), peak=peak)
