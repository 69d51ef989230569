"""Whole days as half-open datetime ranges, for filters that take dates."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone


def day_start(day: date) -> datetime:
    """The first moment of ``day`` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_end(day: date) -> datetime:
    """The first moment after ``day`` (ranges are half-open)."""
    return day_start(day + timedelta(days=1))
