"""Calendar arithmetic for schedules: months, month ends, inclusive day counts.

Pure functions on `datetime.date`. Every date range here is inclusive at both ends, as
contract terms are written ("2026-01-01 to 2026-12-31" is 365 days).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


def days_in_month(year: int, month: int) -> int:
    """Days in the calendar month (28 to 31)."""
    return calendar.monthrange(year, month)[1]


def month_end(d: date) -> date:
    """The last day of `d`'s month."""
    return d.replace(day=days_in_month(d.year, d.month))


def add_months(d: date, n: int) -> date:
    """`d` moved by `n` calendar months, the day clamped to the target month's end.

    add_months(2026-01-31, 1) = 2026-02-28; add_months(2024-02-29, 12) = 2025-02-28.
    """
    index = d.year * 12 + (d.month - 1) + n
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(d.day, days_in_month(year, month)))


def days_inclusive(start: date, end: date) -> int:
    """Days from `start` to `end`, both counted (0 when `end` is before `start`)."""
    return max((end - start).days + 1, 0)


def period_label(d: date) -> str:
    """The accounting period of `d`, as 'YYYY-MM'."""
    return f"{d.year:04d}-{d.month:02d}"


def month_slices(start: date, end: date) -> list[tuple[date, date]]:
    """Cut [start, end] at calendar-month boundaries.

    2026-01-15 .. 2026-03-10 gives (01-15, 01-31), (02-01, 02-28), (03-01, 03-10).
    Empty when `end` is before `start`.
    """
    slices: list[tuple[date, date]] = []
    cursor = start
    while cursor <= end:
        slice_end = min(month_end(cursor), end)
        slices.append((cursor, slice_end))
        cursor = slice_end + ONE_DAY
    return slices
