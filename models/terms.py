"""Contract-term arithmetic shared by the checks and the documents."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from models.calendar_math import add_months
from models.contract_terms import booked_consideration
from models.deal import DealSubmission, RecognitionType
from models.money import Money, money_sum


def term_months(start: date, end_inclusive: date) -> Decimal:
    """Months in [start, end]: whole months, plus the leftover days over the next month's length.

    2026-01-01..2026-12-31 is 12; 2026-01-15..2026-02-28 is 1 + 14/28 = 1.5.
    """
    stop = end_inclusive + timedelta(days=1)
    whole = 0
    while add_months(start, whole + 1) <= stop:
        whole += 1
    anchor = add_months(start, whole)
    leftover = (stop - anchor).days
    if leftover == 0:
        return Decimal(whole)
    span = (add_months(start, whole + 1) - anchor).days
    return Decimal(whole) + Decimal(leftover) / Decimal(span)


def term_years(deal: DealSubmission) -> Decimal:
    return term_months(deal.start_date, deal.end_date) / 12


def recurring_total(deal: DealSubmission) -> Money:
    """The part of TCV that recurs: lines recognised ratably (subscriptions and support), as
    booked (a discount that expires inside the term bills list price after it)."""
    return money_sum(
        (
            booked_consideration(deal, line)
            for line in deal.lines
            if deal.line_recognition(line) is RecognitionType.RATABLE
        ),
        deal.currency,
    )
