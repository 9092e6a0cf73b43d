"""A discount tied to specific obligations (ASC 606-10-32-37/38): what a deal may name, then
properties over random deals. Example 34's worked cases are in test_recognition.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from pydantic import ValidationError

from models.deal import DealSubmission, ProductType, RecognitionType
from models.money import money_sum
from models.recognition import allocate_transaction_price, build_schedule, transaction_price
from models.tied_discount import shares_fixed_price, tied_discount_problem
from models.validation import describe_validation_error, problem_lines
from tests.builders import make_deal, make_line
from tests.strategies import tied_discount_deals


def bundle(variable: bool = True, **fields: Any) -> list[str]:
    """LIC perpetual licence, SUB subscription, SUP support, TM hours (T&M) and, if
    `variable`, VAR a licence with no observable SSP; `fields` set on the deal. Returns the
    'field: rule' lines its validation gives (empty when it is valid)."""
    lines = [
        make_line("LIC", ProductType.LICENSE, "50000", ssp="60000",
                  recognition=RecognitionType.PERPETUAL_LICENSE),
        make_line("SUB", ProductType.SUBSCRIPTION, "30000", ssp="40000"),
        make_line("SUP", ProductType.SUPPORT, "10000", ssp="10000"),
        make_line("TM", ProductType.SERVICES, "150", quantity="40",
                  recognition=RecognitionType.TIME_AND_MATERIALS),
        make_line("VAR", ProductType.LICENSE, "5000", ssp="0",
                  recognition=RecognitionType.PERPETUAL_LICENSE
                  ).model_copy(update={"ssp_highly_variable": True}),
    ]  # fmt: skip
    data = make_deal(lines if variable else lines[:4]).model_dump()
    try:
        DealSubmission.model_validate({**data, **fields})
    except ValidationError as exc:
        return problem_lines(describe_validation_error(exc))
    return []


EVIDENCE = "LIC and SUB sell together at 20% off; every product sells alone at list"


def test_a_discount_may_be_tied_to_some_of_the_lines_that_share_the_price() -> None:
    assert bundle(discount_applies_to=["LIC", "SUB"], discount_evidence=EVIDENCE) == []


@pytest.mark.parametrize(
    ("named", "rule"),
    [
        ([], "name at least one line, or leave discount_applies_to out"),
        (["LIC", "XYZ"], "XYZ is not a line of this deal (LIC, SUB, SUP, TM, VAR)"),
        (["SUB", "TM"], "TM is T&M: variable consideration stays with its own line "
                        "(ASC 606-10-32-40)"),
        (["VAR"], "VAR has no observable SSP (ssp_highly_variable); a discount is tied only "
                  "to lines regularly sold on their own (32-37(a))"),
        (["SUB", "SUB"], "SUB is named more than once"),
    ],
)  # fmt: skip
def test_a_discount_is_tied_only_to_named_lines_that_can_carry_it(
    named: list[str], rule: str
) -> None:
    problems = bundle(discount_applies_to=named, discount_evidence=EVIDENCE)

    assert len(problems) == 1
    assert problems[0].startswith(f"discount_applies_to: {rule}"), problems


def test_naming_every_line_that_shares_the_price_is_refused_as_the_proportional_case() -> None:
    """32-37 ties a discount to some obligations, not all; T&M does not share the price."""
    problems = bundle(variable=False, discount_applies_to=["LIC", "SUB", "SUP"],
                      discount_evidence=EVIDENCE)  # fmt: skip

    assert problems == [
        "discount_applies_to: names every line that shares the price (LIC, SUB, SUP); leave "
        "it out and the discount is allocated over all of them in proportion"
    ]


def test_tied_lines_need_their_evidence_and_evidence_needs_tied_lines() -> None:
    required = ("discount_evidence: required when discount_applies_to names lines: say what "
                "observable evidence shows the discount belongs to them (ASC 606-10-32-37)")  # fmt: skip
    assert bundle(discount_applies_to=["SUB"]) == [f"{required} (got None)"]
    assert bundle(discount_applies_to=["SUB"], discount_evidence="  ") == [f"{required} (got '  ')"]
    assert bundle(discount_applies_to=None, discount_evidence="list") == [
        "discount_evidence: only with discount_applies_to (no lines are named) (got 'list')"
    ]


# --- properties -------------------------------------------------------------------------------


@given(tied_discount_deals())
def test_with_a_tied_discount_the_allocation_still_sums_to_the_price_to_the_cent(
    deal: DealSubmission,
) -> None:
    obligations = allocate_transaction_price(deal)
    schedule = build_schedule(deal)

    allocated = money_sum((o.allocated for o in obligations), deal.currency)
    assert allocated == transaction_price(deal) == schedule.total()
    for ob, line in zip(obligations, deal.lines, strict=True):
        if not shares_fixed_price(deal, line):
            assert ob.allocated == line.net_total(deal.currency)


@given(tied_discount_deals(fitting=True))
def test_when_the_price_allows_it_the_lines_outside_the_tie_get_exactly_their_ssp(
    deal: DealSubmission,
) -> None:
    """The strategy draws SSPs that fit, so the designation always applies here."""
    assert tied_discount_problem(deal) is None
    named = set(deal.discount_applies_to or [])
    currency = deal.currency
    fixed = [(o, ln) for o, ln in zip(allocate_transaction_price(deal), deal.lines, strict=True)
             if shares_fixed_price(deal, ln)]  # fmt: skip
    for ob, line in fixed:
        if line.line_id not in named and not line.ssp_highly_variable:
            assert ob.allocated == line.ssp_total(currency), line.line_id
        assert ob.allocated.amount >= 0, line.line_id
    named_total = money_sum((o.allocated for o, ln in fixed if ln.line_id in named), currency)
    named_ssp = money_sum((ln.ssp_total(currency) for _, ln in fixed if ln.line_id in named),
                          currency)  # fmt: skip
    assert named_total <= named_ssp
    variable = [o.allocated for o, ln in fixed if ln.ssp_highly_variable]
    if variable:
        assert money_sum(variable, currency).amount > 0
