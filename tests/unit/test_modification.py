"""Contract modifications (ASC 606-10-25-12/13): which treatment an amendment gets and the
schedule version it writes. The standard's illustrative examples first, with their
arithmetic; then properties over generated contracts and amendments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import event, given, settings

from models.amendment import (
    Amendment,
    AmendmentKind,
    Treatment,
    amendment_problems,
    apply_amendment,
    treatment_of,
)
from models.contract_terms import ContractTerms, is_recurring
from models.deal import BillingFrequency, DealLine, DealSubmission, ProductType, RecognitionType
from models.modification import modified_schedule
from models.money import Money, money_sum
from models.recognition import ScheduleEntry, ScheduleKind, build_schedule
from tests.builders import make_deal, make_line, make_milestone, usd
from tests.strategies import modifications

MILESTONE, PERPETUAL = RecognitionType.MILESTONE, RecognitionType.PERPETUAL_LICENSE


def change(kind: AmendmentKind, on: date, **fields: object) -> Amendment:
    return Amendment(amendment_id="A-1", kind=kind, effective_date=on,
                     requested_by="priya.raman", reason="customer request", **fields)  # fmt: skip


def amounts(entries: list[ScheduleEntry], line_id: str) -> list[str]:
    return [str(e.amount.amount) for e in entries if e.line_id == line_id]


def total(entries: list[ScheduleEntry], line_id: str | None = None) -> Money:
    mine = (e.amount for e in entries if line_id in (None, e.line_id))
    return money_sum(mine, "USD")


Versions = tuple[list[ScheduleEntry], list[ScheduleEntry], Treatment]


def modify(
    deal: DealSubmission, amendment: Amendment, delivered: frozenset[str] = frozenset()
) -> Versions:
    """The booked schedule, the version the amendment writes (checked valid on its own
    date first) and its treatment."""
    booked = ContractTerms.booked(deal)
    assert amendment_problems(booked, amendment, amendment.effective_date, delivered) == []
    old = build_schedule(deal).entries
    new = modified_schedule(old, booked, apply_amendment(booked, amendment), amendment, delivered)
    return old, new, treatment_of(booked, amendment)


# --- ASC 606-10-55-111..55-116, Example 5: a contract for goods --------------------------------


def products() -> DealSubmission:
    """120 products for 12,000 (100 each), shipped 20 a month from January to June 2027 and
    each shipment accepted on delivery: a milestone line (S1..S6, 2,000 each). Example 5
    gives the products' SSP when the contract is modified, 95 (55-112), and no other; the
    line carries it. With one line, the SSP does not change the booked allocation (all
    12,000 to the one obligation): it matters only as the weight at the modification."""
    line = make_line("P", ProductType.SERVICES, "100", ssp="95", quantity="120",
                     recognition=MILESTONE, product="Products")  # fmt: skip
    dues = [date(2027, 1, 29), date(2027, 2, 26), date(2027, 3, 31), date(2027, 4, 30),
            date(2027, 5, 28), date(2027, 6, 30)]  # fmt: skip
    return make_deal([line], start=date(2027, 1, 1), end=date(2027, 6, 30),
                     frequency=BillingFrequency.MILESTONE, recognition=MILESTONE,
                     milestones=[make_milestone(f"S{i}", "P", due, "2000")
                                 for i, due in enumerate(dues, start=1)])  # fmt: skip


SHIPPED = frozenset({"S1", "S2", "S3"})  # 60 products delivered and recognised: 6,000


def thirty_more(per_product: str) -> Amendment:
    """From 2027-04-01, 30 more products (not in the original contract) at `per_product`,
    10 in each of the remaining shipments (T4..T6)."""
    line = make_line("P2", ProductType.SERVICES, per_product, ssp="95", quantity="30",
                     recognition=MILESTONE, product="Products (30 more)")  # fmt: skip
    lot = str(Decimal(per_product) * 10)
    dues = [date(2027, 4, 30), date(2027, 5, 28), date(2027, 6, 30)]
    return change(AmendmentKind.ADD_DELIVERABLES, date(2027, 4, 1), new_line=line,
                  milestones=[make_milestone(f"T{i}", "P2", due, lot)
                              for i, due in zip((4, 5, 6), dues, strict=True)])  # fmt: skip


def test_asc_606_example_5_case_a_products_added_at_their_ssp_are_a_separate_contract() -> None:
    """Case A (55-112, 55-113): the 30 products cost 2,850 more, 95 each, their SSP, and are
    distinct: a separate contract (25-12). The original 120 stay at 100 each (S4..S6 keep
    2,000 for 20 products), the 30 are recognised at 95 each (T4..T6: 950 for 10).
    Total 12,000 + 2,850 = 14,850."""
    old, new, treatment = modify(products(), thirty_more("95"), SHIPPED)

    assert treatment is Treatment.SEPARATE_CONTRACT
    assert [e for e in new if e.line_id == "P"] == old
    assert amounts(new, "P2") == ["950.00", "950.00", "950.00"]
    assert total(new) == usd("14850")


def test_asc_606_example_5_case_b_products_added_below_ssp_blend_with_those_remaining() -> None:
    """Case B (55-114..55-116): the 30 products are agreed at 80 each, below the SSP of 95,
    so not a separate contract; the products left are distinct from those delivered, so
    25-13(a): the remaining consideration is (100 × 60 not yet delivered) + (80 × 30) =
    6,000 + 2,400 = 8,400 over the 90 products left, 93.33 each. By relative SSP at the
    modification: the 60 left of P weigh 120 × 95 × 6,000/12,000 = 5,700, the 30 of P2
    30 × 95 = 2,850, so 8,400 × 2/3 = 5,600 for P and 2,800 for P2.
    P:  5,600 over S4..S6 (2,000 each): 1,866.666… → 1,866.67, 1,866.67, 1,866.66
        (the two cents left go to the earliest of three equal remainders); 93.33 a product.
    P2: 2,800 over T4..T6 (800 each): 933.34, 933.33, 933.33; 93.33 a product.
    S1..S3 (6,000 recognised) do not move. Total 6,000 + 8,400 = 14,400.
    Not reproduced: the standard's contract price for the 30 is 50 each (1,500), because a
    credit of 900 (15 × 60) for defects in the products already delivered is folded in;
    it reduces revenue already recognised at the modification (55-115). This product's
    credits (`credited_schedule`) lower revenue still to come, so the amendment books the
    agreed 80 and the 900 is left out of this example."""
    old, new, treatment = modify(products(), thirty_more("80"), SHIPPED)

    assert treatment is Treatment.PROSPECTIVE
    assert [e for e in new if e.milestone_id in SHIPPED] == old[:3]
    assert amounts(new, "P") == ["2000.00", "2000.00", "2000.00",
                                 "1866.67", "1866.67", "1866.66"]  # fmt: skip
    assert amounts(new, "P2") == ["933.34", "933.33", "933.33"]
    assert total(new) == usd("14400")


# --- ASC 606-10-55-125..55-128, Example 7: a services contract --------------------------------


def test_asc_606_example_7_the_third_years_fee_cut_is_prospective_over_the_year_left() -> None:
    """Example 7: weekly office cleaning for three years at 100,000 a year (its SSP), so
    2029-01-01 .. 2031-12-31 (1,095 days, no leap day): 300,000, 100,000 a year by days.
    At the end of year 2 the fee for year 3 is cut to 80,000 (here a −20% uplift on the
    300,000 term price from 2031-01-01: 240,000 / 3 = 80,000 billed for 2031). Each week is
    distinct, so 25-13(a): years 1 and 2 keep 200,000; year 3 gets what it had not
    recognised (100,000) + the change (−20,000) = 80,000, by days (January 80,000 × 31/365
    = 6,794.52). Total 280,000.
    Not reproduced: the same modification extends the contract by three years for 200,000
    (66,667 a year), so the standard spreads 80,000 + 200,000 = 280,000 over 4 years at
    70,000 a year (SSP 4 × 80,000 = 320,000). A contract's term is fixed when it is booked
    (a renewal is a new contract, SPEC §7), so the extension cannot be an amendment here;
    booked as its own contract, the renewal would recognise 66,666.67 a year, and year 3
    80,000, instead of the standard's 70,000 throughout."""
    line = make_line("C", ProductType.SUBSCRIPTION, "300000", product="Weekly office cleaning")
    deal = make_deal([line], start=date(2029, 1, 1), end=date(2031, 12, 31))
    cut = change(AmendmentKind.PRICE_UPLIFT, date(2031, 1, 1), line_id="C",
                 uplift_percent=Decimal(-20))  # fmt: skip
    old, new, treatment = modify(deal, cut)

    assert treatment is Treatment.PROSPECTIVE
    assert new[:24] == old[:24]
    assert total(new[:24]) == usd("200000")
    assert total(new[24:]) == usd("80000")
    assert new[24].amount == usd("6794.52")


