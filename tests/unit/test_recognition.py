"""Recognition schedules (SPEC §5): worked examples, then properties over random deals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.deal import BillingFrequency, DealSubmission, ProductType, RecognitionType
from models.money import Money, money_sum
from models.recognition import (
    RecognitionSchedule,
    ScheduleKind,
    allocate_transaction_price,
    build_schedule,
)
from tests.builders import make_deal, make_line, make_milestone, usd
from tests.strategies import deals

RATABLE = RecognitionType.RATABLE
PERPETUAL = RecognitionType.PERPETUAL_LICENSE
MILESTONE = RecognitionType.MILESTONE
TM = RecognitionType.TIME_AND_MATERIALS


def amounts(schedule: RecognitionSchedule, line_id: str) -> list[str]:
    return [str(e.amount.amount) for e in schedule.entries if e.line_id == line_id]


def all_milestone_ids(deal: DealSubmission) -> frozenset[str]:
    return frozenset(m.milestone_id for m in deal.milestones)


# --- worked examples ----------------------------------------------------------------------


def subscription_deal() -> DealSubmission:
    return make_deal([make_line("SUB", ProductType.SUBSCRIPTION, "120000")])


def test_annual_subscription_is_recognised_by_days_in_each_month() -> None:
    """USD 120,000 subscription, 2026-01-01 .. 2026-12-31 (365 days).

    month  days  120,000 * days / 365   floor      remainder (cents)
    Jan    31    10,191.780821          10,191.78  .08   (Mar May Jul Aug Oct Dec alike)
    Feb    28     9,205.479452           9,205.47  .95   -> +0.01 (largest)
    Apr    30     9,863.013699           9,863.01  .37   -> +0.01 (tie, earliest)
    Jun    30     9,863.013699           9,863.01  .37   -> +0.01 (tie, next)
    Sep    30     9,863.013699           9,863.01  .37   (Nov alike)
    floors: 7 * 10,191.78 + 4 * 9,863.01 + 9,205.47 = 119,999.97 -> 3 cents to hand out.
    """
    schedule = build_schedule(subscription_deal())

    assert amounts(schedule, "SUB") == [
        "10191.78", "9205.48", "10191.78", "9863.02", "10191.78", "9863.02",
        "10191.78", "10191.78", "9863.01", "10191.78", "9863.01", "10191.78",
    ]  # fmt: skip
    assert schedule.total() == usd("120000")
    assert [e.recognition_date for e in schedule.entries[:2]] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
    ]


def test_ratable_month_is_recognisable_only_on_its_last_day() -> None:
    """Same subscription. By 2026-03-30: Jan + Feb = 10,191.78 + 9,205.48 = 19,397.26.
    By 2026-03-31 March is earned too: 19,397.26 + 10,191.78 = 29,589.04."""
    schedule = build_schedule(subscription_deal())

    assert schedule.recognisable_as_of(date(2026, 3, 30)) == usd("19397.26")
    assert schedule.recognisable_as_of(date(2026, 3, 31)) == usd("29589.04")
    assert schedule.remaining_as_of(date(2026, 3, 31)) == usd("90410.96")
    assert schedule.recognisable_as_of(date(2025, 12, 31)) == usd("0")


def test_mid_month_term_gives_partial_first_and_last_months() -> None:
    """USD 36,500 subscription, 2026-01-15 .. 2027-01-14 (365 days): 100.00 a day.
    Jan 2026: 15th..31st = 17 days = 1,700.00; Feb: 28 days = 2,800.00;
    Jan 2027: 1st..14th = 14 days = 1,400.00, recognised on the term's last day."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "36500")],
        start=date(2026, 1, 15),
        end=date(2027, 1, 14),
    )
    schedule = build_schedule(deal)

    by_period = schedule.by_period()
    assert by_period["2026-01"] == usd("1700")
    assert by_period["2026-02"] == usd("2800")
    assert by_period["2027-01"] == usd("1400")
    assert schedule.entries[-1].recognition_date == date(2027, 1, 14)
    assert len(by_period) == 13


