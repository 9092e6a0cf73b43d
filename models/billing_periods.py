"""Billing periods of a term: anchored on the start date, only the last one may be partial."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from models.calendar_math import ONE_DAY, add_months, days_inclusive
from models.deal import BillingFrequency


class BillingPeriod(NamedTuple):
    """One billing period of a term; `full_days` is its length had the term not ended."""

    number: int
    start: date
    end: date
    days: int
    full_days: int


_PERIOD_MONTHS: dict[BillingFrequency, int] = {
    BillingFrequency.MONTHLY: 1,
    BillingFrequency.QUARTERLY: 3,
    BillingFrequency.ANNUALLY: 12,
}


def period_months(frequency: BillingFrequency) -> int:
    """Length of a recurring billing period in months (12 for milestone, T&M, usage deals)."""
    return _PERIOD_MONTHS.get(frequency, 12)


def billing_periods(start: date, end: date, months: int) -> list[BillingPeriod]:
    """The periods of `months` months covering [start, end]; only the last may be partial.
    Period k starts on add_months(start, (k-1) * months), so a term starting on the 31st
    keeps its anchor."""
    periods: list[BillingPeriod] = []
    while (period_start := add_months(start, len(periods) * months)) <= end:
        full_end = add_months(start, (len(periods) + 1) * months) - ONE_DAY
        period_end = min(full_end, end)
        periods.append(
            BillingPeriod(
                number=len(periods) + 1,
                start=period_start,
                end=period_end,
                days=days_inclusive(period_start, period_end),
                full_days=days_inclusive(period_start, full_end),
            )
        )
    return periods


def period_weights(periods: list[BillingPeriod]) -> list[Decimal]:
    """1 per full period, days / full_days for the partial one, scaled to whole numbers."""
    scale = periods[-1].full_days
    return [Decimal(p.days if p.days < p.full_days else scale) for p in periods]