# --- 25-13(a) over several obligations, and 25-12 for seats ---------------------------------


def bundle() -> DealSubmission:
    """2027, billed annually. LIC perpetual licence net 30,000 SSP 60,000; SUB subscription
    net 60,000 SSP 60,000; SUP support net 30,000 SSP 60,000. Price 120,000 over SSP 180,000:
    40,000 each. SUB and SUP each recognise 40,000 by days (Oct..Dec 10,082.19 of it)."""
    return make_deal([
        make_line("LIC", ProductType.LICENSE, "30000", ssp="60000", recognition=PERPETUAL),
        make_line("SUB", ProductType.SUBSCRIPTION, "60000", ssp="60000"),
        make_line("SUP", ProductType.SUPPORT, "30000", ssp="60000"),
    ], start=date(2027, 1, 1), end=date(2027, 12, 31))  # fmt: skip


def test_a_price_uplift_on_one_line_is_reallocated_over_every_remaining_obligation() -> None:
    """SUB +20% from 2027-10-01 (92 of 365 days left): the year's bill becomes 60,000 +
    72,000 × 92/365 − 60,000 × 92/365 = 60,000 + 18,147.95 − 15,123.29 = 63,024.66, so
    +3,024.66. 25-13(a): LIC was delivered on 2027-01-01 and keeps 40,000. SUB and SUP had
    not recognised 10,082.19 each: 20,164.38 + 3,024.66 = 23,189.04 goes over them by the
    SSP of what is left (60,000 × 92/365 each, equal): 11,594.52 each, 1,512.33 more than
    before for each (the uplift is shared, not kept by SUB). By days: October 11,594.52 ×
    31/92 = 3,906.85, November × 30/92 = 3,780.82, December 3,906.85.
    Total 120,000 + 3,024.66 = 123,024.66."""
    uplift = change(AmendmentKind.PRICE_UPLIFT, date(2027, 10, 1), line_id="SUB",
                    uplift_percent=Decimal(20))  # fmt: skip
    old, new, treatment = modify(bundle(), uplift)

    assert treatment is Treatment.PROSPECTIVE
    assert [e for e in new if e.line_id == "LIC"] == [e for e in old if e.line_id == "LIC"]
    for line_id in ("SUB", "SUP"):
        mine = [e for e in new if e.line_id == line_id]
        assert mine[:9] == [e for e in old if e.line_id == line_id][:9]
        assert amounts(mine, line_id)[9:] == ["3906.85", "3780.82", "3906.85"]
        assert total(mine) == usd("41512.33")  # 40,000 − 10,082.19 + 11,594.52
    assert total(new) == usd("123024.66")


