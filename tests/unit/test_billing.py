"""Billing plans (SPEC §4): worked examples, then properties over random deals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.billing import (
    BillingBasis,
    billing_basis,
    billing_plan,
    first_invoice,
    milestone_invoice_lines,
)
from models.billing_periods import billing_periods
from models.calendar_math import days_inclusive
from models.deal import BillingFrequency, DealSubmission, ProductType, RecognitionType
from models.money import Money, money_sum
from tests.builders import make_deal, make_line, make_milestone, usd
from tests.strategies import deals

MONTHLY = BillingFrequency.MONTHLY
QUARTERLY = BillingFrequency.QUARTERLY
PERPETUAL = RecognitionType.PERPETUAL_LICENSE
MILESTONE = RecognitionType.MILESTONE
TM = RecognitionType.TIME_AND_MATERIALS


def line_amounts(deal: DealSubmission, line_id: str) -> list[str]:
    return [
        str(line.amount.amount)
        for event in billing_plan(deal)
        for line in event.lines
        if line.line_id == line_id
    ]


# --- worked examples ----------------------------------------------------------------------


def test_monthly_subscription_bills_twelve_equal_months_in_advance() -> None:
    """USD 120,000 for 2026, billed monthly: 12 full periods of weight 1, 10,000.00 each,
    invoiced on the 1st of each month, the first on the start date."""
    deal = make_deal([make_line("SUB", ProductType.SUBSCRIPTION, "120000")], frequency=MONTHLY)
    plan = billing_plan(deal)

    assert [e.total() for e in plan] == [usd("10000")] * 12
    assert plan[0].invoice_date == date(2026, 1, 1)
    assert plan[0].reason == "subscription period 1 of 12"
    assert (plan[-1].invoice_date, plan[-1].period_end) == (date(2026, 12, 1), date(2026, 12, 31))


def test_quarterly_deal_prorates_its_partial_final_quarter_by_days() -> None:
    """USD 51,600 subscription, 2026-01-01 .. 2027-05-31 (17 months), billed quarterly.
    Quarters 1-5 are full (weight 1). Quarter 6 runs 2027-04-01 .. 2027-05-31 = 61 days of
    a full 2027-04-01 .. 2027-06-30 = 91 days: weight 61/91.
    Total weight 5 + 61/91 = 516/91; full quarter 51,600 * 91/516 = 9,100.00;
    partial 51,600 * 61/516 = 6,100.00; 5 * 9,100 + 6,100 = 51,600.00."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "51600")],
        end=date(2027, 5, 31),
        frequency=QUARTERLY,
    )
    plan = billing_plan(deal)

    assert [e.total() for e in plan] == [usd("9100")] * 5 + [usd("6100")]
    assert [e.invoice_date for e in plan] == [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
        date(2026, 10, 1),
        date(2027, 1, 1),
        date(2027, 4, 1),
    ]
    last = plan[-1]
    assert (last.period_start, last.period_end) == (date(2027, 4, 1), date(2027, 5, 31))
    assert last.lines[0].description.endswith("(61 of 91 days)")
    assert last.reason == "subscription period 6 of 6"