def bundle_deal() -> DealSubmission:
    """License + support + implementation, sold for 135,000 against 150,000 of SSP."""
    lines = [
        make_line("LIC", ProductType.LICENSE, "85000", ssp="100000", recognition=PERPETUAL),
        make_line("SUP", ProductType.SUPPORT, "30000", ssp="30000"),
        make_line("IMP", ProductType.SERVICES, "20000", ssp="20000", recognition=MILESTONE),
    ]
    milestones = [
        make_milestone("DESIGN", "IMP", date(2026, 2, 27), "8000"),
        make_milestone("GOLIVE", "IMP", date(2026, 4, 30), "12000"),
    ]
    return make_deal(lines, milestones=milestones)


def test_bundle_discount_is_allocated_by_relative_standalone_selling_price() -> None:
    """line  net      SSP       SSP share   allocated = 135,000 * share
    LIC   85,000   100,000   100/150     90,000
    SUP   30,000    30,000    30/150     27,000
    IMP   20,000    20,000    20/150     18,000
    total 135,000  150,000               135,000
    The license is sold at a 15,000 discount but carries 10% of every SSP like the rest."""
    obligations = allocate_transaction_price(bundle_deal())

    assert [(o.line_id, o.allocated) for o in obligations] == [
        ("LIC", usd("90000")),
        ("SUP", usd("27000")),
        ("IMP", usd("18000")),
    ]
    assert [o.net_total for o in obligations] == [usd("85000"), usd("30000"), usd("20000")]


def test_bundle_license_is_recognised_at_start_and_support_ratably() -> None:
    """Allocation 90,000 / 27,000 / 18,000 (previous test), term 2026.
    License: 90,000 on 2026-01-01. Support 27,000 by days: Jan 27,000 * 31/365 = 2,293.15,
    Feb 27,000 * 28/365 = 2,071.23 (the 4 leftover cents go to the 30-day months, whose
    remainder .81 is largest). Implementation 18,000 by milestone amounts 8,000 : 12,000
    = 7,200 (due 02-27) and 10,800 (due 04-30), each only once accepted.
    By 2026-01-31: 90,000 + 2,293.15 = 92,293.15.
    By 2026-03-01 without DESIGN accepted: 92,293.15 + 2,071.23 = 94,364.38; with it
    accepted: 94,364.38 + 7,200 = 101,564.38."""
    schedule = build_schedule(bundle_deal())

    license_entry = next(e for e in schedule.entries if e.line_id == "LIC")
    assert license_entry.kind is ScheduleKind.POINT_IN_TIME
    assert license_entry.recognition_date == date(2026, 1, 1)
    assert amounts(schedule, "SUP")[:2] == ["2293.15", "2071.23"]
    assert amounts(schedule, "IMP") == ["7200.00", "10800.00"]
    assert schedule.recognisable_as_of(date(2026, 1, 31)) == usd("92293.15")
    assert schedule.recognisable_as_of(date(2026, 3, 1)) == usd("94364.38")
    delivered = frozenset({"DESIGN"})
    assert schedule.recognisable_as_of(date(2026, 3, 1), delivered) == usd("101564.38")
    assert schedule.total() == usd("135000")


def test_tm_line_keeps_its_own_price_and_is_left_out_of_the_ssp_allocation() -> None:
    """Subscription net 40,000 SSP 60,000; license net 40,000 SSP 20,000; T&M hours
    100 * 150 = 15,000 (SSP 200/h, ignored: variable consideration, ASC 606-10-32-40).
    Fixed price 80,000 over SSP 80,000: subscription 60,000, license 20,000; T&M 15,000."""
    deal = make_deal(
        [
            make_line("SUB", ProductType.SUBSCRIPTION, "40000", ssp="60000"),
            make_line("LIC", ProductType.LICENSE, "40000", ssp="20000", recognition=PERPETUAL),
            make_line("TM", ProductType.SERVICES, "150", ssp="200", quantity="100", recognition=TM),
        ]
    )

    obligations = allocate_transaction_price(deal)

    assert [o.allocated for o in obligations] == [usd("60000"), usd("20000"), usd("15000")]


def test_tm_profile_is_never_recognisable_from_the_schedule() -> None:
    """T&M 12,000 over 2026: Jan 12,000 * 31/365 = 1,019.18 expected, but T&M revenue
    comes from approved hours, so the schedule recognises 0 even at the term's end."""
    deal = make_deal(
        [make_line("TM", ProductType.SERVICES, "12000", recognition=TM)], recognition=TM
    )
    schedule = build_schedule(deal)

    assert schedule.by_period()["2026-01"] == usd("1019.18")
    assert all(e.requires_event and e.kind is ScheduleKind.TM for e in schedule.entries)
    assert schedule.recognisable_as_of(date(2027, 1, 1)) == usd("0")


