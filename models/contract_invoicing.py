"""What the contract workflow invoices: recurring periods with their settlements and credits,
and metered usage and T&M (pure; the activities number, store and post).

A recurring period is invoiced in advance at the terms known on its first day. When the
terms change later for a period already invoiced (an amendment effective inside it), the
difference between what the period costs now and what it was billed is settled as an
adjustment line on the next invoice, or at once as a credit note on a cancellation.
Credits offset the invoices of the periods they name, never below zero.
"""

from __future__ import annotations

from decimal import Decimal

from models.billing import BillingEvent, InvoiceLine, period_line
from models.billing_periods import BillingPeriod
from models.contract_flow import CreditBalance
from models.contract_terms import ContractTerms
from models.deal import DealLine, DealSubmission, ProductType
from models.money import Money, money_sum

BilledAmounts = dict[str, Money]


def billed_key(period: int, line_id: str) -> str:
    return f"{period}:{line_id}"


def first_period_billed(terms: ContractTerms, event: BillingEvent | None) -> BilledAmounts:
    """What the deal workflow's first invoice billed for period 1's recurring lines."""
    if event is None or not terms.periods or event.invoice_date != terms.periods[0].start:
        return {}
    recurring = set(terms.recurring_line_ids())
    return {billed_key(1, ln.line_id): ln.amount for ln in event.lines if ln.line_id in recurring}


def _line_named(terms: ContractTerms, line_id: str) -> DealLine:
    for version in reversed(terms.versions):
        for line in version.deal.lines:
            if line.line_id == line_id:
                return line
    raise ValueError(f"no line {line_id} in any version of the contract")


def settlements(
    terms: ContractTerms, billed: BilledAmounts, before_period: int
) -> tuple[list[InvoiceLine], BilledAmounts]:
    """Adjustment lines for periods already invoiced (< `before_period`) whose cost changed,
    and the billed amounts once they are settled."""
    lines: list[InvoiceLine] = []
    settled = dict(billed)
    line_ids = terms.recurring_line_ids()
    amounts = (
        {line_id: terms.line_amounts(line_id) for line_id in line_ids} if before_period > 1 else {}
    )
    for period in terms.periods[: before_period - 1]:
        for line_id in line_ids:
            key = billed_key(period.number, line_id)
            now = amounts[line_id][period.number - 1]
            difference = now - billed.get(key, Money.zero(terms.currency))
            if difference.is_zero():
                continue
            lines.append(_adjustment(terms, line_id, period, difference))
            settled[key] = now
    return lines, settled


def _adjustment(
    terms: ContractTerms, line_id: str, period: BillingPeriod, difference: Money
) -> InvoiceLine:
    line = _line_named(terms, line_id)
    changes = terms.changes_within(line_id, period) or terms.price_changes(line_id)[-1:]
    start = changes[0].effective if changes else period.start
    why = "; ".join(c.why for c in changes)
    label = "credit" if difference.amount < 0 else "charge"
    return InvoiceLine(
        line_id=line_id,
        description=f"{line.product}: proration {label}, {start} to {period.end} ({why})",
        quantity=Decimal(1), unit_price=difference, amount=difference,
        service_start=start, service_end=period.end,
    )  # fmt: skip


def recurring_invoice(
    terms: ContractTerms, period_no: int, billed: BilledAmounts, credits: list[CreditBalance]
) -> tuple[BillingEvent | None, BilledAmounts, list[CreditBalance]]:
    """The invoice of recurring period `period_no`: its lines at the terms in force, the
    settlements of earlier periods, then the credits naming it."""
    period = terms.periods[period_no - 1]
    lines, billed = settlements(terms, billed, period_no)
    for line_id in terms.recurring_line_ids():
        amount = terms.line_amount(line_id, period)
        billed[billed_key(period_no, line_id)] = amount
        if not amount.is_zero():
            lines.append(period_line(terms, _line_named(terms, line_id), period, amount))
    lines, credits = apply_credits(lines, credits, period_no, terms.currency)
    if not lines:
        return None, billed, credits
    reason = f"subscription period {period_no} of {len(terms.periods)}"
    event = BillingEvent(invoice_date=period.start, period_start=period.start,
                         period_end=period.end, lines=lines, reason=reason)  # fmt: skip
    return event, billed, credits


def apply_credits(
    lines: list[InvoiceLine], credits: list[CreditBalance], period_no: int, currency: str
) -> tuple[list[InvoiceLine], list[CreditBalance]]:
    """Credits naming `period_no` offset the invoice, in the order granted, down to zero."""
    room = money_sum((ln.amount for ln in lines), currency)
    out, updated = list(lines), []
    for balance in credits:
        use = Money.zero(currency)
        if period_no in balance.credit.applies_to_periods and room.amount > 0:
            use = min(balance.remaining, room)
        if not use.is_zero():
            room = room - use
            out.append(InvoiceLine(
                line_id="credit", quantity=Decimal(1), unit_price=-use, amount=-use,
                description=f"Credit {balance.credit.credit_id}: {balance.credit.reason}",
            ))  # fmt: skip
        updated.append(balance.model_copy(update={"remaining": balance.remaining - use}))
    return out, updated


def settlement_note(
    terms: ContractTerms, billed: BilledAmounts, through_period: int, reason: str
) -> tuple[BillingEvent | None, BilledAmounts]:
    """A credit note (or invoice) settling every invoiced period at once (on cancellation)."""
    lines, settled = settlements(terms, billed, through_period + 1)
    if not lines:
        return None, settled
    start = min(ln.service_start or terms.start for ln in lines)
    end = max(ln.service_end or terms.end for ln in lines)
    event = BillingEvent(invoice_date=start, period_start=start, period_end=end, lines=lines,
                         reason=reason)  # fmt: skip
    return event, settled


def usage_lines_by_metric(deal: DealSubmission) -> dict[str | None, DealLine]:
    """Usage lines by the metric they rate; None rates every metric no line names."""
    return {ln.usage_metric: ln for ln in deal.lines if ln.product_type is ProductType.USAGE}


def rated_line(line: DealLine, metric: str, quantity: Decimal, currency: str,
               what: str) -> InvoiceLine:  # fmt: skip
    amount = Money(amount=quantity * line.net_price, currency=currency)
    return InvoiceLine(
        line_id=line.line_id, quantity=quantity,
        unit_price=Money(amount=line.net_price, currency=currency), amount=amount,
        description=f"{line.product}: {quantity.normalize():f} {metric} {what}",
    )  # fmt: skip
