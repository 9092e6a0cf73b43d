"""What people are told about a case: plain text a person can act on without opening
anything else first (what failed, why, by when, how to resolve)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from models.business_time import BusinessCalendar
from models.case import CaseState, OverrideState
from models.routing import CaseLevel


class Notice(BaseModel):
    subject: str
    body: str
    chat_text: str


def _local(at: datetime | None, calendar: BusinessCalendar) -> str:
    if at is None:
        return "no deadline"
    return at.astimezone(ZoneInfo(calendar.timezone)).strftime(
        f"%a %d %b %Y %H:%M ({calendar.timezone})"
    )


def _how_to_resolve(case_id: str) -> str:
    return (
        "Resolve it in the Temporal Web UI (open the workflow, 'Send an Update', handler "
        f"'resolve'), with `revops case resolve {case_id} ...`, or through the API "
        f"(POST /cases/{case_id}/resolve). Every resolution needs a reason code."
    )


def case_opened(case: CaseState, level: CaseLevel) -> Notice:
    why = "\n".join(f"  - {m}" for m in case.messages) or "  - (no message)"
    deadline = _local(case.sla_deadline, level.calendar)
    return Notice(
        subject=f"[revops] {case.check_id} failed on {case.subject}: yours by {deadline}",
        body=(
            f"Case {case.case_id} is waiting for {level.role.value}.\n\n"
            f"Check {case.check_id} failed on {case.subject}:\n{why}\n\n"
            f"SLA: {level.sla_business_hours} business hours, due {deadline}. If nobody "
            "acts by then it escalates to the next level.\n\n" + _how_to_resolve(case.case_id)
        ),
        chat_text=f"New case {case.case_id} for {level.role.value}: {case.check_id} "
        f"failed on {case.subject}; due {deadline}",
    )


def case_escalated(case: CaseState, previous: CaseLevel, level: CaseLevel) -> Notice:
    why = "\n".join(f"  - {m}" for m in case.messages) or "  - (no message)"
    deadline = _local(case.sla_deadline, level.calendar)
    return Notice(
        subject=f"[revops] escalated to {level.role.value}: {case.check_id} on {case.subject}",
        body=(
            f"Case {case.case_id} was not resolved by {previous.role.value} within "
            f"{previous.sla_business_hours} business hours and is now owned by "
            f"{level.role.value} (escalation level {level.level}).\n\n"
            f"Check {case.check_id} failed on {case.subject}:\n{why}\n\n"
            f"New deadline: {deadline} ({level.sla_business_hours} business hours).\n\n"
            + _how_to_resolve(case.case_id)
        ),
        chat_text=f"Case {case.case_id} escalated from {previous.role.value} to "
        f"{level.role.value}; due {deadline}",
    )


def case_breached(case: CaseState, level: CaseLevel) -> Notice:
    return Notice(
        subject=f"[revops] SLA breached: {case.check_id} on {case.subject}",
        body=(
            f"Case {case.case_id} passed the SLA of the last level of its escalation chain "
            f"({level.role.value}, {level.sla_business_hours} business hours). It stays open, "
            "flagged as breached, at the top of the operator views.\n\n"
            + _how_to_resolve(case.case_id)
        ),
        chat_text=f"SLA breached on case {case.case_id} ({level.role.value})",
    )


def signoff_requested(override: OverrideState, check_id: str, calendar: BusinessCalendar) -> Notice:
    due = _local(override.signoff_due, calendar)
    return Notice(
        subject=f"[revops] override to sign off: {check_id} on case {override.case_id}",
        body=(
            f"{override.requester} overrode {check_id} on case {override.case_id}, approved by "
            f"{override.approver}, until {override.expires_on}.\n\n"
            f"A retrospective QA sign-off is due by {due}; without it the override is flagged "
            f"for audit. Sign off with the update 'sign_off' on workflow "
            f"signoff-{override.case_id} (or `revops case signoff {override.case_id} ...`)."
        ),
        chat_text=f"Override on {override.case_id} needs QA sign-off by {due}",
    )


def override_flagged(override: OverrideState, check_id: str) -> Notice:
    return Notice(
        subject=f"[revops] AUDIT FLAG: override on case {override.case_id} not signed off",
        body=(
            f"The override of {check_id} on case {override.case_id} (requested by "
            f"{override.requester}, approved by {override.approver}) received no QA sign-off "
            f"by {override.signoff_due.isoformat()}. It is flagged for audit; a late sign-off "
            "is still recorded, but the flag stays in the audit trail."
        ),
        chat_text=f"Audit flag: override on {override.case_id} not signed off in time",
    )
