"""Revenue recognition schedule for a deal (ASC 606 / IFRS 15, SPEC §5).

Two steps, both pure:

1. `allocate_transaction_price`: each contract line is one performance obligation. The
   transaction price is the sum of the lines' net totals. T&M lines are variable
   consideration that relates entirely to that line, so each keeps its own net total
   (ASC 606-10-32-40, IFRS 15.85) and is left out of the standalone-selling-price (SSP)
   allocation. The rest of the price (the fixed consideration) is split over the other
   lines in proportion to their SSP totals (quantity * standalone_selling_price), so a
   bundle discount lands on every obligation proportionally (ASC 606-10-32-36). When
   every SSP is zero the lines' net totals are the weights. A line with a zero SSP among
   lines with SSPs is allocated nothing (relative SSP taken literally): a missing SSP is a
   data problem for QA, not something this module guesses around.
   A discount tied to specific obligations (ASC 606-10-32-37, IFRS 15.82): when the deal
   names the lines its discount belongs to (`discount_applies_to`, with evidence), every
   other line gets its SSP total and the named lines share the rest by relative SSP, before
   any residual approach (32-38); see `models.tied_discount`. A designation the prices do
   not fit fails QA and, if waived, is allocated as if no discount were tied.
   The residual approach (ASC 606-10-32-34(c), IFRS 15.79(c)): lines flagged
   `ssp_highly_variable` (a product sold at widely varying prices, so no SSP can be
   observed) get what is left of the fixed price after every other line receives its
   observable SSP, split between them by their net totals. When nothing would be left (the
   observable SSPs already exceed the price), the residual approach does not apply and every
   line is allocated by relative SSP, the flagged ones weighted by their net totals.
2. `build_schedule`: when each obligation's allocated amount may be recognised.
   - ratable (subscription, support): straight line by days over the contract term,
     start and end inclusive. Each calendar-month slice gets allocated * slice days /
     term days, recognised on the slice's last day (month end, or the term's end).
   - perpetual license: at a point in time, delivery, taken as the deal's start date.
   - milestone: the allocated amount split over the line's milestones in proportion to
     their contract amounts; each part needs the milestone delivered and accepted and its
     date is the milestone's due date.
   - T&M: recognised only as hours are approved; the schedule carries the expected
     profile (the allocated amount spread over the term by days), flagged `requires_event`.

Every split uses `models.money.allocate` (each share cut to the currency's minor unit,
the units left over handed out by largest remainder), so each obligation's entries sum to its
allocation and the schedule sums to the transaction price to the minor unit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.calendar_math import days_inclusive, month_slices, period_label
from models.contract_terms import booked_consideration
from models.deal import DealLine, DealSubmission, RecognitionType
from models.money import CurrencyCode, Money, allocate, money_sum
from models.tied_discount import shares_fixed_price, tied_discount_note, tied_split

Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="'YYYY-MM'")]


class ScheduleKind(StrEnum):
    """How a schedule entry is earned."""

    RATABLE = "ratable"
    POINT_IN_TIME = "point_in_time"
    MILESTONE = "milestone"
    TM = "tm"


class Obligation(BaseModel):
    """One performance obligation (one contract line) and its share of the price."""

    model_config = ConfigDict(frozen=True)

    line_id: str = Field(description="The contract line this obligation is")
    product: str = Field(description="Product name, as on the contract line")
    recognition: RecognitionType = Field(description="How the obligation is satisfied")
    net_total: Money = Field(description="Contract price of the line: quantity * net_price")
    ssp_total: Money = Field(description="quantity * standalone_selling_price")
    allocated: Money = Field(description="Transaction price allocated to the obligation")
    service_start: date = Field(description="First day of service (delivery for a license)")
    service_end: date = Field(description="Last day of service (delivery for a license)")


class ScheduleEntry(BaseModel):
    """An amount of one obligation that may be recognised on or after a date."""

    model_config = ConfigDict(frozen=True)

    line_id: str = Field(description="The obligation (contract line) the amount belongs to")
    period: Period = Field(description="Accounting period the amount belongs to")
    recognition_date: date = Field(
        description="Earliest date it may be recognised; for event-driven entries, the expected date"
    )
    amount: Money = Field(description="Revenue to recognise; a share of the obligation")
    kind: ScheduleKind = Field(description="How it is earned: ratable, point in time, ...")
    milestone_id: str | None = Field(default=None, description="Set for milestone entries")
    requires_event: bool = Field(
        description="True when recognition also needs an event: milestone accepted, hours approved"
    )


class RecognitionSchedule(BaseModel):
    """The recognition schedule of one contract: obligations and dated entries."""

    model_config = ConfigDict(frozen=True)

    deal_id: str = Field(description="CRM opportunity id of the deal")
    currency: CurrencyCode = Field(description="Currency of every amount in the schedule")
    transaction_price: Money = Field(
        description="Sum of the lines' consideration (net totals; list price after an "
        "expiring discount's expiry)"
    )
    obligations: list[Obligation] = Field(description="One per contract line, in line order")
    entries: list[ScheduleEntry] = Field(description="By obligation, then by date")
    convention: str = Field(description="The recognition convention, in one sentence for finance")

    def entries_recognisable_as_of(
        self, as_of: date, delivered_milestones: frozenset[str] = frozenset()
    ) -> list[ScheduleEntry]:
        """Entries due by `as_of` that need no event, and the entries of milestones
        delivered and accepted (`delivered_milestones`, by id), whenever they were expected:
        a milestone accepted early is earned early. T&M entries are never returned: T&M
        revenue comes from approved hours, not the schedule.
        """
        return [
            entry
            for entry in self.entries
            if (entry.recognition_date <= as_of or entry.requires_event)
            and _event_met(entry, delivered_milestones)
        ]

    def recognisable_as_of(
        self, as_of: date, delivered_milestones: frozenset[str] = frozenset()
    ) -> Money:
        """Revenue that may be recognised by `as_of` (see `entries_recognisable_as_of`)."""
        entries = self.entries_recognisable_as_of(as_of, delivered_milestones)
        return money_sum((entry.amount for entry in entries), self.currency)

    def remaining_as_of(
        self, as_of: date, delivered_milestones: frozenset[str] = frozenset()
    ) -> Money:
        """Transaction price not yet recognisable by `as_of`."""
        return self.total() - self.recognisable_as_of(as_of, delivered_milestones)

    def by_period(self) -> dict[str, Money]:
        """Scheduled amount per 'YYYY-MM' period, in period order (event-driven ones included)."""
        totals: dict[str, Money] = {}
        for entry in sorted(self.entries, key=lambda e: e.period):
            totals[entry.period] = (
                totals.get(entry.period, Money.zero(self.currency)) + entry.amount
            )
        return totals

    def total(self) -> Money:
        """Sum of all entries; equals the transaction price."""
        return money_sum((entry.amount for entry in self.entries), self.currency)


def _event_met(entry: ScheduleEntry, delivered_milestones: frozenset[str]) -> bool:
    if not entry.requires_event:
        return True
    return entry.milestone_id is not None and entry.milestone_id in delivered_milestones


# --- step 1: allocate the transaction price -------------------------------------------


def allocate_transaction_price(deal: DealSubmission) -> list[Obligation]:
    """One obligation per line, in line order, with its allocated share of the price."""
    amounts = _allocated_amounts(deal)
    return [
        _obligation(deal, line, amount) for line, amount in zip(deal.lines, amounts, strict=True)
    ]


def _allocated_amounts(deal: DealSubmission) -> list[Money]:
    fixed_lines = [line for line in deal.lines if shares_fixed_price(deal, line)]
    fixed_parts = iter(_relative_ssp_split(deal, fixed_lines))
    return [
        next(fixed_parts) if shares_fixed_price(deal, line) else line.net_total(deal.currency)
        for line in deal.lines
    ]


def transaction_price(deal: DealSubmission) -> Money:
    """What the contract brings in: the lines' net totals, with list price after an expiring
    discount's expiry day (`models.contract_terms`)."""
    return money_sum((booked_consideration(deal, line) for line in deal.lines), deal.currency)


