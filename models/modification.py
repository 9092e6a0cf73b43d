"""The recognition schedule after a contract modification (ASC 606-10-25-10..13).

The schedule is rewritten as a new version; the month-end close posts the difference between
what the new version makes due and what was recognised, so the treatment lives entirely in
how the new version is written:

- **prospective** (distinct services still to come): each changed line keeps what its old
  schedule had earned before the effective date (the month of the change split by days),
  and the rest of its consideration (old allocation plus the change in what it bills) is
  spread by days from the effective date to its last day of service. Nothing already earned
  moves. The added or removed consideration belongs to the line it changes.
- **cumulative catch-up** (a partly satisfied obligation re-scoped): the line's allocation
  changes by the change in its price and is split over its milestones after the change as if
  it had always been so; milestones already accepted are trued up at the next close.
- a cancellation drops milestones not yet delivered and expected T&M after its date.

Every line's entries sum to its new allocation to the cent (`models.money.allocate`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from models.amendment import Amendment, AmendmentKind, Treatment
from models.calendar_math import ONE_DAY, days_inclusive, month_slices, period_label
from models.contract_terms import ContractTerms, is_recurring
from models.money import Money, allocate, money_sum
from models.recognition import ScheduleEntry, ScheduleKind


def modified_schedule(
    entries: list[ScheduleEntry], before: ContractTerms, after: ContractTerms,
    amendment: Amendment, delivered: frozenset[str],
) -> list[ScheduleEntry]:  # fmt: skip
    """The next schedule version, by line, in line order of the amended terms."""
    by_line: dict[str, list[ScheduleEntry]] = {}
    for entry in entries:
        by_line.setdefault(entry.line_id, []).append(entry)
    line_ids = list(dict.fromkeys([*by_line, *(ln.line_id for ln in after.current.lines)]))
    result: list[ScheduleEntry] = []
    for line_id in line_ids:
        result += _line_entries(line_id, by_line.get(line_id, []), before, after, amendment,
                                delivered)  # fmt: skip
    return result


def _line_entries(
    line_id: str, old: list[ScheduleEntry], before: ContractTerms, after: ContractTerms,
    a: Amendment, delivered: frozenset[str],
) -> list[ScheduleEntry]:  # fmt: skip
    currency = after.currency
    line = next((ln for ln in after.current.lines if ln.line_id == line_id), None)
    old_total = money_sum((e.amount for e in old), currency)
    recurring_now = line is not None and is_recurring(after.current, line)
    if recurring_now or _is_recurring_before(before, line_id):
        change = after.line_consideration(line_id) - before.line_consideration(line_id)
        if change.is_zero() and a.kind is not AmendmentKind.CANCELLATION:
            return old
        return _prospective(line_id, old, old_total + change, a.effective_date, after.end)
    if a.kind is AmendmentKind.CANCELLATION:
        return [e for e in old if _survives_cancellation(e, a.effective_date, delivered)]
    if a.treatment is Treatment.CUMULATIVE_CATCH_UP and a.line_id == line_id and line:
        before_line = next(ln for ln in before.current.lines if ln.line_id == line_id)
        price_change = line.net_total(currency) - before_line.net_total(currency)
        return _milestones_catch_up(line_id, old_total + price_change, after)
    return old


def _is_recurring_before(terms: ContractTerms, line_id: str) -> bool:
    line = next((ln for ln in terms.current.lines if ln.line_id == line_id), None)
    return line is not None and is_recurring(terms.current, line)


def _survives_cancellation(entry: ScheduleEntry, cancelled_on: date,
                           delivered: frozenset[str]) -> bool:  # fmt: skip
    if entry.kind is ScheduleKind.MILESTONE:
        return entry.milestone_id in delivered
    if entry.kind is ScheduleKind.TM:
        return entry.recognition_date < cancelled_on
    return True


def _prospective(
    line_id: str, old: list[ScheduleEntry], new_total: Money, effective: date, last_day: date
) -> list[ScheduleEntry]:
    """Keep what was earned before `effective`; spread the rest over [effective, last_day]."""
    currency = new_total.currency
    kept = [e for e in old if e.recognition_date < effective]
    month_of_change = next((e for e in old if e.period == period_label(effective)), None)
    if month_of_change is not None and month_of_change.recognition_date >= effective:
        first_day = max(effective.replace(day=1), _slice_start(old, month_of_change))
        earned = days_inclusive(first_day, effective - ONE_DAY)
        total_days = days_inclusive(first_day, month_of_change.recognition_date)
        if earned:
            part = month_of_change.amount.times(Decimal(earned) / Decimal(total_days))
            kept.append(month_of_change.model_copy(update={"amount": part,
                                                           "recognition_date": effective - ONE_DAY}))  # fmt: skip
    remaining = new_total - money_sum((e.amount for e in kept), currency)
    slices = month_slices(effective, last_day)
    if not slices or remaining.amount < 0:
        return _one_per_period(_true_up_latest(kept, remaining))
    parts = allocate(remaining, [Decimal(days_inclusive(s, e)) for s, e in slices])
    spread = [ScheduleEntry(line_id=line_id, period=period_label(s), recognition_date=e,
                            amount=part, kind=ScheduleKind.RATABLE, requires_event=False)
              for (s, e), part in zip(slices, parts, strict=True)]  # fmt: skip
    return _one_per_period([*kept, *spread])


def _true_up_latest(kept: list[ScheduleEntry], difference: Money) -> list[ScheduleEntry]:
    """Less (or more) to earn than was earned at the old terms, and no days left to spread it
    on: the difference trues up the latest earned entries, most recent first, never below
    zero (the close posts it as a catch-up in the open period)."""
    result = list(kept)
    for i in reversed(range(len(result))):
        if difference.is_zero():
            break
        amount = result[i].amount
        change = difference if difference.amount > 0 else max(difference, -amount)
        result[i] = result[i].model_copy(update={"amount": amount + change})
        difference = difference - change
    return result


def _slice_start(old: list[ScheduleEntry], entry: ScheduleEntry) -> date:
    """First day of the slice `entry` covers: the day after the previous entry, or its month."""
    earlier = [e.recognition_date for e in old if e.recognition_date < entry.recognition_date]
    return max(earlier) + ONE_DAY if earlier else entry.recognition_date.replace(day=1)


def _one_per_period(entries: list[ScheduleEntry]) -> list[ScheduleEntry]:
    """Entries of the same period merged (dated on the later day), in date order."""
    merged: dict[str, ScheduleEntry] = {}
    for e in sorted(entries, key=lambda x: x.recognition_date):
        if e.period in merged:
            first = merged[e.period]
            e = e.model_copy(update={"amount": first.amount + e.amount})
        merged[e.period] = e
    return list(merged.values())


def _milestones_catch_up(line_id: str, total: Money, after: ContractTerms) -> list[ScheduleEntry]:
    milestones = sorted((m for m in after.current.milestones if m.line_id == line_id),
                        key=lambda m: m.due_date)  # fmt: skip
    weights = [m.amount for m in milestones]
    if sum(weights) == 0:
        weights = [Decimal(1)] * len(milestones)
    parts = allocate(total, weights)
    return [ScheduleEntry(line_id=line_id, period=period_label(m.due_date),
                          recognition_date=m.due_date, amount=part,
                          kind=ScheduleKind.MILESTONE, milestone_id=m.milestone_id,
                          requires_event=True)
            for m, part in zip(milestones, parts, strict=True)]  # fmt: skip


class CreditTooLarge(ValueError):
    """A credit larger than the revenue its contract still has to recognise."""


def credited_schedule(
    entries: list[ScheduleEntry], credit: Money, granted_on: date
) -> list[ScheduleEntry]:
    """The schedule once a credit (a price concession: less consideration, ASC 606-10-32-11)
    is granted: the revenue not yet earned on `granted_on` is reduced by the credit, in
    proportion to each entry, prospectively. Earned entries and event-driven ones stay."""
    open_entries = [i for i, e in enumerate(entries)
                    if not e.requires_event and e.recognition_date >= granted_on]  # fmt: skip
    remaining = money_sum((entries[i].amount for i in open_entries), credit.currency)
    if credit > remaining:
        raise CreditTooLarge(
            f"amount: {credit} is more than the revenue still to be recognised ({remaining})"
        )
    cuts = allocate(credit, [entries[i].amount.amount for i in open_entries])
    result = list(entries)
    for i, cut in zip(open_entries, cuts, strict=True):
        result[i] = entries[i].model_copy(update={"amount": entries[i].amount - cut})
    return result
