"""Month arithmetic used by billing and recognition schedules."""

from __future__ import annotations

from datetime import date

from models.calendar_math import add_months, days_inclusive, month_end, month_slices, period_label


def test_add_months_clamps_to_the_target_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_add_months_crosses_years_both_ways() -> None:
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)
    assert add_months(date(2026, 5, 31), 0) == date(2026, 5, 31)


def test_month_slices_cut_a_term_at_month_ends() -> None:
    assert month_slices(date(2026, 1, 15), date(2026, 3, 10)) == [
        (date(2026, 1, 15), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 10)),
    ]
    assert month_slices(date(2026, 2, 1), date(2026, 1, 31)) == []


def test_day_counts_include_both_ends() -> None:
    assert days_inclusive(date(2026, 1, 1), date(2026, 12, 31)) == 365
    assert days_inclusive(date(2026, 1, 1), date(2026, 1, 1)) == 1
    assert days_inclusive(date(2026, 1, 2), date(2026, 1, 1)) == 0
    assert month_end(date(2028, 2, 3)) == date(2028, 2, 29)
    assert period_label(date(2026, 3, 9)) == "2026-03"