def _relative_ssp_split(deal: DealSubmission, lines: list[DealLine]) -> list[Money]:
    """Split the lines' combined consideration by their SSP totals (by their consideration
    if all SSPs are 0)."""
    currency = deal.currency
    if not lines:
        return []
    price = money_sum((booked_consideration(deal, line) for line in lines), currency)
    tied = tied_split(deal, lines, price)
    if tied is not None and tied.parts is not None:
        return tied.parts
    residual = _residual_split(deal, lines, price)
    if residual is not None:
        return residual
    weights = [
        booked_consideration(deal, line).amount if line.ssp_highly_variable
        else line.ssp_total(currency).amount
        for line in lines
    ]  # fmt: skip
    if sum(weights) == 0:
        weights = [booked_consideration(deal, line).amount for line in lines]
    if sum(weights) == 0:
        return [Money.zero(currency) for _ in lines]
    return allocate(price, weights)


def _residual_split(
    deal: DealSubmission, lines: list[DealLine], price: Money
) -> list[Money] | None:
    """Observable SSPs to the other lines, the rest to the highly variable ones; None when
    the residual approach does not apply (no flagged line, all flagged, or nothing left)."""
    currency = deal.currency
    flagged = [line for line in lines if line.ssp_highly_variable]
    if not flagged or len(flagged) == len(lines):
        return None
    observed = money_sum((ln.ssp_total(currency) for ln in lines if not ln.ssp_highly_variable),
                         currency)  # fmt: skip
    left = price - observed
    if left.amount <= 0:
        return None
    weights = [booked_consideration(deal, line).amount for line in flagged]
    parts = iter(allocate(left, weights if sum(weights) else [Decimal(1)] * len(flagged)))
    return [next(parts) if line.ssp_highly_variable else line.ssp_total(currency)
            for line in lines]  # fmt: skip


