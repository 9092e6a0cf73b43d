"""Proration against worked examples, with the arithmetic written down, and properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import Money
from models.proration import DayCount, change_mid_period, days_in, prorate, share, split_at


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


# --- worked examples ------------------------------------------------------------------------


def test_stripe_style_upgrade_halfway_through_the_month() -> None:
    """Stripe's documented proration: a USD 10/month plan upgraded to USD 20/month halfway
    through is credited the unused half of 10 and charged the remaining half of 20.

    November 2026 has 30 days; effective 2026-11-16 leaves 16..30 = 15 days: 15/30 = 1/2.
    Credit -10 × 1/2 = -5.00; charge 20 × 1/2 = 10.00; net 5.00."""
    items = change_mid_period(usd("10"), usd("20"), date(2026, 11, 1), date(2026, 11, 30),
                              effective=date(2026, 11, 16))  # fmt: skip
    assert [(i.amount, i.service_start, i.service_end) for i in items] == [
        (usd("-5.00"), date(2026, 11, 16), date(2026, 11, 30)),
        (usd("10.00"), date(2026, 11, 16), date(2026, 11, 30)),
    ]


def test_mid_month_start_of_a_monthly_subscription() -> None:
    """USD 12,000 a year billed monthly (1,000.00 a month) starting 2026-03-15: the first
    invoice covers March 15..31 = 17 of March's 31 days. 1,000 × 17/31 = 548.387… → 548.39."""
    assert prorate(usd("1000"), date(2026, 3, 1), date(2026, 3, 31),
                   date(2026, 3, 15), date(2026, 3, 31)) == usd("548.39")  # fmt: skip


def test_cancellation_effective_on_the_tenth_credits_the_unused_days() -> None:
    """USD 3,000 billed in advance for November; cancelled effective 2026-11-10 (last day of
    service the 9th): days 10..30 = 21 of 30 are unused. Credit 3,000 × 21/30 = 2,100.00."""
    [credit] = change_mid_period(usd("3000"), usd("0"), date(2026, 11, 1), date(2026, 11, 30),
                                 effective=date(2026, 11, 10))  # fmt: skip
    assert credit.amount == usd("-2100.00") and credit.service_end == date(2026, 11, 30)


def test_downgrade_in_february_under_actual_and_30_360() -> None:
    """EUR 2,800 → 1,400 a month, effective 2027-02-15. Actual: days 15..28 = 14 of 28, so
    credit -1,400.00 and charge 700.00. 30/360: February counts 30 days, 15..30 = 16 of 30:
    credit -2,800 × 16/30 = -1,493.33 and charge 1,400 × 16/30 = 746.67."""
    old, new = Money.of("2800", "EUR"), Money.of("1400", "EUR")
    feb = (date(2027, 2, 1), date(2027, 2, 28))
    actual = change_mid_period(old, new, *feb, effective=date(2027, 2, 15))
    thirty = change_mid_period(old, new, *feb, effective=date(2027, 2, 15),
                               convention=DayCount.THIRTY_360)  # fmt: skip
    assert [i.amount for i in actual] == [Money.of("-1400.00", "EUR"), Money.of("700.00", "EUR")]
    assert [i.amount for i in thirty] == [Money.of("-1493.33", "EUR"), Money.of("746.67", "EUR")]


def test_yen_has_no_minor_unit() -> None:
    """JPY 100,000 a month, 10 of 31 days: 32,258.06… → 32,258."""
    assert prorate(Money.of("100000", "JPY"), date(2026, 1, 1), date(2026, 1, 31),
                   date(2026, 1, 22), date(2026, 1, 31)) == Money.of("32258", "JPY")  # fmt: skip


def test_30_360_counts_every_month_as_thirty_days() -> None:
    assert days_in(date(2027, 2, 1), date(2027, 2, 28), DayCount.THIRTY_360) == 30
    assert days_in(date(2026, 3, 1), date(2026, 3, 31), DayCount.THIRTY_360) == 30
    assert days_in(date(2026, 3, 31), date(2026, 3, 31), DayCount.THIRTY_360) == 1
    assert days_in(date(2026, 1, 1), date(2026, 12, 31), DayCount.THIRTY_360) == 360
    assert days_in(date(2026, 1, 1), date(2026, 12, 31), DayCount.ACTUAL) == 365


def test_a_lone_30th_of_a_31_day_month_is_weighed_by_actual_days_in_30_360() -> None:
    """Jan 30 shares day 30 with Jan 31 in 30/360, so alone it counts no days: a one-day
    period on it (a contract ending the day it starts) is shared by actual days."""
    day = date(2020, 1, 30)
    assert days_in(day, day, DayCount.THIRTY_360) == 0
    assert days_in(day, date(2020, 1, 31), DayCount.THIRTY_360) == 1
    assert split_at(usd("100.00"), day, day, day, DayCount.THIRTY_360) == (usd("0"), usd("100.00"))
    assert prorate(usd("100.00"), day, day, day, day, DayCount.THIRTY_360) == usd("100.00")
    # Anything longer keeps the convention: Jan 30 to Feb 1 is two 30/360 days, not three.
    assert split_at(usd("100.00"), day, date(2020, 2, 1), date(2020, 2, 1),
                    DayCount.THIRTY_360) == (usd("50.00"), usd("50.00"))  # fmt: skip


def test_change_outside_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the period"):
        change_mid_period(usd("10"), usd("20"), date(2026, 11, 1), date(2026, 11, 30),
                          effective=date(2026, 12, 1))  # fmt: skip


# --- properties -----------------------------------------------------------------------------

periods = st.tuples(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(min_value=0, max_value=400),
).map(lambda p: (p[0], p[0] + timedelta(days=p[1])))
amounts = st.decimals(min_value=0, max_value=10_000_000, places=2).map(lambda d: usd(str(d)))
conventions = st.sampled_from(list(DayCount))


@given(periods, amounts, st.integers(min_value=0, max_value=400), conventions)
def test_a_split_period_sums_to_the_amount_to_the_cent(
    period: tuple[date, date], amount: Money, offset: int, convention: DayCount
) -> None:
    start, end = period
    at = start + timedelta(days=min(offset, (end - start).days))
    first, second = split_at(amount, start, end, at, convention)
    assert first + second == amount
    assert first.amount >= 0 and second.amount >= 0


@given(periods, amounts, st.integers(min_value=0, max_value=400), conventions)
def test_a_prorated_charge_lies_between_nothing_and_the_full_price(
    period: tuple[date, date], amount: Money, offset: int, convention: DayCount
) -> None:
    start, end = period
    used_from = start + timedelta(days=min(offset, (end - start).days))
    charged = prorate(amount, start, end, used_from, end, convention)
    assert usd("0") <= charged <= amount
    assert prorate(amount, start, end, start, end, convention) == amount
    assert Decimal(0) <= share(start, end, used_from, end, convention) <= 1