def test_seats_added_at_their_ssp_are_a_separate_contract_and_nothing_booked_moves() -> None:
    """10 seats at 1,200 for 2027 (SSP 1,200), billed monthly; 5 more at 1,200 from
    2027-04-16: added distinct services at their SSP, a separate contract (25-12). Billing
    brings in 16,250 (3 × 1,000 + 1,250 + 8 × 1,500), 4,250 more, recognised by day over
    2027-04-16 .. 12-31 (260 days) on top of the booked entries: April 986.30 + 4,250 ×
    15/260 (245.19) = 1,231.49, May 1,019.18 + 4,250 × 31/260 (506.73) = 1,525.91."""
    deal = make_deal([make_line("L1", ProductType.SUBSCRIPTION, "1200", quantity="10")],
                     start=date(2027, 1, 1), end=date(2027, 12, 31),
                     frequency=BillingFrequency.MONTHLY)  # fmt: skip
    seats = change(AmendmentKind.SEAT_CHANGE, date(2027, 4, 16), line_id="L1",
                   new_quantity=Decimal(15))  # fmt: skip
    old, new, treatment = modify(deal, seats)

    assert treatment is Treatment.SEPARATE_CONTRACT
    assert new[:3] == old[:3]
    assert amounts(new, "L1")[3:5] == ["1231.49", "1525.91"]
    assert total(new) == usd("16250")


