"""Contract terms over time: what a recurring line bills per period after amendments,
discount expiries, credits and cancellations, and the schedule version each produces.

Worked examples first, with their arithmetic; then properties over generated contracts.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from models.amendment import Amendment, AmendmentKind, Treatment, apply_amendment, treatment_of
from models.billing import first_invoice
from models.contract_flow import Credit, CreditBalance
from models.contract_invoicing import (
    apply_credits,
    billed_key,
    first_period_billed,
    recurring_invoice,
    settlement_note,
)
from models.contract_terms import ContractTerms
from models.deal import BillingFrequency, DealLine, DealSubmission, ProductType
from models.modification import CreditTooLarge, credited_schedule, modified_schedule
from models.money import Money, money_sum
from models.proration import DayCount
from models.recognition import build_schedule
from tests.builders import make_deal

MONTHLY, QUARTERLY, ANNUALLY = (
    BillingFrequency.MONTHLY, BillingFrequency.QUARTERLY, BillingFrequency.ANNUALLY,
)  # fmt: skip


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def subscription(seats: str = "1", per_seat: str = "120", *, frequency: BillingFrequency = MONTHLY,
                 start: date = date(2027, 1, 1), end: date = date(2027, 12, 31),
                 **line: object) -> DealSubmission:  # fmt: skip
    fields = {"line_id": "L1", "product": "Platform", "product_type": ProductType.SUBSCRIPTION,
              "quantity": Decimal(seats), "list_price": Decimal(per_seat),
              "net_price": Decimal(per_seat), "standalone_selling_price": Decimal(per_seat),
              **line}  # fmt: skip
    return make_deal([DealLine.model_validate(fields)], start=start, end=end,
                     frequency=frequency)  # fmt: skip


def change(kind: AmendmentKind, on: date, **fields: object) -> Amendment:
    return Amendment(amendment_id=f"A-{on}", kind=kind, effective_date=on,
                     requested_by="priya.raman", reason="customer request", **fields)  # fmt: skip


def amounts(terms: ContractTerms) -> list[Money]:
    return [terms.line_amount("L1", p) for p in terms.periods]


# --- worked examples ------------------------------------------------------------------------


def test_an_upgrade_half_way_through_a_month_bills_the_difference_for_the_unused_half() -> None:
    """Stripe's documented proration: a customer on 10 a month moves to 20 a month half way
    through a 30-day month is credited 5 (unused half at 10) and charged 10 (the half at 20):
    net +5. Here: 120 for the year billed monthly (10), upgraded to 2 seats (20 a month) from
    2027-04-16: April 1..15 at 10 and 16..30 at 20 = 10 − round(10 × 15/30) + round(20 × 15/30)
    = 10 − 5 + 10 = 15; May on 20."""
    booked = ContractTerms.booked(subscription())
    after = apply_amendment(booked, change(AmendmentKind.SEAT_CHANGE, date(2027, 4, 16),
                                           line_id="L1", new_quantity=Decimal(2)))  # fmt: skip
    april, may = after.periods[3], after.periods[4]
    assert after.line_amount("L1", april) == usd("15.00")
    assert after.line_amount("L1", may) == usd("20.00")
    assert after.line_consideration("L1") == usd("205.00")  # 3 × 10 + 15 + 8 × 20


def test_the_same_upgrade_under_30_360_counts_every_month_as_30_days() -> None:
    """From 2027-03-16 in March (31 days): actual counts 16 of 31 days left, 30/360 counts 15
    of 30. Actual: 10 − round(10 × 16/31) + round(20 × 16/31) = 10 − 5.16 + 10.32 = 15.16;
    30/360: 10 − 5 + 10 = 15.00."""
    amendment = change(AmendmentKind.SEAT_CHANGE, date(2027, 3, 16), line_id="L1",
                       new_quantity=Decimal(2))  # fmt: skip
    for day_count, expected in ((DayCount.ACTUAL, "15.16"), (DayCount.THIRTY_360, "15.00")):
        terms = ContractTerms.booked(subscription(), day_count)
        after = apply_amendment(terms, amendment)
        assert after.line_amount("L1", after.periods[2]) == usd(expected)


def test_a_discount_stops_on_its_expiry_without_anyone_stopping_it() -> None:
    """20% off through 2027-03-31 (a three-month coupon, as Chargebee and Lago model a
    repeating coupon): 120 list for the year is 10 a month, 8 with the discount. Jan..Mar 8,
    Apr..Dec 10: the contract brings in 3 × 8 + 9 × 10 = 114."""
    deal = subscription(list_price=Decimal(120), net_price=Decimal(96),
                        discount_percent=Decimal(20), discount_expiry=date(2027, 3, 31))  # fmt: skip
    terms = ContractTerms.booked(deal)
    assert amounts(terms) == [usd("8")] * 3 + [usd("10")] * 9
    assert terms.line_consideration("L1") == usd("114.00")
    # Revenue is the whole consideration, straight-lined: the discount is spread, not front-loaded.
    assert build_schedule(deal).transaction_price == usd("114.00")


def test_a_cancellation_credits_the_unused_days_of_a_period_paid_in_advance() -> None:
    """12,000 billed on 2027-01-01 for the year; cancelled from 2027-07-01. Unused: 184 of 365
    days, 12,000 × 184 / 365 = 6,049.315 → a credit note of 6,049.32 (half-up)."""
    deal = subscription("10", "1200", frequency=ANNUALLY)
    booked = ContractTerms.booked(deal)
    billed = {billed_key(1, "L1"): usd("12000")}
    after = apply_amendment(booked, change(AmendmentKind.CANCELLATION, date(2027, 7, 1)))
    event, settled = settlement_note(after, billed, 1, "cancellation")
    assert event is not None
    assert [ln.amount for ln in event.lines] == [usd("-6049.32")]
    assert settled == {billed_key(1, "L1"): usd("5950.68")}
    assert after.end == date(2027, 6, 30)


def test_credits_offset_the_periods_they_name_and_never_take_an_invoice_below_zero() -> None:
    """A 1,500 credit naming periods 3 and 4 of a 1,000-a-month contract: period 3 shows
    −1,000 (nothing is owed), period 4 −500, and nothing is left."""
    terms = ContractTerms.booked(subscription("10", "1200"))
    balance = CreditBalance(credit=Credit(credit_id="SC-1", amount=Decimal(1500), reason="SLA",
                                          granted_by="daniel.cho", applies_to_periods=[3, 4]),
                            remaining=usd("1500"))  # fmt: skip
    credits = [balance]
    billed = first_period_billed(terms, first_invoice(terms.current))  # period 1: 1,000
    totals = []
    for n in (2, 3, 4, 5):
        event, billed, credits = recurring_invoice(terms, n, billed, credits)
        assert event is not None
        totals.append(money_sum((ln.amount for ln in event.lines), "USD"))
    assert totals == [usd("1000"), usd("0"), usd("500"), usd("1000")]
    assert credits[0].remaining == usd("0")
    lines, _ = apply_credits([], credits, 3, "USD")
    assert lines == []


def test_a_seat_change_below_ssp_is_prospective_revenue_already_earned_does_not_move() -> None:
    """10 seats at 1,200 for 2027 (12,000, 1,000 a month) whose SSP is 1,500 a seat, 5 more
    from 2027-04-16 at the same 1,200 (18,000 a year): below SSP, so not a separate contract
    (25-12) but 25-13(a). Billing brings in 3 × 1,000 + (1,000 + 250) + 8 × 1,500 = 16,250,
    so the schedule grows by 4,250. Jan..Mar keep their entries; April keeps 15 of 30 days
    of its old entry and the rest is spread by day from 2027-04-16."""
    deal = subscription("10", "1200", standalone_selling_price=Decimal(1500))
    booked = ContractTerms.booked(deal)
    amendment = change(AmendmentKind.SEAT_CHANGE, date(2027, 4, 16), line_id="L1",
                       new_quantity=Decimal(15))  # fmt: skip
    after = apply_amendment(booked, amendment)
    old = build_schedule(deal).entries
    new = modified_schedule(old, booked, after, amendment, frozenset())
    assert treatment_of(booked, amendment) is Treatment.PROSPECTIVE
    assert money_sum((e.amount for e in new), "USD") == usd("16250.00")
    assert new[:3] == old[:3]
    assert [e.period for e in new] == [e.period for e in old]
    # 12,000 × 30 / 365 = 986.30 for April before; half of it stays (493.15), the remaining
    # 16,250 − 2,958.90 (Jan..Mar) − 493.15 = 12,797.95 goes over 260 days from 04-16.
    april = new[3].amount
    assert april == usd("493.15") + usd("12797.95").times(Decimal(15) / Decimal(260))


def test_a_credit_lowers_the_revenue_still_to_come_in_proportion() -> None:
    deal = subscription("10", "1200")
    entries = build_schedule(deal).entries
    credited = credited_schedule(entries, usd("1500"), date(2027, 6, 1))
    assert credited[:5] == entries[:5]  # Jan..May are earned by June 1: untouched
    assert money_sum((e.amount for e in credited), "USD") == usd("10500.00")
    try:
        credited_schedule(entries, usd("9000"), date(2027, 6, 1))
    except CreditTooLarge as exc:
        # June 1 to December 31 is 214 of 365 days: 12,000 × 214 / 365 = 7,035.62.
        assert "is more than the revenue still to be recognised (7,035.62 USD)" in str(exc)
    else:
        raise AssertionError("a credit larger than the revenue to come was taken")


# --- properties -------------------------------------------------------------------------------


@st.composite
def seat_changes(draw: st.DrawFn) -> tuple[DealSubmission, Amendment]:
    frequency = draw(st.sampled_from([MONTHLY, QUARTERLY, ANNUALLY]))
    start = draw(st.dates(date(2026, 1, 1), date(2028, 12, 31)))
    days = draw(st.integers(60, 1100))
    end = start + timedelta(days=days)
    seats = draw(st.integers(1, 500))
    per_seat = Decimal(draw(st.integers(100, 5_000_000))) / 100
    deal = subscription(str(seats), str(per_seat), frequency=frequency, start=start, end=end)
    on = start + timedelta(days=draw(st.integers(1, days)))
    new_seats = draw(st.integers(1, 800).filter(lambda n: n != seats))
    return deal, change(
        AmendmentKind.SEAT_CHANGE, on, line_id="L1", new_quantity=Decimal(new_seats)
    )


@settings(max_examples=60, deadline=None)
@given(seat_changes())
def test_periods_bill_the_consideration_and_unchanged_periods_bill_their_plan(
    case: tuple[DealSubmission, Amendment],
) -> None:
    deal, amendment = case
    booked = ContractTerms.booked(deal)
    after = apply_amendment(booked, amendment)
    assert money_sum(amounts(booked), "USD") == deal.lines[0].net_total("USD")
    assert money_sum(amounts(after), "USD") == after.line_consideration("L1")
    for before_amount, after_amount, p in zip(amounts(booked), amounts(after), after.periods,
                                              strict=True):  # fmt: skip
        if p.end < amendment.effective_date:
            assert before_amount == after_amount


@settings(max_examples=60, deadline=None)
@given(seat_changes(), st.booleans())
def test_all_periods_at_once_cost_what_each_period_costs_alone(
    case: tuple[DealSubmission, Amendment], cancel: bool
) -> None:
    """`line_amounts` splits each price once for the whole term; it must give every period
    exactly what `line_amount` gives it, through amendments and a cancellation."""
    deal, amendment = case
    after = apply_amendment(ContractTerms.booked(deal), amendment)
    if cancel:
        after = after.model_copy(update={"cancelled_on": amendment.effective_date})
    for terms in (ContractTerms.booked(deal), after):
        assert terms.line_amounts("L1") == amounts(terms)
        assert len(terms.line_amounts("L1")) == len(terms.periods)


def test_a_discount_expiring_mid_period_is_the_same_whole_term_or_period_by_period() -> None:
    deal = subscription("10", "100", frequency=QUARTERLY, list_price=Decimal("125"),
                        discount_percent=Decimal("20"), discount_expiry=date(2027, 5, 15))  # fmt: skip
    terms = ContractTerms.booked(deal)
    assert terms.line_amounts("L1") == amounts(terms)
    assert len(set(terms.line_amounts("L1"))) > 1  # the price did change inside the term


@settings(max_examples=60, deadline=None)
@given(seat_changes())
def test_a_modified_schedule_sums_to_what_the_contract_bills_and_keeps_what_was_earned(
    case: tuple[DealSubmission, Amendment],
) -> None:
    deal, amendment = case
    booked = ContractTerms.booked(deal)
    after = apply_amendment(booked, amendment)
    old = build_schedule(deal).entries
    new = modified_schedule(old, booked, after, amendment, frozenset())
    assert money_sum((e.amount for e in new), "USD") == after.line_consideration("L1")
    earned_before = [e for e in old if e.recognition_date < amendment.effective_date]
    assert new[: len(earned_before)] == earned_before
    assert all(e.amount.amount >= 0 for e in new)


@settings(max_examples=60, deadline=None)
@given(seat_changes())
def test_invoices_and_settlements_add_up_to_the_consideration_whenever_the_change_arrives(
    case: tuple[DealSubmission, Amendment],
) -> None:
    """However late the amendment is taken (any period already invoiced), the invoices of
    the whole term, with their settlements, bill exactly the line's consideration."""
    deal, amendment = case
    booked = ContractTerms.booked(deal)
    after = apply_amendment(booked, amendment)
    billed: dict[str, Money] = {}
    total, terms = usd("0"), booked
    for period in booked.periods:
        if terms is booked and period.start > amendment.effective_date:
            terms = after  # taken after the period holding its date was invoiced
        event, billed, _ = recurring_invoice(terms, period.number, billed, [])
        if event is not None:
            total = total + money_sum((ln.amount for ln in event.lines), "USD")
    if terms is booked:
        terms = after
    note, _ = settlement_note(terms, billed, len(booked.periods), "final settlement")
    if note is not None:
        total = total + money_sum((ln.amount for ln in note.lines), "USD")
    assert total == after.line_consideration("L1")