def test_all_zero_ssps_fall_back_to_net_totals() -> None:
    """SSPs all 0; nets 30,000 and 10,000 are the weights, so each keeps its own net."""
    deal = make_deal(
        [
            make_line("A", ProductType.SUBSCRIPTION, "30000", ssp="0"),
            make_line("B", ProductType.SUPPORT, "10000", ssp="0"),
        ]
    )

    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("30000"),
        usd("10000"),
    ]


def three_milestone_deal() -> DealSubmission:
    lines = [
        make_line("IMP", ProductType.SERVICES, "10000", ssp="10000", recognition=MILESTONE),
        make_line("SUP", ProductType.SUPPORT, "5000", ssp="10000"),
    ]
    milestones = [
        make_milestone("M3", "IMP", date(2026, 9, 30), "3333.34"),
        make_milestone("M1", "IMP", date(2026, 3, 31), "3333.33"),
        make_milestone("M2", "IMP", date(2026, 6, 30), "3333.33"),
    ]
    return make_deal(lines, milestones=milestones)


def test_milestone_line_is_split_by_milestone_amounts_in_due_order() -> None:
    """Implementation net 10,000 SSP 10,000 + support net 5,000 SSP 10,000: price 15,000,
    so implementation gets 15,000 * 10/20 = 7,500. Milestones (by due date) M1 3,333.33,
    M2 3,333.33, M3 3,333.34 of 10,000:
    7,500 * 0.333333 = 2,499.9975 -> 2,499.99 remainder .75 cent  -> +0.01
    7,500 * 0.333333 = 2,499.9975 -> 2,499.99 remainder .75 cent  -> +0.01
    7,500 * 0.333334 = 2,500.0050 -> 2,500.00 remainder .50 cent
    floors 7,499.98, two cents to the two largest remainders: 2,500.00 each."""
    schedule = build_schedule(three_milestone_deal())

    entries = [e for e in schedule.entries if e.line_id == "IMP"]
    assert [e.milestone_id for e in entries] == ["M1", "M2", "M3"]
    assert [e.amount for e in entries] == [usd("2500"), usd("2500"), usd("2500")]
    assert [e.recognition_date for e in entries] == [
        date(2026, 3, 31),
        date(2026, 6, 30),
        date(2026, 9, 30),
    ]
    assert all(e.requires_event for e in entries)


def test_milestone_is_recognisable_only_once_delivered_and_due() -> None:
    """Same deal, as of 2026-12-31 (support fully earned: 7,500). Accepted: M1 and M3.
    Recognisable: 7,500 + 2,500 + 2,500 = 12,500; M2 (2,500) waits for acceptance."""
    schedule = build_schedule(three_milestone_deal())
    delivered = frozenset({"M1", "M3"})

    assert schedule.recognisable_as_of(date(2026, 12, 31), delivered) == usd("12500")
    assert schedule.recognisable_as_of(date(2026, 12, 31)) == usd("7500")
    ids = {
        e.milestone_id for e in schedule.entries_recognisable_as_of(date(2026, 12, 31), delivered)
    }
    assert ids == {None, "M1", "M3"}


def test_milestone_line_without_milestones_is_refused_naming_the_line() -> None:
    deal = make_deal([make_line("IMP", ProductType.SERVICES, "10000", recognition=MILESTONE)])

    with pytest.raises(ValueError, match="Line IMP"):
        build_schedule(deal)


def test_term_ending_before_it_starts_is_refused() -> None:
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "100")],
        start=date(2026, 2, 1),
        end=date(2026, 1, 31),
    )

    with pytest.raises(ValueError, match="ends 2026-01-31 before it starts 2026-02-01"):
        build_schedule(deal)


def test_jpy_schedule_has_no_minor_unit() -> None:
    """JPY 1,000,000 subscription over 2026 (365 days), whole yen:
    31-day month 1,000,000 * 31/365 = 84,931.51 -> 84,931 remainder .51
    30-day month 1,000,000 * 30/365 = 82,191.78 -> 82,191 remainder .78
    Feb          1,000,000 * 28/365 = 76,712.33 -> 76,712 remainder .33
    floors 7 * 84,931 + 4 * 82,191 + 76,712 = 999,993: 7 yen to hand out, first to the
    four 30-day months (.78), then to the earliest three 31-day months (Jan, Mar, May)."""
    deal = make_deal([make_line("SUB", ProductType.SUBSCRIPTION, "1000000")], currency="JPY")
    schedule = build_schedule(deal)

    assert amounts(schedule, "SUB") == [
        "84932", "76712", "84932", "82192", "84932", "82192",
        "84931", "84931", "82192", "84931", "82192", "84931",
    ]  # fmt: skip
    assert schedule.total() == Money.of(1000000, "JPY")