def test_a_cut_leaving_less_than_was_recognised_trues_up_in_proportion() -> None:
    """LIC perpetual licence net 10,000 SSP 90,000 and SUB 10 seats at 9,000 (SSP 1,000) for
    2027, billed annually: price 100,000 over SSP 100,000, so LIC 90,000 and SUB 10,000.
    From 2027-07-01 SUB drops to 1 seat: the year bills 90,000 − 90,000 × 184/365 +
    9,000 × 184/365 = 90,000 − 45,369.86 + 4,536.99 = 49,167.13; the contract now brings in
    59,167.13. By then LIC recognised 90,000 and SUB 4,958.92 (Jan..Jun): 94,958.92, so
    35,791.79 too much. SUB, the only obligation left, gets nothing more, and the excess is
    taken back in proportion to what each recognised: LIC 35,791.79 × 90,000 / 94,958.92 =
    33,922.68 (→ 56,077.32), SUB the other 1,869.11, from its latest months (June 413.70,
    May 427.48 to 0; April 986.30 → 624.05; → 3,089.81). 56,077.32 + 3,089.81 = 59,167.13."""
    deal = make_deal([
        make_line("LIC", ProductType.LICENSE, "10000", ssp="90000", recognition=PERPETUAL),
        make_line("SUB", ProductType.SUBSCRIPTION, "9000", ssp="1000", quantity="10"),
    ], start=date(2027, 1, 1), end=date(2027, 12, 31))  # fmt: skip
    cut = change(AmendmentKind.SEAT_CHANGE, date(2027, 7, 1), line_id="SUB",
                 new_quantity=Decimal(1))  # fmt: skip
    _, new, treatment = modify(deal, cut)

    assert treatment is Treatment.PROSPECTIVE
    assert amounts(new, "LIC") == ["56077.32"]
    assert amounts(new, "SUB") == ["849.32", "767.12", "849.32", "624.05", "0.00", "0.00"]
    assert total(new) == usd("59167.13")


