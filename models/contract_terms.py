"""A contract's terms over time, and what each recurring line costs in each billing period.

The booked deal is the first version of the terms; every amendment adds a version effective
from its date, and a cancellation ends them. A recurring line's *price* at any day is the
whole-term total of the version in force (quantity × net price, as on the deal line; list
price once the line's discount has expired). Its amount for billing period p:

    s0 + Σ_i [ round(s_i × f_i) − round(s_(i−1) × f_i) ]

where s_i is the period's share of the i-th price (the term total split over the periods by
largest remainder, exactly as the booked billing plan splits it), and f_i the part of the
period from the i-th change on (days by the configured day count, `models.proration`). So a
period without a change bills exactly its planned share; a change mid-period is the credit
for the unused days at the old price and the charge for them at the new one; a
cancellation is a change to zero. A discount with an expiry applies through its expiry day
and the list price from the day after, without anyone having to stop it.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from models.billing_periods import BillingPeriod, billing_periods, period_months, period_weights
from models.calendar_math import ONE_DAY
from models.deal import Contact, DealLine, DealSubmission, ProductType, RecognitionType
from models.money import Money, allocate, money_sum
from models.proration import DayCount, share


class PriceChange(BaseModel):
    """From `effective` on, the line is priced at `term_total` for the whole term."""

    model_config = ConfigDict(frozen=True)

    effective: date
    term_total: Money
    why: str


class TermsVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    effective_from: date
    deal: DealSubmission
    amendment_id: str | None = Field(default=None, description="None for the booked deal")


def is_recurring(deal: DealSubmission, line: DealLine) -> bool:
    """Billed per period in advance: ratable lines that are not metered."""
    return (
        line.product_type is not ProductType.USAGE
        and deal.line_recognition(line) is RecognitionType.RATABLE
    )


class ContractTerms(BaseModel):
    """The versions of a contract's terms, the cancellation date and the day count."""

    model_config = ConfigDict(frozen=True)

    versions: list[TermsVersion] = Field(min_length=1)
    cancelled_on: date | None = Field(default=None, description="First day not in service")
    day_count: DayCount = DayCount.ACTUAL

    @classmethod
    def booked(cls, deal: DealSubmission, day_count: DayCount = DayCount.ACTUAL) -> ContractTerms:
        return cls(versions=[TermsVersion(effective_from=deal.start_date, deal=deal)],
                   day_count=day_count)  # fmt: skip

    @property
    def current(self) -> DealSubmission:
        return self.versions[-1].deal

    def with_billing_contact(self, contact: Contact) -> ContractTerms:
        """The same terms, invoiced to `contact` from now on (in every version: a corrected
        address changes no price)."""
        versions = []
        for v in self.versions:
            customer = v.deal.customer.model_copy(update={"billing_contact": contact})
            versions.append(
                v.model_copy(update={"deal": v.deal.model_copy(update={"customer": customer})})
            )
        return self.model_copy(update={"versions": versions})

    @property
    def currency(self) -> str:
        return self.versions[0].deal.currency

    @property
    def start(self) -> date:
        return self.versions[0].deal.start_date

    @property
    def end(self) -> date:
        """Last day of service: the term's end, or the day before the cancellation."""
        term_end = self.versions[0].deal.end_date
        return min(term_end, self.cancelled_on - ONE_DAY) if self.cancelled_on else term_end

    @cached_property
    def periods(self) -> list[BillingPeriod]:
        first = self.versions[0].deal
        return billing_periods(
            first.start_date, first.end_date, period_months(first.billing_frequency)
        )

    def recurring_line_ids(self) -> list[str]:
        """Every recurring line of any version, in the order they first appear."""
        seen: dict[str, None] = {}
        for v in self.versions:
            for line in v.deal.lines:
                if is_recurring(v.deal, line):
                    seen.setdefault(line.line_id, None)
        return list(seen)

    def line_in_force(self, line_id: str, day: date) -> DealLine | None:
        deal = self._version_on(day).deal
        return next((ln for ln in deal.lines if ln.line_id == line_id), None)

    def _version_on(self, day: date) -> TermsVersion:
        return next(
            (v for v in reversed(self.versions) if v.effective_from <= day), self.versions[0]
        )

    def price_changes(self, line_id: str) -> list[PriceChange]:
        """The line's price from the start of the term on, one entry per change."""
        zero = Money.zero(self.currency)
        changes: list[PriceChange] = []
        bounds = [v.effective_from for v in self.versions[1:]] + [None]
        for version, until in zip(self.versions, bounds, strict=True):
            line = next((ln for ln in version.deal.lines if ln.line_id == line_id), None)
            why = f"amendment {version.amendment_id}" if version.amendment_id else "as booked"
            if line is None or not is_recurring(version.deal, line):
                changes.append(PriceChange(effective=version.effective_from, term_total=zero,
                                           why=why))  # fmt: skip
                continue
            changes.append(PriceChange(effective=version.effective_from,
                                       term_total=line.net_total(self.currency), why=why))  # fmt: skip
            expiry = line.discount_expiry
            if expiry is not None and line.discount_percent > 0:
                after = expiry + ONE_DAY
                if version.effective_from < after and (until is None or after < until):
                    changes.append(PriceChange(effective=max(after, version.effective_from),
                                               term_total=line.list_total(self.currency),
                                               why=f"discount of {line.discount_percent}% "
                                                   f"expired {expiry}"))  # fmt: skip
        if self.cancelled_on is not None:
            changes = [c for c in changes if c.effective < self.cancelled_on]
            changes.append(PriceChange(effective=self.cancelled_on, term_total=zero,
                                       why=f"cancelled from {self.cancelled_on}"))  # fmt: skip
        return _merged(changes)

    def _shares(self, total: Money) -> list[Money]:
        if total.is_zero():
            return [total] * len(self.periods)
        return allocate(total, period_weights(self.periods))

    def line_amount(self, line_id: str, period: BillingPeriod) -> Money:
        """What the line costs for `period` under the terms as they stand."""
        return self._amount(self.price_changes(line_id), period, {})

    def line_amounts(self, line_id: str) -> list[Money]:
        """`line_amount` of every period of the term, in order. Each price's split over the
        periods is made once, not once per period (a 36-month term made 36 splits of 36)."""
        changes, splits = self.price_changes(line_id), dict[Money, list[Money]]()
        return [self._amount(changes, period, splits) for period in self.periods]

    def _amount(
        self, changes: list[PriceChange], period: BillingPeriod, splits: dict[Money, list[Money]]
    ) -> Money:
        def split(total: Money) -> list[Money]:
            if total not in splits:
                splits[total] = self._shares(total)
            return splits[total]

        in_force = [c for c in changes if c.effective <= period.start]
        current = in_force[-1] if in_force else PriceChange(
            effective=period.start, term_total=Money.zero(self.currency), why="not yet in force"
        )  # fmt: skip
        index = period.number - 1
        previous_share = split(current.term_total)[index]
        amount = previous_share
        for change in (c for c in changes if period.start < c.effective <= period.end):
            fraction = share(period.start, period.end, change.effective, period.end,
                             self.day_count)  # fmt: skip
            new_share = split(change.term_total)[index]
            amount = amount + new_share.times(fraction) - previous_share.times(fraction)
            previous_share = new_share
        return amount

    def changes_within(self, line_id: str, period: BillingPeriod) -> list[PriceChange]:
        return [c for c in self.price_changes(line_id) if period.start < c.effective <= period.end]

    def line_consideration(self, line_id: str) -> Money:
        """What the recurring line bills over the whole term under the terms as they stand."""
        return money_sum(self.line_amounts(line_id), self.currency)

    def period_at(self, day: date) -> BillingPeriod | None:
        return next((p for p in self.periods if p.start <= day <= p.end), None)


