"""Proration (SPEC §4): charging part of a billing period, for a start, an upgrade, a downgrade
or a cancellation inside it.

Conventions (docs/conventions.md):
- A period runs from its first to its last day, both included; a change takes effect at the
  start of its effective date (service at the old terms ends the day before).
- Day count `actual` (the default): the share of a period is the days used over the days of
  that period (30 of 31 in March, 14 of 28 in February). `30/360`: every month counts 30
  days and a day 31 counts as day 30, so a month's share does not depend on its length.
  The 30th of a 31-day month on its own counts no days in 30/360 (it shares day 30 with
  the 31st); a period that is just that day is shared by actual days instead, as there is
  nothing else to weigh it by.
- A change mid-period is two items, as Stripe and Chargebee invoice it: a credit for the
  unused days at the old price and a charge for the same days at the new price. Each item is
  rounded half-up to the currency's minor unit on its own, so their net can differ from
  rounding the net by one minor unit (the credit and the charge are what the invoice shows).
- Splitting one amount between the parts of a period uses the largest-remainder allocation,
  so the parts always sum to the amount to the cent.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from models.money import Money, allocate


class DayCount(StrEnum):
    ACTUAL = "actual"
    THIRTY_360 = "30/360"


def _days_30_360(start: date, end_inclusive: date) -> int:
    """Days from `start` to `end_inclusive` (both included) in 30/360 (US, day 31 → 30)."""
    after = end_inclusive + timedelta(days=1)
    d1 = min(start.day, 30)
    # The day after a month's last day is day 1 of the next month: count it as day 30 + 1.
    y2, m2, d2 = after.year, after.month, min(after.day, 30)
    return (y2 - start.year) * 360 + (m2 - start.month) * 30 + (d2 - d1)


def days_in(start: date, end_inclusive: date, convention: DayCount) -> int:
    if end_inclusive < start:
        return 0
    if convention is DayCount.THIRTY_360:
        return _days_30_360(start, end_inclusive)
    return (end_inclusive - start).days + 1


def _weighable(period_start: date, period_end: date, convention: DayCount) -> DayCount:
    """`convention`, unless the period counts no days by it (see the module): then actual."""
    if days_in(period_start, period_end, convention) == 0:
        return DayCount.ACTUAL
    return convention


def share(
    period_start: date, period_end: date, used_start: date, used_end: date,
    convention: DayCount = DayCount.ACTUAL,
) -> Decimal:  # fmt: skip
    """The fraction of the period [period_start, period_end] covered by [used_start, used_end]
    (clipped to the period), by `convention`."""
    if period_end < period_start:
        raise ValueError(f"period ends {period_end} before it starts {period_start}")
    convention = _weighable(period_start, period_end, convention)
    start, end = max(period_start, used_start), min(period_end, used_end)
    total = days_in(period_start, period_end, convention)
    return Decimal(days_in(start, end, convention)) / Decimal(total)


def prorate(
    amount: Money, period_start: date, period_end: date, used_start: date, used_end: date,
    convention: DayCount = DayCount.ACTUAL,
) -> Money:  # fmt: skip
    """`amount` for a full period, charged for [used_start, used_end] only."""
    return amount.times(share(period_start, period_end, used_start, used_end, convention))


def split_at(
    amount: Money, period_start: date, period_end: date, at: date,
    convention: DayCount = DayCount.ACTUAL,
) -> tuple[Money, Money]:  # fmt: skip
    """`amount` split into the days before `at` and the days from `at` on; sums to `amount`."""
    convention = _weighable(period_start, period_end, convention)
    before = days_in(period_start, min(at - timedelta(days=1), period_end), convention)
    after = days_in(max(at, period_start), period_end, convention)
    first, second = allocate(amount, [Decimal(before), Decimal(after)])
    return first, second


class ProrationItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    service_start: date
    service_end: date
    amount: Money  # negative for a credit


def change_mid_period(
    old_price: Money, new_price: Money, period_start: date, period_end: date,
    effective: date, convention: DayCount = DayCount.ACTUAL,
) -> list[ProrationItem]:  # fmt: skip
    """An upgrade or a downgrade effective on `effective`, for a period billed in advance at
    `old_price`: a credit for the unused days at the old price and a charge for them at the
    new one. A cancellation is a change to a zero price (the credit alone)."""
    if not period_start <= effective <= period_end:
        raise ValueError(
            f"effective date {effective} is outside the period {period_start}..{period_end}"
        )
    unused_credit = -prorate(old_price, period_start, period_end, effective, period_end, convention)
    items = [ProrationItem(description="Unused time at the previous price", service_start=effective,
                           service_end=period_end, amount=unused_credit)]  # fmt: skip
    if not new_price.is_zero():
        charge = prorate(new_price, period_start, period_end, effective, period_end, convention)
        items.append(ProrationItem(description="Remaining time at the new price",
                                   service_start=effective, service_end=period_end, amount=charge))  # fmt: skip
    return items