def _obligation(deal: DealSubmission, line: DealLine, allocated: Money) -> Obligation:
    recognition = deal.line_recognition(line)
    delivered_at_start = recognition is RecognitionType.PERPETUAL_LICENSE
    return Obligation(
        line_id=line.line_id,
        product=line.product,
        recognition=recognition,
        net_total=line.net_total(deal.currency),
        ssp_total=line.ssp_total(deal.currency),
        allocated=allocated,
        service_start=deal.start_date,
        service_end=deal.start_date if delivered_at_start else deal.end_date,
    )


# --- step 2: date the allocated amounts -----------------------------------------------


def build_schedule(deal: DealSubmission) -> RecognitionSchedule:
    """The deal's recognition schedule. Raises ValueError for a term that ends before it
    starts or a milestone line without milestones (QA refuses both earlier)."""
    if deal.end_date < deal.start_date:
        raise ValueError(
            f"Deal {deal.deal_id} ends {deal.end_date} before it starts {deal.start_date}"
        )
    obligations = allocate_transaction_price(deal)
    entries = [entry for ob in obligations for entry in _ENTRIES[ob.recognition](deal, ob)]
    return RecognitionSchedule(
        deal_id=deal.deal_id,
        currency=deal.currency,
        transaction_price=transaction_price(deal),
        obligations=obligations,
        entries=entries,
        convention=_convention(deal),
    )


def _spread_by_days(
    deal: DealSubmission, ob: Obligation, kind: ScheduleKind, requires_event: bool
) -> list[ScheduleEntry]:
    """The allocated amount over the term's calendar-month slices, weighted by days."""
    slices = month_slices(deal.start_date, deal.end_date)
    weights = [Decimal(days_inclusive(start, end)) for start, end in slices]
    parts = allocate(ob.allocated, weights)
    return [
        ScheduleEntry(
            line_id=ob.line_id,
            period=period_label(start),
            recognition_date=end,
            amount=part,
            kind=kind,
            requires_event=requires_event,
        )
        for (start, end), part in zip(slices, parts, strict=True)
    ]


def _ratable_entries(deal: DealSubmission, ob: Obligation) -> list[ScheduleEntry]:
    return _spread_by_days(deal, ob, ScheduleKind.RATABLE, requires_event=False)


def _tm_entries(deal: DealSubmission, ob: Obligation) -> list[ScheduleEntry]:
    return _spread_by_days(deal, ob, ScheduleKind.TM, requires_event=True)


def _point_in_time_entries(deal: DealSubmission, ob: Obligation) -> list[ScheduleEntry]:
    entry = ScheduleEntry(
        line_id=ob.line_id,
        period=period_label(deal.start_date),
        recognition_date=deal.start_date,
        amount=ob.allocated,
        kind=ScheduleKind.POINT_IN_TIME,
        requires_event=False,
    )
    return [entry]


def _milestone_entries(deal: DealSubmission, ob: Obligation) -> list[ScheduleEntry]:
    """The allocation split by milestone amounts (equally if they are all zero), by due date."""
    milestones = sorted(
        (m for m in deal.milestones if m.line_id == ob.line_id), key=lambda m: m.due_date
    )
    if not milestones:
        raise ValueError(
            f"Line {ob.line_id} ({ob.product}) of deal {deal.deal_id} is recognised on "
            "milestones but has no milestones"
        )
    weights = [m.amount for m in milestones]
    if sum(weights) == 0:
        weights = [Decimal(1)] * len(milestones)
    parts = allocate(ob.allocated, weights)
    return [
        ScheduleEntry(
            line_id=ob.line_id,
            period=period_label(m.due_date),
            recognition_date=m.due_date,
            amount=part,
            kind=ScheduleKind.MILESTONE,
            milestone_id=m.milestone_id,
            requires_event=True,
        )
        for m, part in zip(milestones, parts, strict=True)
    ]


_ENTRIES: dict[RecognitionType, Callable[[DealSubmission, Obligation], list[ScheduleEntry]]] = {
    RecognitionType.RATABLE: _ratable_entries,
    RecognitionType.PERPETUAL_LICENSE: _point_in_time_entries,
    RecognitionType.MILESTONE: _milestone_entries,
    RecognitionType.TIME_AND_MATERIALS: _tm_entries,
}


def _convention(deal: DealSubmission) -> str:
    return (
        "Price allocated by relative standalone selling price (T&M kept on its own line as "
        "variable consideration, ASC 606-10-32-40); ratable lines straight-line by days over "
        f"{deal.start_date}..{deal.end_date} ({deal.term_days()} days, both inclusive), each "
        "calendar month's share recognised on its last day; perpetual licenses at delivery on "
        "the start date; milestones when delivered and accepted; T&M as hours are approved; "
        f"splits cut to the {deal.currency} minor unit, leftover units by largest remainder."
        + tied_discount_note(deal)
    )