def test_kwd_allocation_splits_to_the_fils() -> None:
    """KWD has 3 decimals. Three lines with SSP 500.000 each sold for 1,000.000
    (nets 400 / 300 / 300): each gets 1,000 / 3 = 333.333 remainder .33 fils; one fils is
    left over and goes to the earliest: 333.334 / 333.333 / 333.333."""
    deal = make_deal(
        [
            make_line("LIC", ProductType.LICENSE, "400", ssp="500", recognition=PERPETUAL),
            make_line("SUP", ProductType.SUPPORT, "300", ssp="500"),
            make_line("SUB", ProductType.SUBSCRIPTION, "300", ssp="500"),
        ],
        currency="KWD",
    )
    schedule = build_schedule(deal)

    assert [str(o.allocated.amount) for o in schedule.obligations] == [
        "333.334",
        "333.333",
        "333.333",
    ]
    assert schedule.recognisable_as_of(date(2026, 1, 1)) == Money.of("333.334", "KWD")
    assert schedule.total() == Money.of("1000", "KWD")


def test_convention_names_the_day_count_and_term() -> None:
    schedule = build_schedule(subscription_deal())

    assert "by days over 2026-01-01..2026-12-31 (365 days" in schedule.convention


# --- properties over random valid deals ---------------------------------------------------


@given(deals())
def test_schedule_sums_to_the_transaction_price(deal: DealSubmission) -> None:
    schedule = build_schedule(deal)

    assert schedule.transaction_price == deal.lines_total()
    assert schedule.total() == schedule.transaction_price
    assert money_sum(schedule.by_period().values(), deal.currency) == schedule.total()


@given(deals())
def test_each_obligation_entries_sum_to_its_allocation(deal: DealSubmission) -> None:
    schedule = build_schedule(deal)

    for ob in schedule.obligations:
        entries = [e.amount for e in schedule.entries if e.line_id == ob.line_id]
        assert money_sum(entries, deal.currency) == ob.allocated, ob.line_id


@given(deals())
def test_tm_lines_keep_their_net_total_and_fixed_lines_share_the_rest(
    deal: DealSubmission,
) -> None:
    obligations = allocate_transaction_price(deal)
    fixed = [o for o in obligations if o.recognition is not TM]

    for ob in obligations:
        if ob.recognition is TM:
            assert ob.allocated == ob.net_total
    assert money_sum((o.allocated for o in fixed), deal.currency) == money_sum(
        (o.net_total for o in fixed), deal.currency
    )


@given(deals(), st.integers(-40, 1200))
def test_nothing_needing_an_event_is_recognisable_without_it(
    deal: DealSubmission, offset: int
) -> None:
    schedule = build_schedule(deal)
    as_of = deal.start_date + timedelta(days=offset)

    assert not any(e.requires_event for e in schedule.entries_recognisable_as_of(as_of))
    with_all = schedule.entries_recognisable_as_of(as_of, all_milestone_ids(deal))
    assert all(e.kind is not ScheduleKind.TM for e in with_all)
    # Only an accepted milestone is earned before its expected date: when it is accepted.
    assert all(e.recognition_date <= as_of or e.kind is ScheduleKind.MILESTONE for e in with_all)


@given(deals())
def test_nothing_is_recognisable_before_the_term_starts(deal: DealSubmission) -> None:
    schedule = build_schedule(deal)
    day_before = deal.start_date - timedelta(days=1)

    assert schedule.recognisable_as_of(day_before).is_zero()


