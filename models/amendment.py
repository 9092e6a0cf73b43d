"""Contract amendments (SPEC §4, §5): what may change after booking, and how it is checked.

An amendment arrives as a validated update on the contract workflow. It changes billing from
its effective date: periods not yet invoiced bill the new terms, and the part of an already
invoiced period from the effective date on is settled on the next invoice (a cancellation
settles it at once, as a credit note). Its revenue treatment (`treatment_of`) follows ASC
606-10-25-12/13:

- **separate contract** (25-12): it only adds distinct goods or services (more seats, a
  module, more deliverables) and prices every added unit at its standalone selling price
  for as long as it is billed. The existing contract's accounting does not change.
- **prospective** (25-13(a)): any other seat change, upsell, added deliverables or price
  uplift, and cancellations. What is still to be delivered is distinct from what was (a
  subscription is a series of distinct days), so the contract is treated as terminated and
  a new one made: the consideration not yet recognised plus the change is reallocated over
  every remaining obligation (`models.modification`).
- **cumulative catch-up** (25-13(b)): a scope change of a milestone project changes one
  obligation that is partly satisfied; the recognised revenue is trued up in the open period.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.contract_terms import ContractTerms, TermsVersion, is_recurring
from models.deal import DealLine, DealSubmission, Identifier, Milestone, RecognitionType
from models.money import Money, money_sum


class AmendmentKind(StrEnum):
    SEAT_CHANGE = "seat_change"
    MODULE_UPSELL = "module_upsell"
    PRICE_UPLIFT = "price_uplift"
    SCOPE_CHANGE = "scope_change"
    CANCELLATION = "cancellation"
    ADD_DELIVERABLES = "add_deliverables"


class Treatment(StrEnum):
    """How ASC 606-10-25-12/13 accounts for an amendment."""

    SEPARATE_CONTRACT = "separate_contract"  # 25-12
    PROSPECTIVE = "prospective"  # 25-13(a)
    CUMULATIVE_CATCH_UP = "cumulative_catch_up"  # 25-13(b)


class Amendment(BaseModel):
    """A change to a booked contract. Which fields are needed depends on `kind`:
    seat_change: line_id, new_quantity; price_uplift: line_id, uplift_percent;
    module_upsell: new_line; scope_change: line_id, milestones; cancellation: none;
    add_deliverables: new_line (a milestone line) and milestones (its own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amendment_id: Identifier
    kind: AmendmentKind
    effective_date: date = Field(description="First day the new terms apply")
    requested_by: Annotated[str, Field(min_length=1)] = Field(description="Person id")
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    line_id: Identifier | None = None
    new_quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = None
    uplift_percent: Annotated[Decimal, Field(gt=-100, le=1000, allow_inf_nan=False)] | None = None
    new_line: DealLine | None = None
    milestones: list[Milestone] | None = Field(
        default=None,
        description="scope_change: every milestone of the line after the change; "
        "add_deliverables: the milestones of the new line",
    )


def treatment_of(terms: ContractTerms, a: Amendment) -> Treatment:
    """The treatment of `a` on `terms` (the terms before it).

    25-12 needs added distinct goods or services (a seat increase, an upsold module, added
    deliverables) whose every unit price from the effective date on (net price, and list
    price once a discount has expired) equals the line's standalone selling price to the
    minor unit, and an SSP that is observable (not `ssp_highly_variable`).
    """
    if a.kind is AmendmentKind.SCOPE_CHANGE:
        return Treatment.CUMULATIVE_CATCH_UP
    added = _added_units(terms.current, a)
    if added is not None and _priced_at_ssp(terms, added, a.effective_date):
        return Treatment.SEPARATE_CONTRACT
    return Treatment.PROSPECTIVE


def _added_units(deal: DealSubmission, a: Amendment) -> DealLine | None:
    """The line whose units `a` adds (None when it adds none)."""
    if a.kind in (AmendmentKind.MODULE_UPSELL, AmendmentKind.ADD_DELIVERABLES):
        return a.new_line
    line = next((ln for ln in deal.lines if ln.line_id == a.line_id), None)
    if a.kind is AmendmentKind.SEAT_CHANGE and line and a.new_quantity:
        return line if a.new_quantity > line.quantity else None
    return None


def _priced_at_ssp(terms: ContractTerms, line: DealLine, effective: date) -> bool:
    if line.ssp_highly_variable:
        return False
    prices = {line.net_price}
    expiry = line.discount_expiry
    if is_recurring(terms.current, line) and expiry and line.discount_percent > 0:
        if expiry < effective:
            prices = {line.list_price}
        elif expiry < terms.end:
            prices.add(line.list_price)
    ssp = Money(amount=line.standalone_selling_price, currency=terms.currency)
    return all(Money(amount=p, currency=terms.currency) == ssp for p in prices)


def amendment_problems(
    terms: ContractTerms, amendment: Amendment, today: date, delivered: frozenset[str]
) -> list[str]:
    """Why `amendment` cannot be taken, as 'field: rule' lines (empty when it can)."""
    a, deal = amendment, terms.current
    problems: list[str] = []
    current = terms.period_at(today)
    earliest = current.start if current else terms.start
    if not earliest <= a.effective_date <= terms.end:
        problems.append(
            f"effective_date: {a.effective_date} must fall between {earliest} (the start of "
            f"the current billing period) and {terms.end} (the last day of service)"
        )
    line = next((ln for ln in deal.lines if ln.line_id == a.line_id), None)
    needs_line = a.kind in (AmendmentKind.SEAT_CHANGE, AmendmentKind.PRICE_UPLIFT,
                            AmendmentKind.SCOPE_CHANGE)  # fmt: skip
    if needs_line and line is None:
        known = ", ".join(ln.line_id for ln in deal.lines)
        problems.append(f"line_id: {a.line_id!r} is not a line of this contract ({known})")
    if a.kind is AmendmentKind.SEAT_CHANGE:
        problems += _seat_change_problems(deal, a, line)
    elif a.kind is AmendmentKind.PRICE_UPLIFT:
        if a.uplift_percent is None or a.uplift_percent == 0:
            problems.append("uplift_percent: a price uplift needs a non-zero percent")
        if line is not None and not is_recurring(deal, line):
            problems.append(f"line_id: {line.line_id} is not a recurring line; uplift applies to "
                            "subscriptions and support")  # fmt: skip
    elif a.kind is AmendmentKind.MODULE_UPSELL:
        problems += _upsell_problems(deal, a)
    elif a.kind is AmendmentKind.SCOPE_CHANGE:
        problems += _scope_problems(deal, a, line, delivered)
    elif a.kind is AmendmentKind.ADD_DELIVERABLES:
        problems += _deliverables_problems(terms, a)
    return problems


def _seat_change_problems(deal: DealSubmission, a: Amendment, line: DealLine | None) -> list[str]:
    if a.new_quantity is None:
        return ["new_quantity: a seat change needs the new quantity"]
    if line is None:
        return []
    if not is_recurring(deal, line):
        return [f"line_id: {line.line_id} is not a recurring line; seats change on subscriptions"]
    if a.new_quantity == line.quantity:
        return [f"new_quantity: {a.new_quantity} is the quantity already on {line.line_id}"]
    return []


def _upsell_problems(deal: DealSubmission, a: Amendment) -> list[str]:
    if a.new_line is None:
        return ["new_line: a module upsell needs the new contract line"]
    problems: list[str] = []
    if any(ln.line_id == a.new_line.line_id for ln in deal.lines):
        problems.append(f"new_line.line_id: {a.new_line.line_id} is already a line of this "
                        "contract; use seat_change or price_uplift")  # fmt: skip
    if not is_recurring(deal, a.new_line):
        problems.append("new_line.recognition: an upsold module is a ratable subscription line")
    return problems


def _deliverables_problems(terms: ContractTerms, a: Amendment) -> list[str]:
    deal, line = terms.current, a.new_line
    if line is None:
        return ["new_line: adding deliverables needs the new contract line"]
    problems: list[str] = []
    if any(ln.line_id == line.line_id for ln in deal.lines):
        problems.append(f"new_line.line_id: {line.line_id} is already a line of this contract")
    if deal.line_recognition(line) is not RecognitionType.MILESTONE:
        problems.append("new_line.recognition: added deliverables are a milestone line, each "
                        "recognised when delivered and accepted")  # fmt: skip
    if not a.milestones:
        return [*problems, "milestones: list the new line's deliverables"]
    known = {m.milestone_id for m in deal.milestones}
    for i, m in enumerate(a.milestones):
        if m.line_id != line.line_id:
            problems.append(f"milestones[{i}].line_id: {m.line_id} must be {line.line_id}")
        if m.milestone_id in known:
            problems.append(f"milestones[{i}].milestone_id: {m.milestone_id} is already a "
                            "milestone of this contract")  # fmt: skip
        if not a.effective_date <= m.due_date <= terms.end:
            problems.append(f"milestones[{i}].due_date: {m.due_date} must fall between "
                            f"{a.effective_date} and {terms.end} (the last day of service)")  # fmt: skip
    total = money_sum((Money(amount=m.amount, currency=terms.currency) for m in a.milestones),
                      terms.currency)  # fmt: skip
    if total != line.net_total(terms.currency):
        problems.append(f"milestones: they total {total}, the new line "
                        f"{line.net_total(terms.currency)}")  # fmt: skip
    return problems


def _scope_problems(
    deal: DealSubmission, a: Amendment, line: DealLine | None, delivered: frozenset[str]
) -> list[str]:
    if not a.milestones:
        return ["milestones: a scope change lists the line's milestones after the change"]
    if line is None:
        return []
    if deal.line_recognition(line) is not RecognitionType.MILESTONE:
        return [f"line_id: {line.line_id} is not recognised on milestones"]
    problems = [f"milestones[{i}].line_id: {m.line_id} must be {line.line_id}"
                for i, m in enumerate(a.milestones) if m.line_id != line.line_id]  # fmt: skip
    before = {m.milestone_id: m for m in deal.milestones if m.line_id == line.line_id}
    after = {m.milestone_id: m for m in a.milestones}
    for milestone_id in sorted(delivered & before.keys()):
        if after.get(milestone_id) != before[milestone_id]:
            problems.append(f"milestones: {milestone_id} was delivered and accepted; it stays "
                            "as it was (a delivered milestone is not re-scoped)")  # fmt: skip
    return problems


def apply_amendment(terms: ContractTerms, a: Amendment) -> ContractTerms:
    """The terms once `a` is in force (check `amendment_problems` first)."""
    if a.kind is AmendmentKind.CANCELLATION:
        return terms.model_copy(update={"cancelled_on": a.effective_date})
    deal = terms.current
    lines = [_changed_line(line, a) for line in deal.lines]
    milestones = deal.milestones
    if a.kind in (AmendmentKind.MODULE_UPSELL, AmendmentKind.ADD_DELIVERABLES) and a.new_line:
        lines.append(a.new_line)
    if a.kind is AmendmentKind.SCOPE_CHANGE and a.milestones is not None:
        milestones = [m for m in deal.milestones if m.line_id != a.line_id] + a.milestones
    if a.kind is AmendmentKind.ADD_DELIVERABLES and a.milestones is not None:
        milestones = [*deal.milestones, *a.milestones]
    amended = deal.model_copy(update={"lines": lines, "milestones": milestones})
    amended = amended.model_copy(update={"total_contract_value": _new_tcv(terms, amended, a)})
    version = TermsVersion(effective_from=a.effective_date, deal=amended,
                           amendment_id=a.amendment_id)  # fmt: skip
    return terms.model_copy(update={"versions": [*terms.versions, version]})


def _changed_line(line: DealLine, a: Amendment) -> DealLine:
    if line.line_id != a.line_id:
        return line
    if a.kind is AmendmentKind.SEAT_CHANGE and a.new_quantity is not None:
        return line.model_copy(update={"quantity": a.new_quantity})
    if a.kind is AmendmentKind.PRICE_UPLIFT and a.uplift_percent is not None:
        factor = 1 + a.uplift_percent / 100
        return line.model_copy(update={"net_price": line.net_price * factor,
                                       "list_price": max(line.list_price,
                                                         line.net_price * factor)})  # fmt: skip
    if a.kind is AmendmentKind.SCOPE_CHANGE and a.milestones is not None:
        total = sum((m.amount for m in a.milestones), Decimal(0))
        return line.model_copy(update={
            "quantity": Decimal(1), "net_price": total,
            "list_price": max(total, line.list_price * line.quantity),
            "standalone_selling_price": line.standalone_selling_price * line.quantity,
        })  # fmt: skip
    return line


def _new_tcv(terms: ContractTerms, amended: DealSubmission, a: Amendment) -> Decimal:
    """The TCV after the change: what the changed line brings in now minus before."""
    before = terms.current.total_contract_value
    probe = terms.model_copy(update={"versions": [*terms.versions, TermsVersion(
        effective_from=a.effective_date, deal=amended, amendment_id=a.amendment_id)]})  # fmt: skip
    delta = Decimal(0)
    for line_id in probe.recurring_line_ids():
        delta += (probe.line_consideration(line_id) - terms.line_consideration(line_id)).amount
    if a.kind is AmendmentKind.SCOPE_CHANGE:
        old = next(ln for ln in terms.current.lines if ln.line_id == a.line_id)
        new = next(ln for ln in amended.lines if ln.line_id == a.line_id)
        delta += new.quantity * new.net_price - old.quantity * old.net_price
    if a.kind is AmendmentKind.ADD_DELIVERABLES and a.new_line is not None:
        delta += a.new_line.quantity * a.new_line.net_price
    return before + delta
