"""The recognition schedule after a contract modification (ASC 606-10-25-10..13).

The schedule is rewritten as a new version; the month-end close posts the difference between
what the new version makes due and what was recognised, so the treatment
(`models.amendment.treatment_of`) lives entirely in how the new version is written. What was
recognised before the effective date never moves (save the shortfall case of 25-13(a)):

- **separate contract** (25-12): every existing entry stays. The added units' consideration
  (what the amended terms bring in for the line, less what they brought in before) is
  recognised on its own: by day from the effective date to the last day of service for
  seats or a module, over the new line's milestones for added deliverables.
- **prospective** (25-13(a)): the contract is treated as terminated and a new one made; the
  consideration not yet recognised plus the change is reallocated over every remaining
  obligation by relative SSP (`models.reallocation`).
- **cumulative catch-up** (25-13(b), a scope change): the line's allocation changes by the
  change in its price and is split over its milestones after the change as if it had always
  been so; milestones already accepted are trued up at the next close.
- a **cancellation** ends every recurring line: each keeps what it earned before the date and
  the rest of what it now bills is spread up to its last day of service (or, if less is
  left than was earned, the latest earned entries are trued up); milestones not yet delivered
  and expected T&M after the date are dropped.

Every line's entries sum to its new allocation to the cent (`models.money.allocate`), and the
version sums to the one before plus the change in what the contract brings in.
"""

from __future__ import annotations

from datetime import date

from models.amendment import Amendment, AmendmentKind, Treatment, treatment_of
from models.contract_terms import ContractTerms, is_recurring
from models.deal import RecognitionType
from models.money import Money, allocate, money_sum
from models.reallocation import (
    consideration_of,
    earned_before,
    milestone_entries,
    one_per_period,
    reallocated,
    spread_by_days,
    true_up_latest,
)
from models.recognition import ScheduleEntry, ScheduleKind


def modified_schedule(
    entries: list[ScheduleEntry], before: ContractTerms, after: ContractTerms,
    amendment: Amendment, delivered: frozenset[str],
) -> list[ScheduleEntry]:  # fmt: skip
    """The next schedule version, by line, in line order of the amended terms. Raises
    `ModificationShortfall` when the amended terms bring in less than was recognised and
    the recognised entries cannot absorb it."""
    by_line: dict[str, list[ScheduleEntry]] = {}
    for entry in entries:
        by_line.setdefault(entry.line_id, []).append(entry)
    line_ids = list(dict.fromkeys([*by_line, *(ln.line_id for ln in after.current.lines)]))
    changed = _rewritten(by_line, before, after, amendment, delivered)
    return [e for line_id in line_ids for e in changed.get(line_id, by_line.get(line_id, []))]


def _rewritten(
    by_line: dict[str, list[ScheduleEntry]], before: ContractTerms, after: ContractTerms,
    a: Amendment, delivered: frozenset[str],
) -> dict[str, list[ScheduleEntry]]:  # fmt: skip
    if a.kind is AmendmentKind.CANCELLATION:
        return {line_id: _cancelled(line_id, old, before, after, a.effective_date, delivered)
                for line_id, old in by_line.items()}  # fmt: skip
    treatment = treatment_of(before, a)
    if treatment is Treatment.CUMULATIVE_CATCH_UP:
        return _catch_up(by_line, before, after, a)
    if treatment is Treatment.SEPARATE_CONTRACT:
        return _separate_contract(by_line, before, after, a)
    return reallocated(by_line, before, after, a.effective_date, delivered)


def _separate_contract(
    by_line: dict[str, list[ScheduleEntry]], before: ContractTerms, after: ContractTerms,
    a: Amendment,
) -> dict[str, list[ScheduleEntry]]:  # fmt: skip
    line_id = a.new_line.line_id if a.new_line else a.line_id or ""
    line = next(ln for ln in after.current.lines if ln.line_id == line_id)
    added = consideration_of(after, line_id) - consideration_of(before, line_id)
    old = by_line.get(line_id, [])
    if after.current.line_recognition(line) is RecognitionType.MILESTONE:
        mine = [m for m in a.milestones or [] if m.line_id == line_id]
        return {line_id: [*old, *milestone_entries(line_id, added, mine)]}
    return {line_id: one_per_period([*old, *spread_by_days(line_id, added, a.effective_date,
                                                            after.end)])}  # fmt: skip


def _catch_up(
    by_line: dict[str, list[ScheduleEntry]], before: ContractTerms, after: ContractTerms,
    a: Amendment,
) -> dict[str, list[ScheduleEntry]]:  # fmt: skip
    line = next(ln for ln in after.current.lines if ln.line_id == a.line_id)
    before_line = next(ln for ln in before.current.lines if ln.line_id == a.line_id)
    currency = after.currency
    old_total = money_sum((e.amount for e in by_line.get(line.line_id, [])), currency)
    total = old_total + line.net_total(currency) - before_line.net_total(currency)
    milestones = [m for m in after.current.milestones if m.line_id == line.line_id]
    return {line.line_id: milestone_entries(line.line_id, total, milestones)}


def _cancelled(
    line_id: str, old: list[ScheduleEntry], before: ContractTerms, after: ContractTerms,
    cancelled_on: date, delivered: frozenset[str],
) -> list[ScheduleEntry]:  # fmt: skip
    line = next((ln for ln in before.current.lines if ln.line_id == line_id), None)
    if line is not None and is_recurring(before.current, line):
        change = after.line_consideration(line_id) - before.line_consideration(line_id)
        old_total = money_sum((e.amount for e in old), after.currency)
        return _prospective(line_id, old, old_total + change, cancelled_on, after.end)
    return [e for e in old if _survives_cancellation(e, cancelled_on, delivered)]


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
    kept = earned_before(old, effective)
    remaining = new_total - money_sum((e.amount for e in kept), new_total.currency)
    spread = spread_by_days(line_id, remaining, effective, last_day)
    if not spread or remaining.amount < 0:
        return one_per_period(true_up_latest(kept, remaining))
    return one_per_period([*kept, *spread])


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