def test_a_milestone_accepted_early_is_earned_when_accepted() -> None:
    """Services 30,000 on two milestones due 2027-03-31 and 2027-06-30; the first is
    accepted on 2027-02-15, six weeks early: its 10,000 is recognisable that day, the
    second's 20,000 is not (not accepted), however late it gets."""
    deal = make_deal(
        [make_line("L1", ProductType.SERVICES, "30000", product="Implementation")],
        recognition=MILESTONE, frequency=BillingFrequency.MILESTONE,
        start=date(2027, 1, 1), end=date(2027, 12, 31),
        milestones=[make_milestone("M1", "L1", date(2027, 3, 31), "10000"),
                    make_milestone("M2", "L1", date(2027, 6, 30), "20000")],
    )  # fmt: skip
    schedule = build_schedule(deal)

    assert schedule.recognisable_as_of(date(2027, 2, 15), frozenset({"M1"})) == usd("10000")
    assert schedule.recognisable_as_of(date(2027, 9, 30), frozenset({"M1"})) == usd("10000")


@given(deals(), st.integers(-40, 1200), st.integers(0, 400), st.data())
def test_recognisable_grows_with_time_and_never_exceeds_the_price(
    deal: DealSubmission, offset: int, step: int, data: st.DataObject
) -> None:
    schedule = build_schedule(deal)
    ids = sorted(all_milestone_ids(deal))
    delivered = frozenset(data.draw(st.lists(st.sampled_from(ids), unique=True)) if ids else [])
    earlier = deal.start_date + timedelta(days=offset)
    later = earlier + timedelta(days=step)

    before = schedule.recognisable_as_of(earlier, delivered)
    after = schedule.recognisable_as_of(later, delivered)
    assert Money.zero(deal.currency) <= before <= after <= schedule.transaction_price


@given(deals(product_types=(ProductType.SUBSCRIPTION, ProductType.SUPPORT)))
def test_ratable_only_deal_is_fully_recognised_at_term_end(deal: DealSubmission) -> None:
    schedule = build_schedule(deal)

    assert schedule.recognisable_as_of(deal.end_date) == deal.lines_total()
    assert max(e.recognition_date for e in schedule.entries) == deal.end_date
    assert all(e.amount.amount >= Decimal(0) for e in schedule.entries)


def test_the_residual_approach_gives_a_highly_variable_line_what_the_others_leave() -> None:
    """ASC 606-10-32-34(c): a platform licence sold at widely varying prices (no observable
    SSP), support (SSP 20,000) and implementation (SSP 30,000) for 150,000 in all. Support
    and implementation get their SSPs; the licence the residual 150,000 − 50,000 = 100,000.
    Had the observable SSPs been 160,000 (more than the price), nothing would be left: the
    residual approach does not apply and relative SSP is used, the licence weighted by its
    net price."""
    licence = make_line("L1", ProductType.LICENSE, "90000", ssp="0",
                        recognition=RecognitionType.PERPETUAL_LICENSE)  # fmt: skip
    licence = licence.model_copy(update={"ssp_highly_variable": True})
    support = make_line("L2", ProductType.SUPPORT, "25000", ssp="20000")
    services = make_line("L3", ProductType.SERVICES, "35000", ssp="30000",
                         recognition=RecognitionType.PERPETUAL_LICENSE)  # fmt: skip
    deal = make_deal([licence, support, services])
    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("100000"), usd("20000"), usd("30000")]  # fmt: skip

    dearer = services.model_copy(update={"standalone_selling_price": Decimal(140000)})
    deal = make_deal([licence, support, dearer])
    # 150,000 by weights 90,000 : 20,000 : 140,000 (250,000): 54,000 / 12,000 / 84,000.
    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("54000"), usd("12000"), usd("84000")]  # fmt: skip


def test_asc_606_example_34_case_a_allocates_the_discount_over_all_three_products() -> None:
    """ASC 606-10-55-259 (Example 34, Case A): products A, B and C have standalone selling
    prices of 40, 55 and 45 (140) and are sold together for 100. The discount of 40 is
    allocated proportionally: A 100 × 40/140 = 28.57, B 100 × 55/140 = 39.29, C 100 × 45/140
    = 32.14 (the standard rounds to 29, 39 and 32; to the cent the parts sum to 100.00)."""
    lines = [
        make_line(line_id, ProductType.LICENSE, net, ssp=ssp,
                  recognition=RecognitionType.PERPETUAL_LICENSE)
        for line_id, net, ssp in (("A", "30", "40"), ("B", "40", "55"), ("C", "30", "45"))
    ]  # fmt: skip
    deal = make_deal(lines)
    allocated = [o.allocated for o in allocate_transaction_price(deal)]
    assert allocated == [usd("28.57"), usd("39.29"), usd("32.14")]
    assert money_sum(allocated, "USD") == usd("100.00")


