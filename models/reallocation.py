"""A modification as the end of one contract and the start of another (ASC 606-10-25-13(a)).

When a modification is neither a separate contract nor a change to one partly satisfied
obligation, what remains to be delivered is distinct from what was, and the standard treats
the contract as terminated and a new one made (IFRS 15.21(a)). The consideration of the new
contract is what the customer promised and was not yet recognised as revenue, plus what the
modification adds (or takes away). It is allocated over every remaining obligation, changed
or not, by relative standalone selling price at the modification date.

Here, on the effective date:

- **recognised** is what the schedule had earned: its entries dated before the day, the days
  before it of the month it falls in (the month's entry split by days), and the entries of
  milestones already accepted. None of it moves.
- **remaining obligations** are the lines with something left: a ratable line with days of
  service left, a milestone line with milestones not yet accepted (each accepted milestone
  is earned on its own, so what is left is distinct from what was delivered), and a licence
  not yet delivered. T&M lines keep their schedule: variable consideration stays with its
  line (32-40).
- **SSP of what remains**: the line's SSP total (quantity × standalone_selling_price, as
  the amended terms state it) × the part still to deliver (days left / term days, or the
  milestone amounts not accepted / all of the line's milestone amounts). A line without an
  observable SSP (`ssp_highly_variable`) is weighted by its own price instead; if every
  weight is zero, by their own prices, then equally.
- **consideration to allocate** = what the remaining lines had not yet recognised + (what
  the amended terms bring in − what the terms before brought in), recurring lines by their
  billing (`ContractTerms.line_consideration`), the others by their net totals.

Each remaining line keeps what it recognised and spreads its share: by day from the effective
date to its last day of service, over its milestones not accepted in proportion to their
amounts, or on a licence's delivery date. A discount tied to some lines at booking
(`discount_applies_to`) is not re-applied to the new contract.

If the amended terms bring in less than the remaining lines already recognised, nothing is
left to allocate: the remaining lines get nothing more, and the shortfall reduces the revenue
the fixed-price lines recognised, in proportion to what each recognised, each line's latest
entries first and never below zero (a catch-up the close posts in the open period). If the
contract has not recognised that much in all, `ModificationShortfall` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from models.calendar_math import ONE_DAY, days_inclusive, month_slices, period_label
from models.contract_terms import ContractTerms, is_recurring
from models.deal import DealLine, DealSubmission, Milestone, RecognitionType
from models.money import Money, allocate, money_sum
from models.recognition import ScheduleEntry, ScheduleKind


class ModificationShortfall(ValueError):
    """An amendment that leaves less consideration than the contract already recognised."""


@dataclass(frozen=True)
class Remaining:
    """A line with something left to deliver on the effective date."""

    line: DealLine
    recognition: RecognitionType
    kept: list[ScheduleEntry]  # what it had recognised before the effective date
    unearned: Money  # its allocation not yet recognised
    ssp: Decimal  # standalone selling price of what is left
    own_price: Decimal  # its own price for what is left, the fallback weight


def reallocated(
    by_line: dict[str, list[ScheduleEntry]], before: ContractTerms, after: ContractTerms,
    effective: date, delivered: frozenset[str],
) -> dict[str, list[ScheduleEntry]]:  # fmt: skip
    """The new entries of every fixed-price line the modification touches, by line id."""
    deal, currency = after.current, after.currency
    found = (_remaining(ln, by_line.get(ln.line_id, []), after, effective, delivered)
             for ln in deal.lines)  # fmt: skip
    pool = [r for r in found if r is not None]
    change = terms_consideration(after) - terms_consideration(before)
    to_allocate = money_sum((r.unearned for r in pool), currency) + change
    if not pool or to_allocate.amount < 0:
        return _shortfall(by_line, pool, deal, to_allocate)
    shares = allocate(to_allocate, _weights(pool))
    return {r.line.line_id: _share_out(r, share, deal, effective, after.end)
            for r, share in zip(pool, shares, strict=True)}  # fmt: skip


def terms_consideration(terms: ContractTerms) -> Money:
    """What the terms bring in: recurring lines as billed, the others at their net totals."""
    return money_sum((consideration_of(terms, ln.line_id) for ln in terms.current.lines),
                     terms.currency)  # fmt: skip


def consideration_of(terms: ContractTerms, line_id: str) -> Money:
    line = next((ln for ln in terms.current.lines if ln.line_id == line_id), None)
    if line is None:
        return Money.zero(terms.currency)
    if is_recurring(terms.current, line):
        return terms.line_consideration(line_id)
    return line.net_total(terms.currency)


def _remaining(line: DealLine, old: list[ScheduleEntry], after: ContractTerms, effective: date,
               delivered: frozenset[str]) -> Remaining | None:  # fmt: skip
    deal, currency = after.current, after.currency
    recognition = deal.line_recognition(line)
    if recognition is RecognitionType.RATABLE:
        if effective > after.end:
            return None
        kept = earned_before(old, effective)
        left = Decimal(days_inclusive(effective, after.end)) / Decimal(deal.term_days())
    elif recognition is RecognitionType.MILESTONE:
        amounts = {m.milestone_id: m.amount for m in deal.milestones if m.line_id == line.line_id}
        open_ids = [m for m in amounts if m not in delivered]
        if not open_ids:
            return None
        kept = [e for e in old if e.milestone_id in delivered]
        total = sum(amounts.values(), Decimal(0))
        left = (sum((amounts[m] for m in open_ids), Decimal(0)) / total if total
                else Decimal(len(open_ids)) / Decimal(len(amounts)))  # fmt: skip
    elif recognition is RecognitionType.PERPETUAL_LICENSE and deal.start_date >= effective:
        kept, left = [], Decimal(1)
    else:
        return None  # T&M, or a licence already delivered
    unearned = money_sum((e.amount for e in old), currency) - money_sum(
        (e.amount for e in kept), currency
    )
    own = line.net_total(currency).amount * left
    ssp = own if line.ssp_highly_variable else line.ssp_total(currency).amount * left
    return Remaining(line=line, recognition=recognition, kept=kept, unearned=unearned,
                     ssp=ssp, own_price=own)  # fmt: skip


def _weights(pool: list[Remaining]) -> list[Decimal]:
    for weights in ([r.ssp for r in pool], [r.own_price for r in pool]):
        if sum(weights) > 0:
            return weights
    return [Decimal(1)] * len(pool)


def _share_out(r: Remaining, share: Money, deal: DealSubmission, effective: date,
               last_day: date) -> list[ScheduleEntry]:  # fmt: skip
    line_id = r.line.line_id
    if r.recognition is RecognitionType.RATABLE:
        return one_per_period([*r.kept, *spread_by_days(line_id, share, effective, last_day)])
    if r.recognition is RecognitionType.MILESTONE:
        accepted = {e.milestone_id for e in r.kept}
        open_ms = [m for m in deal.milestones
                   if m.line_id == line_id and m.milestone_id not in accepted]  # fmt: skip
        entries = [*r.kept, *milestone_entries(line_id, share, open_ms)]
        return sorted(entries, key=lambda e: e.recognition_date)
    return [ScheduleEntry(line_id=line_id, period=period_label(deal.start_date),
                          recognition_date=deal.start_date, amount=share,
                          kind=ScheduleKind.POINT_IN_TIME, requires_event=False)]  # fmt: skip


def _shortfall(by_line: dict[str, list[ScheduleEntry]], pool: list[Remaining],
               deal: DealSubmission, difference: Money) -> dict[str, list[ScheduleEntry]]:  # fmt: skip
    """Nothing more for the remaining lines; `difference` is spread over the fixed-price
    lines in proportion to what each recognised, and trues up each one's latest entries."""
    fixed = {ln.line_id for ln in deal.lines
             if deal.line_recognition(ln) is not RecognitionType.TIME_AND_MATERIALS}  # fmt: skip
    result = {lid: entries for lid, entries in by_line.items() if lid in fixed}
    result.update({r.line.line_id: r.kept for r in pool})
    recognised = {lid: money_sum((e.amount for e in entries), difference.currency)
                  for lid, entries in result.items()}  # fmt: skip
    total = money_sum(recognised.values(), difference.currency)
    if -difference > total or (total.is_zero() and not difference.is_zero()):
        raise ModificationShortfall(
            f"the amended terms leave {difference} against the revenue already recognised "
            f"({total}), more than it can absorb; record a credit or correct the amendment"
        )
    cuts = allocate(difference, [m.amount for m in recognised.values()]) if not total.is_zero() \
        else [difference] * len(recognised)  # fmt: skip
    return {lid: _trued(deal, lid, result[lid], cut)
            for lid, cut in zip(recognised, cuts, strict=True)}  # fmt: skip


