"""A discount that belongs to some obligations only (ASC 606-10-32-37/38, IFRS 15.82/83).

A deal says so with `discount_applies_to` (the lines) and `discount_evidence` (why: the
entity regularly sells every line on its own, and the named lines together at about this
discount). The lines that share the fixed price are then allocated as follows:

- a line outside the named set with an observable SSP gets its SSP total
  (quantity × standalone_selling_price);
- without a highly variable line, the named lines share the rest of the price, in
  proportion to their SSP totals: the contract's whole discount lands on them;
- with highly variable lines (`ssp_highly_variable`, never named), the tied discount is
  allocated first and the residual approach second (32-38). The total price says nothing
  about the others' share then, so the named lines get what the contract charges for them
  together (the bundle price the evidence speaks of), split by SSP, and the highly variable
  lines what is left, split by their own prices.

The designation fits only if the named lines end up between nothing and their SSP total (a
discount on them, not a premium) and, with highly variable lines, something is left for
those. When it does not fit, the deal fails the QA gate `structural.discount_applies_to`;
were that waived, the price is allocated as if no discount were tied, and the schedule's
convention says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from models.contract_terms import booked_consideration
from models.deal import DealLine, DealSubmission, RecognitionType
from models.money import Money, allocate, money_sum


@dataclass(frozen=True)
class TiedSplit:
    """The outcome of a deal's discount designation over its fixed-price lines."""

    parts: list[Money] | None  # one per line, in line order; None when it does not fit
    reason: str  # one sentence for finance: what was done, or why it could not be


def shares_fixed_price(deal: DealSubmission, line: DealLine) -> bool:
    """Every line but T&M, whose variable consideration stays with it (32-40)."""
    return deal.line_recognition(line) is not RecognitionType.TIME_AND_MATERIALS


def tied_split(deal: DealSubmission, lines: list[DealLine], price: Money) -> TiedSplit | None:
    """`price` over `lines` (the fixed-price lines) with the discount on the named ones;
    None when the deal ties no discount."""
    if not deal.discount_applies_to:
        return None
    currency, names = deal.currency, set(deal.discount_applies_to)
    named = [ln for ln in lines if ln.line_id in names]
    variable = [ln for ln in lines if ln.ssp_highly_variable and ln.line_id not in names]
    variable_ids = {ln.line_id for ln in variable}
    observed = [ln for ln in lines if ln.line_id not in names | variable_ids]
    outside_ssp = money_sum((ln.ssp_total(currency) for ln in observed), currency)
    named_ssp = money_sum((ln.ssp_total(currency) for ln in named), currency)
    label = ", ".join(ln.line_id for ln in named) or "no line"
    if variable:
        named_total = money_sum((booked_consideration(deal, ln) for ln in named), currency)
        left = price - outside_ssp - named_total
    else:
        named_total, left = price - outside_ssp, Money.zero(currency)
    problem = _misfit(label, price, outside_ssp, named_total, named_ssp, left, bool(variable))
    if problem:
        return TiedSplit(parts=None, reason=problem)
    named_parts = iter(_split(deal, named_total, named, [ln.ssp_total(currency) for ln in named]))
    own_prices = [booked_consideration(deal, ln) for ln in variable]
    variable_parts = iter(_split(deal, left, variable, own_prices))
    parts = [next(named_parts) if ln.line_id in names
             else next(variable_parts) if ln.line_id in variable_ids
             else ln.ssp_total(currency) for ln in lines]  # fmt: skip
    residual = f", the highly variable lines the residual {left} (32-38)" if variable else ""
    return TiedSplit(parts=parts, reason=(
        f"The discount is tied to {label} (ASC 606-10-32-37; evidence: "
        f"{(deal.discount_evidence or '').strip()}): the other lines get their SSPs "
        f"({outside_ssp}), {label} share {named_total} by SSP{residual}."))  # fmt: skip


def _misfit(label: str, price: Money, outside_ssp: Money, named_total: Money, named_ssp: Money,
            left: Money, variable: bool) -> str | None:  # fmt: skip
    if named_total.amount < 0:
        return (f"the price {price} is short of the other lines' SSPs {outside_ssp}, so {label} "
                f"would get {named_total}")  # fmt: skip
    if named_total > named_ssp:
        return (f"{label} would get {named_total}, more than their SSPs {named_ssp}: the "
                "contract has no discount on them to tie")  # fmt: skip
    if variable and left.amount <= 0:
        return (f"after the other lines' SSPs {outside_ssp} and {label} at their contract price "
                f"{named_total}, {left} is left for the highly variable lines")  # fmt: skip
    return None


def _split(deal: DealSubmission, total: Money, lines: list[DealLine],
           weights: list[Money]) -> list[Money]:  # fmt: skip
    """`total` by `weights`, by the lines' own prices when those are all zero, else equally."""
    if not lines:
        return []
    amounts = [w.amount for w in weights]
    if sum(amounts) == 0:
        amounts = [booked_consideration(deal, ln).amount for ln in lines]
    if sum(amounts) == 0:
        amounts = [Decimal(1)] * len(lines)
    return allocate(total, amounts)


def _fixed_split(deal: DealSubmission) -> TiedSplit | None:
    lines = [ln for ln in deal.lines if shares_fixed_price(deal, ln)]
    price = money_sum((booked_consideration(deal, ln) for ln in lines), deal.currency)
    return tied_split(deal, lines, price)


def tied_discount_problem(deal: DealSubmission) -> str | None:
    """Why the deal's discount designation does not fit its prices (None when it does, or
    when it names no lines)."""
    split = _fixed_split(deal)
    return split.reason if split is not None and split.parts is None else None


def tied_discount_note(deal: DealSubmission) -> str:
    """The sentence the schedule's convention carries about a tied discount ('' if none)."""
    split = _fixed_split(deal)
    if split is None:
        return ""
    if split.parts is None:
        return (f" Discount stated as tied to {', '.join(deal.discount_applies_to or [])} "
                f"allocated in proportion instead: {split.reason}.")  # fmt: skip
    return " " + split.reason