def example_34(
    *nets: str, tied: list[str] | None = None, variable_d: bool = False
) -> DealSubmission:
    """ASC 606 Example 34: products A, B, C (SSPs 40, 55, 45), with D when `nets` has four
    (no observable SSP: sold from 15 to 45), each delivered at once; `nets` are the contract
    prices of A, B, C (and D); `tied` names the lines the discount belongs to."""
    ssps = ("40", "55", "45", "0")
    lines = [
        make_line(line_id, ProductType.LICENSE, net, ssp=ssp,
                  recognition=RecognitionType.PERPETUAL_LICENSE)
        for line_id, net, ssp in zip("ABCD", nets, ssps, strict=False)
    ]  # fmt: skip
    if variable_d:
        lines[3] = lines[3].model_copy(update={"ssp_highly_variable": True})
    evidence = "B and C are regularly sold together for 60 and A alone for 40" if tied else None
    return make_deal(lines, discount_applies_to=tied, discount_evidence=evidence)


def test_asc_606_example_34_case_b_ties_the_whole_discount_to_b_and_c() -> None:
    """ASC 606 Example 34 (606-10-55-259..55-269), Case B: A, B and C (SSPs 40, 55, 45: 140) are
    sold for 100. The entity regularly sells B and C together for 60 and A alone for 40, so
    the whole discount of 40 belongs to B and C (32-37). The contract prices the lines at
    30, 40 and 30; that does not matter:
    A   its SSP                                 40.00
    B   (100 − 40) × 55 / (55 + 45) = 60 × 0.55  33.00
    C   (100 − 40) × 45 / (55 + 45) = 60 × 0.45  27.00
    total                                       100.00 (Case A gave 28.57 / 39.29 / 32.14)."""
    deal = example_34("30", "40", "30", tied=["B", "C"])

    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("40.00"), usd("33.00"), usd("27.00")]  # fmt: skip
    schedule = build_schedule(deal)
    assert schedule.total() == usd("100.00")
    assert "The discount is tied to B, C (ASC 606-10-32-37" in schedule.convention


def test_asc_606_example_34_case_c_allocates_the_tied_discount_before_the_residual() -> None:
    """ASC 606 Example 34 (606-10-55-259..55-269), Case C: as Case B, plus product D, whose price
    is highly variable (sold for 15 to 45), for 130 in all. The discount on B and C is
    allocated first (32-38), then D gets the residual. The contract charges 35, 30, 30, 35
    for A, B, C, D: B and C together at 60, their bundle price, which is what the named lines
    get when a highly variable line is present (`models.tied_discount`).
    A   its SSP                                   40.00  (not its contract price 35)
    B   60 × 55 / 100                              33.00
    C   60 × 45 / 100                              27.00
    D   130 − (40 + 33 + 27) = 130 − 100           30.00  (within the observed 15 to 45)
    total                                         130.00"""
    deal = example_34("35", "30", "30", "35", tied=["B", "C"], variable_d=True)

    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("40.00"), usd("33.00"), usd("27.00"), usd("30.00")]  # fmt: skip
    assert build_schedule(deal).total() == usd("130.00")


def test_a_tied_discount_the_price_cannot_carry_is_allocated_in_proportion_and_says_why() -> None:
    """Example 34's products sold for 30 (10 each) with the discount tied to B and C: A's SSP
    alone (40) is more than the price, so B and C would get 30 − 40 = −10. The designation
    does not fit (QA `structural.discount_applies_to` fails); were that waived, the price is
    allocated as if nothing were tied: 30 × 40/140 = 8.5714, 30 × 55/140 = 11.7857,
    30 × 45/140 = 9.6429; the floors 8.57 + 11.78 + 9.64 = 29.99 leave a cent for B, whose
    remainder (.57 of a cent) is the largest: 8.57 / 11.79 / 9.64."""
    deal = example_34("10", "10", "10", tied=["B", "C"])

    assert [o.allocated for o in allocate_transaction_price(deal)] == [
        usd("8.57"), usd("11.79"), usd("9.64")]  # fmt: skip
    assert (
        "Discount stated as tied to B, C allocated in proportion instead: the price 30.00 USD "
        "is short of the other lines' SSPs 40.00 USD, so B, C would get -10.00 USD."
    ) in build_schedule(deal).convention
