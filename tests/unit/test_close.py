"""The pure rules of the month-end close (models/close.py): periods, the period-over-period
tolerance, the deferred-revenue roll-forward, messages and who may sign a close off; and the
`close` section of the rules (rules/close.yaml)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from models.close import (
    CHECK_PERIOD_DELTA,
    CheckResult,
    ClosePlan,
    CloseReport,
    CloseSignOff,
    CloseStage,
    CloseState,
    CustomerAmount,
    LineMismatch,
    OpenCloseCase,
    RevenueSwing,
    RollForward,
    close_case_id,
    floor_in,
    period_before,
    period_bounds,
    period_is_over,
    previous_period,
    signed,
    signoff_problems,
    swing_exceeds,
)
from models.money import Money
from models.rules import ClosePolicy, Role, RuleSet
from starter.rules_loader import RulesError, load_rules
from starter.settings import PROJECT_ROOT

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


# --- periods -------------------------------------------------------------------------------


def test_a_period_runs_from_its_first_to_its_last_day_leap_years_included() -> None:
    assert period_bounds("2026-11") == (date(2026, 11, 1), date(2026, 11, 30))
    assert period_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))


def test_the_period_before_january_is_december_of_the_year_before() -> None:
    assert previous_period("2026-01") == "2025-12"
    assert previous_period("2026-11") == "2026-10"


def test_the_schedule_on_the_first_closes_the_month_that_just_ended() -> None:
    assert period_before(date(2026, 12, 1)) == "2026-11"
    assert period_before(date(2027, 1, 1)) == "2026-12"
    assert period_before(date(2026, 11, 23)) == "2026-10"


def test_a_period_is_over_only_after_its_last_day() -> None:
    assert not period_is_over("2026-11", date(2026, 11, 23))
    assert not period_is_over("2026-11", date(2026, 11, 30))
    assert period_is_over("2026-11", date(2026, 12, 1))


def test_close_cases_are_named_like_deal_cases() -> None:
    assert close_case_id("2026-11", CHECK_PERIOD_DELTA) == "case-close-2026-11-close.period_delta"


# --- the period-over-period tolerance ------------------------------------------------------


def test_a_swing_beyond_both_the_percentage_and_the_floor_is_flagged() -> None:
    """10,000.00 in October, 13,000.00 in November: +3,000.00 is 30% (> 25%) and above the
    1,000.00 floor."""
    assert swing_exceeds(usd("10000.00"), usd("13000.00"), Decimal(25), usd("1000.00"))


def test_a_swing_within_the_percentage_is_not_flagged_however_large() -> None:
    """1,000,000.00 to 1,200,000.00: +200,000.00 is far above the floor but only 20%."""
    assert not swing_exceeds(usd("1000000.00"), usd("1200000.00"), Decimal(25), usd("1000.00"))


def test_a_small_contract_doubling_stays_under_the_floor() -> None:
    """400.00 to 800.00 is +100% but only 400.00, under the 1,000.00 floor."""
    assert not swing_exceeds(usd("400.00"), usd("800.00"), Decimal(25), usd("1000.00"))


def test_exactly_at_the_tolerance_is_not_flagged() -> None:
    """8,000.00 to 10,000.00 is +2,000.00 = 25% of 8,000.00: not more than 25%."""
    assert not swing_exceeds(usd("8000.00"), usd("10000.00"), Decimal(25), usd("1000.00"))
    assert swing_exceeds(usd("8000.00"), usd("10000.01"), Decimal(25), usd("1000.00"))


def test_a_drop_counts_like_a_rise_and_revenue_from_nothing_counts_above_the_floor() -> None:
    """12,000.00 to 0.00 is -100%; 0.00 to 5,000.00 has no percentage but is above the floor."""
    assert swing_exceeds(usd("12000.00"), usd("0.00"), Decimal(25), usd("1000.00"))
    assert swing_exceeds(usd("0.00"), usd("5000.00"), Decimal(25), usd("1000.00"))
    assert not swing_exceeds(usd("0.00"), usd("900.00"), Decimal(25), usd("1000.00"))


def test_the_floor_is_set_in_usd_and_converted_with_the_credit_policy_rates() -> None:
    """1,000 USD at 1.08 USD per EUR is 925.93 EUR; at 0.0067 USD per JPY, 149,254 JPY."""
    policy, rates = ClosePolicy(), {"EUR": Decimal("1.08"), "JPY": Decimal("0.0067")}
    assert floor_in("EUR", policy, rates) == Money.of("925.93", "EUR")
    assert floor_in("JPY", policy, rates) == Money.of("149254", "JPY")
    assert floor_in("CHF", policy, rates) is None  # no rate: the percentage alone applies


def test_a_swing_message_names_the_deal_both_months_and_the_change() -> None:
    swing = RevenueSwing(deal_id="D-7", previous=usd("10000.00"), current=usd("13000.00"))
    assert swing.message("2026-11") == (
        "Deal D-7: revenue 13,000.00 USD in 2026-11 against 10,000.00 USD in 2026-10 "
        "(+3,000.00 USD, +30.0%)"
    )
    assert signed(Money.of("-50", "EUR")) == "-50.00 EUR"


def test_a_mismatch_message_names_the_line_both_amounts_and_the_gap() -> None:
    short = LineMismatch(deal_id="D-9", line_id="L2", due=usd("1200.00"),
                         recognised=usd("1000.00"))  # fmt: skip
    assert short.message("2026-11") == (
        "Deal D-9 line L2: recognised 1,000.00 USD through 2026-11 but 1,200.00 USD is due "
        "by the schedule (200.00 USD short)"
    )
    over = LineMismatch(deal_id="D-9", line_id="L2", due=usd("1200.00"), recognised=usd("1500.00"))
    assert over.message("2026-11").endswith("(300.00 USD too much)")


# --- the roll-forward ----------------------------------------------------------------------


def test_the_roll_forward_ties_when_opening_plus_billings_minus_recognised_is_the_closing() -> None:
    """Deferred revenue in November 2026 (credit balances):

    opening (before Nov 1)          120,000.00
    + billings (credits in Nov)      36,000.00
    - recognised (debits in Nov)     14,250.00
    = closing                       141,750.00   the ledger says 141,750.00: ties
    """
    roll = RollForward(currency="USD", opening=usd("120000.00"), billings=usd("36000.00"),
                       recognised=usd("14250.00"), closing=usd("141750.00"))  # fmt: skip
    assert roll.computed_closing == usd("141750.00")
    assert roll.ties and roll.difference.is_zero()


def test_a_roll_forward_off_by_a_cent_does_not_tie_and_says_by_how_much() -> None:
    roll = RollForward(currency="EUR", opening=Money.of("500.00", "EUR"),
                       billings=Money.of("100.00", "EUR"), recognised=Money.of("50.00", "EUR"),
                       closing=Money.of("550.01", "EUR"))  # fmt: skip
    assert not roll.ties
    assert roll.difference == Money.of("0.01", "EUR")


def test_the_report_summary_keeps_the_largest_customers_of_each_currency() -> None:
    customers = [
        CustomerAmount(customer_id=f"C{n}", name=f"Customer {n}", amount=Money.of(amount, cur))
        for n, (amount, cur) in enumerate([("10", "USD"), ("30", "USD"), ("20", "USD"),
                                           ("5", "EUR"), ("7", "EUR")])
    ]  # fmt: skip
    report = CloseReport(
        period="2026-11", status="draft", generated_at=NOW, rules_version="v1", roll_forward=[],
        revenue_by_currency=[], revenue_by_customer=customers, revenue_by_product=[],
        unbilled_by_customer=[], customers_with_revenue=5, customers_with_unbilled=0, checks=[],
    )  # fmt: skip
    summary = report.summary(top=2)
    assert [(c.customer_id, str(c.amount)) for c in summary.revenue_by_customer] == [
        ("C4", "7.00 EUR"), ("C3", "5.00 EUR"), ("C1", "30.00 USD"), ("C2", "20.00 USD"),
    ]  # fmt: skip
    assert summary.customers_with_revenue == 5


# --- who may sign a close off --------------------------------------------------------------


def plan() -> ClosePlan:
    return ClosePlan(
        rules_version="v1", policy=ClosePolicy(), usd_rates={},
        roles_of={"aisha.khan": [Role.FINANCE], "samuel.ortiz": [Role.CFO],
                  "maria.santos": [Role.BILLING]},
        owners={CHECK_PERIOD_DELTA: Role.FINANCE},
    )  # fmt: skip


def state(stage: CloseStage, cases: list[OpenCloseCase] | None = None) -> CloseState:
    return CloseState(period="2026-11", stage=stage, rules_version="v1", started_at=NOW,
                      cases=cases or [])  # fmt: skip


def test_finance_or_the_cfo_may_sign_off_once_no_case_is_open() -> None:
    waiting = state(CloseStage.AWAITING_SIGNOFF)
    assert signoff_problems(waiting, CloseSignOff(actor="aisha.khan"), plan()) == []
    assert signoff_problems(waiting, CloseSignOff(actor="samuel.ortiz"), plan()) == []


def test_sign_off_is_refused_while_a_close_case_is_open() -> None:
    case = OpenCloseCase(case_id="case-close-2026-11-close.period_delta",
                         check_id=CHECK_PERIOD_DELTA)  # fmt: skip
    waiting = state(CloseStage.AWAITING_CASES, [case])
    assert signoff_problems(waiting, CloseSignOff(actor="aisha.khan"), plan()) == [
        "close 2026-11 has 1 open case(s): case-close-2026-11-close.period_delta "
        "(close.period_delta); resolve them first"
    ]


def test_sign_off_by_someone_without_a_finance_role_is_refused_naming_their_roles() -> None:
    waiting = state(CloseStage.AWAITING_SIGNOFF)
    assert signoff_problems(waiting, CloseSignOff(actor="maria.santos"), plan()) == [
        "maria.santos (billing) holds none of finance, vp_finance, cfo, the roles that sign a "
        "close off"
    ]
    assert signoff_problems(waiting, CloseSignOff(actor="nobody"), plan()) == [
        "nobody is not in the role directory"
    ]


def test_sign_off_before_the_checks_or_twice_is_refused() -> None:
    posting = state(CloseStage.POSTING)
    assert signoff_problems(posting, CloseSignOff(actor="aisha.khan"), None) == [
        "close 2026-11 is posting: sign-off comes after the checks"
    ]
    signed = state(CloseStage.LOCKING).model_copy(update={"signed_off_by": "aisha.khan"})
    assert signoff_problems(signed, CloseSignOff(actor="samuel.ortiz"), plan()) == [
        "close 2026-11 is already signed off by aisha.khan"
    ]


def test_a_check_summary_reads_as_passed_or_how_many_failed() -> None:
    failed = CheckResult(check_id=CHECK_PERIOD_DELTA, passed=False, failures=3, messages=[])
    assert failed.summary() == "close.period_delta: 3 failed"


# --- rules/close.yaml ----------------------------------------------------------------------


def test_the_shipped_close_rules_load(rules: RuleSet) -> None:
    assert rules.close.period_delta_percent == Decimal(25)
    assert rules.close.period_delta_floor_usd == Decimal(1000)
    assert rules.close.signoff_roles == [Role.FINANCE, Role.VP_FINANCE, Role.CFO]
    assert rules.owner_of("close.postings_vs_schedule") is Role.FINANCE
    assert rules.owner_of("close.period_delta") is Role.FINANCE


def test_without_close_yaml_the_defaults_apply(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", directory)
    (directory / "close.yaml").unlink()
    assert load_rules(directory).close == ClosePolicy()


def test_a_bad_close_threshold_is_refused_naming_file_line_and_field(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", directory)
    close = directory / "close.yaml"
    close.write_text(
        close.read_text().replace("period_delta_percent: 25", "period_delta_percent: 250")
    )
    with pytest.raises(RulesError) as refused:
        load_rules(directory)
    [problem] = refused.value.problems
    assert problem.startswith(f"{close} line 7, field period_delta_percent: ")
    assert "less than or equal to 100" in problem