def _trued(deal: DealSubmission, line_id: str, entries: list[ScheduleEntry],
           difference: Money) -> list[ScheduleEntry]:  # fmt: skip
    trued = true_up_latest(entries, difference)
    return one_per_period(trued) if _ratable(deal, line_id) else trued


def _ratable(deal: DealSubmission, line_id: str) -> bool:
    line = next((ln for ln in deal.lines if ln.line_id == line_id), None)
    return line is not None and deal.line_recognition(line) is RecognitionType.RATABLE


# --- pieces every treatment uses ----------------------------------------------------------


def earned_before(old: list[ScheduleEntry], effective: date) -> list[ScheduleEntry]:
    """The entries dated before `effective`, and the days before it of the entry of its
    month (split by days, dated the day before)."""
    kept = [e for e in old if e.recognition_date < effective]
    month_of_change = next((e for e in old if e.period == period_label(effective)), None)
    if month_of_change is not None and month_of_change.recognition_date >= effective:
        first_day = max(effective.replace(day=1), _slice_start(old, month_of_change))
        earned = days_inclusive(first_day, effective - ONE_DAY)
        total_days = days_inclusive(first_day, month_of_change.recognition_date)
        if earned > 0:
            part = month_of_change.amount.times(Decimal(earned) / Decimal(total_days))
            day_before = effective - ONE_DAY
            kept.append(month_of_change.model_copy(
                update={"amount": part, "recognition_date": day_before}))  # fmt: skip
    return kept


