"""The billing plan of a deal: what is invoiced on which date (SPEC §4).

How each line is billed follows its obligation type (`billing_basis`):
- ratable lines (subscriptions, support, anything sold ratably) are recurring: billed in
  advance on the first day of each billing period. Periods follow the deal's frequency
  (monthly 1 month, quarterly 3, annually 12; a deal billed on milestones, T&M or usage
  bills its recurring lines annually) and are anchored on the start date: period k starts
  on add_months(start, (k-1) * length), so a term starting on the 31st keeps its anchor.
- perpetual licenses are billed in full on delivery, the start date.
- milestone, T&M and usage lines are not in the plan: they are invoiced when a milestone
  is accepted (`milestone_invoice_lines`), hours are approved or usage is metered.

Proration convention (day count): every full period bills an equal share of the line's
net total; a partial final period bills days / days-in-that-period-had-it-been-full of a
share (61 of 91 days for 2027-04-01..2027-05-31 against a full 2027-04-01..2027-06-30).
The shares are split with `allocate`, so a line's invoices sum to its net total to the
minor unit. Zero-amount invoice lines are left out: nothing is invoiced for them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import groupby
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from models.billing_periods import BillingPeriod
from models.contract_terms import ContractTerms
from models.deal import DealLine, DealSubmission, ProductType, RecognitionType
from models.money import Money, money_sum

BILLING_CONVENTION = (
    "Recurring lines are billed in advance per billing period anchored on the start date; "
    "a partial final period is prorated by days against that period had it been full; "
    "perpetual licenses are billed on delivery (the start date); milestones, T&M and usage "
    "are billed on acceptance, approval or metering; splits by largest remainder to the "
    "currency's minor unit."
)


class BillingBasis(StrEnum):
    """When a line is invoiced."""

    RECURRING = "recurring"
    ON_DELIVERY = "on_delivery"
    MILESTONE = "milestone"
    TIME_AND_MATERIALS = "tm"
    USAGE = "usage"


class InvoiceLine(BaseModel):
    """One line of an invoice. `amount` is authoritative; `unit_price` is amount / quantity
    rounded half-up to the minor unit, for display, so quantity * unit_price may differ
    from `amount` by rounding."""

    model_config = ConfigDict(frozen=True)

    line_id: str = Field(description="The contract line billed")
    description: str = Field(description="What the customer reads on the invoice")
    quantity: Decimal = Field(description="Units billed, as on the contract line")
    unit_price: Money = Field(description="amount / quantity, for display")
    amount: Money = Field(description="What the customer owes for this line")
    service_start: date | None = Field(default=None, description="First day of service billed")
    service_end: date | None = Field(default=None, description="Last day of service billed")


class BillingEvent(BaseModel):
    """One invoice the plan calls for: its date, the service it covers and its lines."""

    model_config = ConfigDict(frozen=True)

    invoice_date: date = Field(description="Date the invoice is issued (in advance)")
    period_start: date = Field(description="Earliest service day on the invoice")
    period_end: date = Field(description="Latest service day on the invoice")
    lines: Annotated[list[InvoiceLine], Field(min_length=1)] = Field(
        description="Contract lines billed on this date, in contract order"
    )
    reason: str = Field(description="Why it is invoiced, e.g. 'subscription period 1 of 12'")

    def total(self) -> Money:
        """Sum of the line amounts."""
        return money_sum((line.amount for line in self.lines), self.lines[0].amount.currency)


def billing_basis(deal: DealSubmission, line: DealLine) -> BillingBasis:
    """How `line` is invoiced: usage products are metered, otherwise by obligation type."""
    if line.product_type is ProductType.USAGE:
        return BillingBasis.USAGE
    return {
        RecognitionType.RATABLE: BillingBasis.RECURRING,
        RecognitionType.PERPETUAL_LICENSE: BillingBasis.ON_DELIVERY,
        RecognitionType.MILESTONE: BillingBasis.MILESTONE,
        RecognitionType.TIME_AND_MATERIALS: BillingBasis.TIME_AND_MATERIALS,
    }[deal.line_recognition(line)]


class _Billed(NamedTuple):
    invoice_date: date
    line: InvoiceLine
    reason: str


def billing_plan(deal: DealSubmission) -> list[BillingEvent]:
    """Every invoice due on a schedule, by date; lines on the same date share one event.
    Raises ValueError for a term that ends before it starts (QA refuses it earlier)."""
    return _events(_billed(deal, first_periods_only=False))


def first_invoice(deal: DealSubmission) -> BillingEvent | None:
    """The first invoice of the plan; None when nothing is billable on a schedule."""
    billed = _billed(deal, first_periods_only=True)
    if any(b.line.amount.is_zero() for b in billed):  # a free first period: look further
        billed = _billed(deal, first_periods_only=False)
    plan = _events(billed)
    return plan[0] if plan else None


def _billed(deal: DealSubmission, *, first_periods_only: bool) -> list[_Billed]:
    if deal.end_date < deal.start_date:
        raise ValueError(
            f"Deal {deal.deal_id} ends {deal.end_date} before it starts {deal.start_date}"
        )
    terms = ContractTerms.booked(deal)
    billed: list[_Billed] = []
    for line in deal.lines:
        basis = billing_basis(deal, line)
        if basis is BillingBasis.RECURRING:
            billed.extend(_recurring(terms, line, first_periods_only))
        elif basis is BillingBasis.ON_DELIVERY:
            billed.append(_on_delivery(deal, line))
    return billed


def _events(billed: list[_Billed]) -> list[BillingEvent]:
    billed = [b for b in billed if not b.line.amount.is_zero()]
    billed.sort(key=lambda b: b.invoice_date)  # stable: lines keep contract order
    return [
        _event(day, list(group)) for day, group in groupby(billed, key=lambda b: b.invoice_date)
    ]


def _recurring(terms: ContractTerms, line: DealLine, first_only: bool) -> list[_Billed]:
    periods, kind = terms.periods, line.product_type.value
    if first_only:
        periods, amounts = periods[:1], [terms.line_amount(line.line_id, periods[0])]
    else:
        amounts = terms.line_amounts(line.line_id)
    return [
        _Billed(p.start, period_line(terms, line, p, amount),
                f"{kind} period {p.number} of {len(terms.periods)}")
        for p, amount in zip(periods, amounts, strict=True)
    ]  # fmt: skip


def period_line(
    terms: ContractTerms, line: DealLine, period: BillingPeriod, amount: Money
) -> InvoiceLine:
    """The invoice line of a recurring contract line for one billing period, in advance."""
    description = f"{line.product}, {period.start} to {period.end}"
    if period.days < period.full_days:
        description += f" ({period.days} of {period.full_days} days)"
    changes = terms.changes_within(line.line_id, period)
    if changes:
        description += "; " + "; ".join(f"from {c.effective}: {c.why}" for c in changes)
    return InvoiceLine(
        line_id=line.line_id,
        description=description,
        quantity=line.quantity,
        unit_price=Money(amount=amount.amount / line.quantity, currency=amount.currency),
        amount=amount,
        service_start=period.start,
        service_end=period.end,
    )


def _licence_description(product: str) -> str:
    """'<product>, perpetual license', unless the product's name already says so."""
    return product if "perpetual licen" in product.lower() else f"{product}, perpetual license"