@pytest.mark.parametrize(
    ("kind", "fields", "treatment"),
    [
        (AmendmentKind.SEAT_CHANGE, {"line_id": "SUB", "new_quantity": Decimal(2)},
         Treatment.SEPARATE_CONTRACT),  # more seats at 60,000, the SSP
        (AmendmentKind.SEAT_CHANGE, {"line_id": "SUP", "new_quantity": Decimal(2)},
         Treatment.PROSPECTIVE),  # more seats at 30,000, below the SSP of 60,000
        (AmendmentKind.SEAT_CHANGE, {"line_id": "SUB", "new_quantity": Decimal("0.5")},
         Treatment.PROSPECTIVE),  # fewer seats: nothing added
        (AmendmentKind.PRICE_UPLIFT, {"line_id": "SUB", "uplift_percent": Decimal(5)},
         Treatment.PROSPECTIVE),  # a price change adds nothing
        (AmendmentKind.MODULE_UPSELL, {"new_line": make_line(
            "ANA", ProductType.SUBSCRIPTION, "20000", ssp="20000")},
         Treatment.SEPARATE_CONTRACT),
        (AmendmentKind.MODULE_UPSELL, {"new_line": make_line(
            "ANA", ProductType.SUBSCRIPTION, "15000", ssp="20000")},
         Treatment.PROSPECTIVE),
        (AmendmentKind.MODULE_UPSELL, {"new_line": make_line(
            "ANA", ProductType.SUBSCRIPTION, "20000", ssp="20000").model_copy(
            update={"ssp_highly_variable": True})},
         Treatment.PROSPECTIVE),  # no observable SSP to be priced at
        (AmendmentKind.CANCELLATION, {}, Treatment.PROSPECTIVE),
    ],
)  # fmt: skip
def test_the_treatment_follows_what_is_added_and_at_what_price(
    kind: AmendmentKind, fields: dict[str, object], treatment: Treatment
) -> None:
    terms = ContractTerms.booked(bundle())

    assert treatment_of(terms, change(kind, date(2027, 10, 1), **fields)) is treatment


def test_seats_whose_discount_runs_out_after_the_change_are_not_priced_at_ssp() -> None:
    """1,200 a seat (SSP 1,200) with 20% off list 1,500 until 2027-06-15: seats added from
    2027-04-16 bill 1,200 until then and 1,500 after, not the SSP throughout (prospective).
    Added from 2027-07-01 they bill list 1,500 only: not the SSP either."""
    line = DealLine(line_id="L1", product="Platform", product_type=ProductType.SUBSCRIPTION,
                    quantity=Decimal(10), list_price=Decimal(1500), net_price=Decimal(1200),
                    standalone_selling_price=Decimal(1200), discount_percent=Decimal(20),
                    discount_expiry=date(2027, 6, 15))  # fmt: skip
    terms = ContractTerms.booked(make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31)))
    for on in (date(2027, 4, 16), date(2027, 7, 1)):
        seats = change(AmendmentKind.SEAT_CHANGE, on, line_id="L1", new_quantity=Decimal(15))
        assert treatment_of(terms, seats) is Treatment.PROSPECTIVE
    at_list = line.model_copy(update={"standalone_selling_price": Decimal(1500)})
    terms = ContractTerms.booked(make_deal([at_list], start=date(2027, 1, 1),
                                           end=date(2027, 12, 31)))  # fmt: skip
    seats = change(AmendmentKind.SEAT_CHANGE, date(2027, 7, 1), line_id="L1",
                   new_quantity=Decimal(15))  # fmt: skip
    assert treatment_of(terms, seats) is Treatment.SEPARATE_CONTRACT


def test_added_deliverables_are_refused_naming_each_field() -> None:
    terms = ContractTerms.booked(products())
    line = make_line("P2", ProductType.SERVICES, "80", quantity="30", recognition=MILESTONE)
    bad = change(AmendmentKind.ADD_DELIVERABLES, date(2027, 4, 1), new_line=line, milestones=[
        make_milestone("S4", "P2", date(2027, 4, 30), "800"),
        make_milestone("T5", "P", date(2027, 7, 31), "800"),
    ])  # fmt: skip

    assert amendment_problems(terms, bad, date(2027, 4, 1), SHIPPED) == [
        "milestones[0].milestone_id: S4 is already a milestone of this contract",
        "milestones[1].line_id: P must be P2",
        "milestones[1].due_date: 2027-07-31 must fall between 2027-04-01 and 2027-06-30 (the "
        "last day of service)",
        "milestones: they total 1,600.00 USD, the new line 2,400.00 USD",
    ]
    ratable = make_line("P", ProductType.SUBSCRIPTION, "80", quantity="30",
                        recognition=RecognitionType.RATABLE)  # fmt: skip
    assert amendment_problems(terms, change(AmendmentKind.ADD_DELIVERABLES, date(2027, 4, 1),
                                            new_line=ratable), date(2027, 4, 1), SHIPPED) == [
        "new_line.line_id: P is already a line of this contract",
        "new_line.recognition: added deliverables are a milestone line, each recognised when "
        "delivered and accepted",
        "milestones: list the new line's deliverables",
    ]  # fmt: skip