def _merged(changes: list[PriceChange]) -> list[PriceChange]:
    """One change per day (the later one in the list wins), and none that leaves the price
    where it was."""
    by_day: dict[date, PriceChange] = {}
    for change in sorted(changes, key=lambda c: c.effective):
        by_day[change.effective] = change
    merged: list[PriceChange] = []
    for change in by_day.values():
        if not merged or merged[-1].term_total != change.term_total:
            merged.append(change)
    return merged


def booked_consideration(deal: DealSubmission, line: DealLine) -> Money:
    """What the line brings in over the term as booked: its net total, except that a
    recurring line whose discount expires inside the term bills list price after it."""
    if is_recurring(deal, line) and line.discount_expiry is not None:
        return ContractTerms.booked(deal).line_consideration(line.line_id)
    return line.net_total(deal.currency)


def has_work_after_first_invoice(deal: DealSubmission) -> bool:
    """Whether a contract workflow has anything to bill or earn after the first invoice:
    a second recurring period, milestones, T&M or usage."""
    terms = ContractTerms.booked(deal)
    recurring = bool(terms.recurring_line_ids()) and len(terms.periods) > 1
    return recurring or any(
        not is_recurring(deal, line)
        and deal.line_recognition(line) is not RecognitionType.PERPETUAL_LICENSE
        for line in deal.lines
    )