def _on_delivery(deal: DealSubmission, line: DealLine) -> _Billed:
    invoice_line = InvoiceLine(
        line_id=line.line_id,
        description=_licence_description(line.product),
        quantity=line.quantity,
        unit_price=Money(amount=line.net_price, currency=deal.currency),
        amount=line.net_total(deal.currency),
        service_start=deal.start_date,
        service_end=None,
    )
    return _Billed(deal.start_date, invoice_line, "perpetual license on delivery")


def _event(invoice_date: date, billed: list[_Billed]) -> BillingEvent:
    starts = [b.line.service_start or invoice_date for b in billed]
    ends = [b.line.service_end or b.line.service_start or invoice_date for b in billed]
    reasons = list(dict.fromkeys(b.reason for b in billed))
    return BillingEvent(
        invoice_date=invoice_date,
        period_start=min(starts),
        period_end=max(ends),
        lines=[b.line for b in billed],
        reason="; ".join(reasons),
    )


def milestone_invoice_lines(deal: DealSubmission, milestone_id: str) -> list[InvoiceLine]:
    """The invoice line for a delivered and accepted milestone, at its contract amount."""
    milestone = next((m for m in deal.milestones if m.milestone_id == milestone_id), None)
    if milestone is None:
        raise ValueError(f"Deal {deal.deal_id} has no milestone {milestone_id}")
    line = next((ln for ln in deal.lines if ln.line_id == milestone.line_id), None)
    if line is None:
        raise ValueError(
            f"Milestone {milestone_id} of deal {deal.deal_id} names line {milestone.line_id}, "
            "which the deal does not have"
        )
    amount = Money(amount=milestone.amount, currency=deal.currency)
    invoice_line = InvoiceLine(
        line_id=line.line_id,
        description=f"{line.product}: {milestone.description}",
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
    )
    return [invoice_line]