def _slice_start(old: list[ScheduleEntry], entry: ScheduleEntry) -> date:
    """First day of the slice `entry` covers: the day after the previous entry, or its month."""
    earlier = [e.recognition_date for e in old if e.recognition_date < entry.recognition_date]
    return max(earlier) + ONE_DAY if earlier else entry.recognition_date.replace(day=1)


def spread_by_days(line_id: str, total: Money, first: date, last: date) -> list[ScheduleEntry]:
    """`total` over the calendar-month slices of first..last, by days, dated each slice's end."""
    slices = month_slices(first, last)
    if not slices:
        return []
    parts = allocate(total, [Decimal(days_inclusive(s, e)) for s, e in slices])
    return [ScheduleEntry(line_id=line_id, period=period_label(s), recognition_date=e,
                          amount=part, kind=ScheduleKind.RATABLE, requires_event=False)
            for (s, e), part in zip(slices, parts, strict=True)]  # fmt: skip


def milestone_entries(
    line_id: str, total: Money, milestones: list[Milestone]
) -> list[ScheduleEntry]:
    """`total` over `milestones` by their amounts (equally if all are zero), by due date."""
    ordered = sorted(milestones, key=lambda m: m.due_date)
    weights = [m.amount for m in ordered]
    if sum(weights) == 0:
        weights = [Decimal(1)] * len(ordered)
    parts = allocate(total, weights) if ordered else []
    return [ScheduleEntry(line_id=line_id, period=period_label(m.due_date),
                          recognition_date=m.due_date, amount=part,
                          kind=ScheduleKind.MILESTONE, milestone_id=m.milestone_id,
                          requires_event=True)
            for m, part in zip(ordered, parts, strict=True)]  # fmt: skip


def true_up_latest(kept: list[ScheduleEntry], difference: Money) -> list[ScheduleEntry]:
    """`difference` added to the latest entries, most recent first, never taking one below
    zero (the close posts it as a catch-up in the open period)."""
    result = sorted(kept, key=lambda e: e.recognition_date)
    for i in reversed(range(len(result))):
        if difference.is_zero():
            break
        amount = result[i].amount
        change = difference if difference.amount > 0 else max(difference, -amount)
        result[i] = result[i].model_copy(update={"amount": amount + change})
        difference = difference - change
    return result


def one_per_period(entries: list[ScheduleEntry]) -> list[ScheduleEntry]:
    """Entries of the same period merged (dated on the later day), in date order."""
    merged: dict[str, ScheduleEntry] = {}
    for e in sorted(entries, key=lambda x: x.recognition_date):
        if e.period in merged:
            e = e.model_copy(update={"amount": merged[e.period].amount + e.amount})
        merged[e.period] = e
    return list(merged.values())