def test_quarterly_eighteen_month_deal_has_six_full_quarters() -> None:
    """USD 100,000, 2026-01-01 .. 2027-06-30 (18 months) quarterly: 6 full quarters,
    100,000 / 6 = 16,666.666..., floors 6 * 16,666.66 = 99,999.96; the 4 cents left go to
    the earliest periods (equal remainders): 16,666.67 * 4 + 16,666.66 * 2."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "100000")],
        end=date(2027, 6, 30),
        frequency=QUARTERLY,
    )

    assert line_amounts(deal, "SUB") == ["16666.67"] * 4 + ["16666.66"] * 2


def test_license_and_first_support_year_share_the_first_invoice() -> None:
    """License net 85,000 (on delivery) + support 30,000 (annually in advance) +
    implementation 20,000 on milestones (not in the plan). First invoice 2026-01-01:
    85,000 + 30,000 = 115,000; the implementation is billed as milestones are accepted."""
    deal = make_deal(
        [
            make_line("LIC", ProductType.LICENSE, "85000", ssp="100000", recognition=PERPETUAL),
            make_line("SUP", ProductType.SUPPORT, "30000"),
            make_line("IMP", ProductType.SERVICES, "20000", recognition=MILESTONE),
        ],
        milestones=[make_milestone("GOLIVE", "IMP", date(2026, 4, 30), "20000")],
    )
    invoice = first_invoice(deal)

    assert invoice is not None
    assert [line.line_id for line in invoice.lines] == ["LIC", "SUP"]
    assert invoice.total() == usd("115000")
    assert invoice.reason == "perpetual license on delivery; support period 1 of 1"
    assert len(billing_plan(deal)) == 1


def test_milestone_invoice_line_is_the_milestone_at_contract_price() -> None:
    """Implementation 10,000 in three milestones 2,000 / 3,000 / 5,000: delivering M2
    invoices 3,000.00, quantity 1, whatever the recognition allocation is."""
    milestones = [
        make_milestone("M1", "IMP", date(2026, 3, 31), "2000"),
        make_milestone("M2", "IMP", date(2026, 6, 30), "3000"),
        make_milestone("M3", "IMP", date(2026, 9, 30), "5000"),
    ]
    deal = make_deal(
        [make_line("IMP", ProductType.SERVICES, "10000", product="Implementation")],
        recognition=MILESTONE,
        milestones=milestones,
    )

    [line] = milestone_invoice_lines(deal, "M2")

    assert (line.line_id, line.quantity, line.amount) == ("IMP", Decimal(1), usd("3000"))
    assert line.description == "Implementation: Deliverable M2"


def test_unknown_milestone_is_refused_naming_it() -> None:
    deal = make_deal([make_line("SUB", ProductType.SUBSCRIPTION, "100")])

    with pytest.raises(ValueError, match="has no milestone M9"):
        milestone_invoice_lines(deal, "M9")


def test_term_ending_before_it_starts_is_refused() -> None:
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "100")],
        start=date(2026, 2, 1),
        end=date(2026, 1, 31),
    )

    with pytest.raises(ValueError, match="ends 2026-01-31 before it starts 2026-02-01"):
        billing_plan(deal)


def test_pure_milestone_or_tm_deal_has_nothing_to_bill_at_signing() -> None:
    milestone_deal = make_deal(
        [make_line("IMP", ProductType.SERVICES, "10000")],
        recognition=MILESTONE,
        milestones=[make_milestone("M1", "IMP", date(2026, 3, 31), "10000")],
        frequency=BillingFrequency.MILESTONE,
    )
    tm_deal = make_deal(
        [make_line("TM", ProductType.SERVICES, "150", quantity="200")],
        recognition=TM,
        frequency=BillingFrequency.TIME_AND_MATERIALS,
    )

    assert first_invoice(milestone_deal) is None
    assert first_invoice(tm_deal) is None


def test_usage_line_is_metered_not_planned_even_when_ratable() -> None:
    deal = make_deal(
        [
            make_line("SUB", ProductType.SUBSCRIPTION, "12000"),
            make_line("USE", ProductType.USAGE, "0.01", quantity="100000"),
        ],
        frequency=MONTHLY,
    )

    assert billing_basis(deal, deal.lines[1]) is BillingBasis.USAGE
    assert line_amounts(deal, "USE") == []
    assert line_amounts(deal, "SUB") == ["1000.00"] * 12


def test_recurring_line_on_a_usage_deal_is_billed_annually() -> None:
    """Frequency usage, 24-month platform fee 24,000: two annual periods of 12,000."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "24000")],
        end=date(2027, 12, 31),
        frequency=BillingFrequency.USAGE,
    )

    assert line_amounts(deal, "SUB") == ["12000.00", "12000.00"]