def test_added_deliverables_are_billed_and_counted_in_the_tcv() -> None:
    after = apply_amendment(ContractTerms.booked(products()), thirty_more("80"))

    assert after.current.total_contract_value == Decimal(14400)
    assert [m.milestone_id for m in after.current.milestones][-3:] == ["T4", "T5", "T6"]


# --- properties -------------------------------------------------------------------------------


def brings_in(terms: ContractTerms) -> Money:
    """What the terms bring in: recurring lines as billed, the others at their net totals."""
    deal = terms.current
    return money_sum(
        (terms.line_consideration(ln.line_id) if is_recurring(deal, ln)
         else ln.net_total(terms.currency) for ln in deal.lines), terms.currency,
    )  # fmt: skip


ADDING = (AmendmentKind.MODULE_UPSELL, AmendmentKind.ADD_DELIVERABLES)


def adds(deal: DealSubmission, a: Amendment) -> bool:
    """Whether `a` only adds: new lines, more seats, a higher price."""
    line = next((ln for ln in deal.lines if ln.line_id == a.line_id), None)
    if a.kind in ADDING:
        return True
    if a.kind is AmendmentKind.SEAT_CHANGE:
        return line is not None and a.new_quantity is not None and a.new_quantity > line.quantity
    return a.uplift_percent is not None and a.uplift_percent > 0


@settings(max_examples=80, deadline=None)
@given(modifications())
def test_a_modification_sums_to_what_was_there_plus_the_change_and_never_goes_negative(
    case: tuple[DealSubmission, Amendment, frozenset[str]],
) -> None:
    deal, amendment, delivered = case
    booked = ContractTerms.booked(deal)
    assert amendment_problems(booked, amendment, amendment.effective_date, delivered) == []
    after = apply_amendment(booked, amendment)
    schedule = build_schedule(deal)
    assert brings_in(booked) == schedule.transaction_price

    new = modified_schedule(schedule.entries, booked, after, amendment, delivered)
    event(f"{amendment.kind.value}: {treatment_of(booked, amendment).value}")

    currency = deal.currency
    assert money_sum((e.amount for e in new), currency) == brings_in(after)
    assert all(e.amount.amount >= 0 for e in new)
    tm = [e for e in schedule.entries if e.kind is ScheduleKind.TM]
    assert [e for e in new if e.kind is ScheduleKind.TM] == tm


@settings(max_examples=80, deadline=None)
@given(modifications())
def test_nothing_recognised_before_the_modification_moves(
    case: tuple[DealSubmission, Amendment, frozenset[str]],
) -> None:
    """Entries dated before the effective date (a milestone's only once accepted) stay as they were,
    unless the amendment leaves less than was recognised: then the amended line gets no
    entry from the effective date on, and recognised entries only go down."""
    deal, amendment, delivered = case
    booked = ContractTerms.booked(deal)
    old = build_schedule(deal).entries
    new = modified_schedule(old, booked, apply_amendment(booked, amendment), amendment, delivered)

    earned = [e for e in old if e.milestone_id in delivered or (
        e.kind is not ScheduleKind.MILESTONE and e.recognition_date < amendment.effective_date)]  # fmt: skip
    target = amendment.line_id
    short = target is not None and not any(
        e.line_id == target and e.recognition_date >= amendment.effective_date for e in new)  # fmt: skip
    event("a shortfall trued up" if short else "nothing recognised moved")
    if adds(deal, amendment) or not short:
        assert all(e in new for e in earned)
    else:
        for e in earned:
            same = [n for n in new if (n.line_id, n.period, n.milestone_id) ==
                    (e.line_id, e.period, e.milestone_id)]  # fmt: skip
            assert sum((n.amount.amount for n in same), Decimal(0)) <= e.amount.amount