def test_jpy_monthly_billing_hands_leftover_yen_to_the_earliest_months() -> None:
    """JPY 1,000,000 over 12 months: 83,333.33 each, floors 12 * 83,333 = 999,996,
    4 yen left: months 1-4 bill 83,334, months 5-12 bill 83,333."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "1000000")], currency="JPY", frequency=MONTHLY
    )

    assert line_amounts(deal, "SUB") == ["83334"] * 4 + ["83333"] * 8


def test_kwd_quarterly_billing_keeps_three_decimals() -> None:
    """KWD 1,000.000 for 2026 quarterly: 1,000 / 4 = 250.000 a quarter. KWD 100.000 over
    3 quarters (2026-01-01 .. 2026-09-30): 33.333 remainder .33 fils each, 1 fils left for
    the first: 33.334 / 33.333 / 33.333."""
    even = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "1000")], currency="KWD", frequency=QUARTERLY
    )
    odd = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "100")],
        currency="KWD",
        frequency=QUARTERLY,
        end=date(2026, 9, 30),
    )

    assert line_amounts(even, "SUB") == ["250.000"] * 4
    assert line_amounts(odd, "SUB") == ["33.334", "33.333", "33.333"]


def test_billing_periods_keep_a_month_end_anchor() -> None:
    """Start 2026-01-31, monthly: periods start on add_months(start, k), clamped:
    01-31 .. 02-27, 02-28 .. 03-30, 03-31 .. 04-29 (never drifting to the 28th)."""
    periods = billing_periods(date(2026, 1, 31), date(2026, 4, 29), 1)

    assert [(p.start, p.end) for p in periods] == [
        (date(2026, 1, 31), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 3, 30)),
        (date(2026, 3, 31), date(2026, 4, 29)),
    ]
    assert all(p.days == p.full_days for p in periods)


# --- properties over random valid deals ---------------------------------------------------


@given(deals())
def test_billing_plan_sums_to_each_planned_line_total(deal: DealSubmission) -> None:
    plan = billing_plan(deal)

    for line in deal.lines:
        billed = [il.amount for e in plan for il in e.lines if il.line_id == line.line_id]
        planned = billing_basis(deal, line) in (BillingBasis.RECURRING, BillingBasis.ON_DELIVERY)
        expected = line.net_total(deal.currency) if planned else Money.zero(deal.currency)
        assert money_sum(billed, deal.currency) == expected, line.line_id


@given(deals())
def test_billing_plan_has_one_event_per_date_within_the_term(deal: DealSubmission) -> None:
    dates = [event.invoice_date for event in billing_plan(deal)]

    assert dates == sorted(set(dates))
    assert all(deal.start_date <= d <= deal.end_date for d in dates)
    first = first_invoice(deal)
    assert first is None or first.invoice_date == deal.start_date


@given(deals())
def test_first_invoice_is_the_plans_first_event(deal: DealSubmission) -> None:
    """first_invoice builds only the first periods; it must agree with the whole plan."""
    plan = billing_plan(deal)

    assert first_invoice(deal) == (plan[0] if plan else None)


@given(deals(product_types=(ProductType.SERVICES,)))
def test_milestone_invoices_sum_to_their_line(deal: DealSubmission) -> None:
    for line in deal.lines:
        ids = [m.milestone_id for m in deal.milestones if m.line_id == line.line_id]
        billed = [il.amount for mid in ids for il in milestone_invoice_lines(deal, mid)]
        if ids:
            assert money_sum(billed, deal.currency) == line.net_total(deal.currency)


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(0, 2000),
    st.sampled_from((1, 3, 12)),
)
def test_billing_periods_tile_the_term(start: date, length: int, months: int) -> None:
    end = start + timedelta(days=length)
    periods = billing_periods(start, end, months)

    assert periods[0].start == start
    assert periods[-1].end == end
    assert all(a.end + timedelta(days=1) == b.start for a, b in pairwise(periods))
    assert sum(p.days for p in periods) == days_inclusive(start, end)
    assert all(p.days == p.full_days for p in periods[:-1])
