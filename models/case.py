"""Exception cases (SPEC §3): a failed check becomes a case with an owner, an SLA and an
escalation chain, and a person resolves it by approving, amending, overriding or rejecting,
always with a reason code.

`resolution_problems` and `signoff_problems` are the one rule book for what a person may do;
update validators and signal handlers apply them alike, so every path (Web UI, CLI, API)
refuses the same things with the same words.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.business_time import BusinessCalendar
from models.deal import DealSubmission
from models.routing import CaseRouting, Contact
from models.rules import Role

# Checks whose case holds a write back: only amend (re-checked) or reject resolve them. A
# contract that contradicts the stored one cannot be booked, and an invoice cannot be issued
# without the PO its customer requires, an issuing entity or a tax rate, whoever approves.
WRITE_SUSPENDED = frozenset({
    "integrity.contract_mismatch",
    "structural.po_present",
    "structural.billing_entity_known",
    "structural.tax_jurisdiction_known",
})  # fmt: skip


class ResolutionAction(StrEnum):
    APPROVE = "approve"
    AMEND = "amend"
    OVERRIDE = "override"
    REJECT = "reject"


class CaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


class Resolution(BaseModel):
    """What an operator sends to resolve a case (Web UI, CLI or API: the same payload).

    The actor's roles come from the role directory, never from the payload.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: ResolutionAction
    actor: str = Field(min_length=1, description="Person id from rules/directory.yaml")
    reason_code: str = Field(min_length=1, description="A code from rules/reason_codes.yaml")
    note: str = ""
    amendments: dict[str, Any] = Field(
        default_factory=dict, description="amend: corrected deal fields, e.g. {'po_number': 'PO-1'}"
    )
    approver: str | None = Field(default=None, description="override: who approved it")
    override_expires_on: date | None = Field(default=None, description="override: its expiry")


class SignOff(BaseModel):
    """The retrospective QA sign-off of an override."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(min_length=1, description="Person id holding the sign-off role")
    reason_code: str = Field(min_length=1)
    note: str = ""


class CaseInput(BaseModel):
    case_id: str
    subject: str = Field(description="What the case is about, e.g. deal:hs-deal-90401")
    deal: DealSubmission | None = Field(default=None, description="Set for QA cases on a deal")
    check_id: str
    owner_role: Role
    messages: list[str]
    evidence: dict[str, str] = Field(default_factory=dict)
    rules_version: str


class TimelineEntry(BaseModel):
    at: datetime
    what: str
    who: str = "system"


class Refusal(BaseModel):
    at: datetime
    actor: str
    action: str
    why: list[str]


class CaseState(BaseModel):
    """What the `state` query of a case returns: where it stands and its full timeline."""

    case_id: str
    subject: str
    check_id: str
    owner_role: Role
    level: int = Field(default=0, description="0 = the check's owner; 1.. = escalation levels")
    status: CaseStatus
    messages: list[str]
    evidence: dict[str, str]
    opened_at: datetime
    sla_deadline: datetime | None = None
    breached: bool = Field(default=False, description="Past the SLA of the chain's last level")
    resolution: Resolution | None = None
    resolved_at: datetime | None = None
    refusals: list[Refusal] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    rules_version: str


class CaseOutcome(BaseModel):
    case_id: str
    check_id: str
    status: CaseStatus
    resolution: Resolution | None = None
    amended_deal: DealSubmission | None = None


class OverrideInput(BaseModel):
    """An override waiting for its retrospective sign-off (`signoff-<case id>`)."""

    case_id: str
    subject: str
    check_id: str
    requester: str
    approver: str
    reason_code: str
    expires_on: date
    granted_at: datetime
    signoff_due: datetime
    signoff_role: Role
    signoff_people: list[Contact]
    signoff_calendar: BusinessCalendar
    roles_of: dict[str, list[Role]]
    reason_codes: dict[str, str]
    rules_version: str


class OverrideState(BaseModel):
    case_id: str
    requester: str
    approver: str
    expires_on: date
    signoff_due: datetime
    signed_off: SignOff | None = None
    signed_off_at: datetime | None = None
    audit_flagged: bool = False
    expired: bool = False
    refusals: list[Refusal] = Field(default_factory=list)


def amended_deal(deal: DealSubmission, amendments: dict[str, Any]) -> DealSubmission:
    """The deal with the corrected fields applied (top-level fields replace whole)."""
    return DealSubmission.model_validate({**deal.model_dump(mode="json"), **amendments})


def _amendment_problems(deal: DealSubmission | None, amendments: dict[str, Any]) -> list[str]:
    if deal is None:
        return ["amend applies to cases on a deal; this case has no deal to amend"]
    if not amendments:
        return ["amend needs 'amendments': the corrected deal fields"]
    unknown = sorted(set(amendments) - set(DealSubmission.model_fields))
    if unknown:
        return [f"amendments: unknown deal field(s) {', '.join(unknown)}"]
    if "deal_id" in amendments and amendments["deal_id"] != deal.deal_id:
        return ["amendments: deal_id cannot change"]
    try:
        amended_deal(deal, amendments)
    except ValidationError as exc:
        return [
            f"amendments.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
    return []


def _override_problems(routing: CaseRouting, r: Resolution, today: date) -> list[str]:
    problems: list[str] = []
    chain_roles = {level.role for level in routing.levels}
    if not r.approver:
        problems.append("override needs an approver")
    elif r.approver == r.actor:
        problems.append(
            f"override approver must not be the requester ({r.actor}): segregation of duties"
        )
    elif not chain_roles & set(routing.roles_of.get(r.approver, [])):
        roles = ", ".join(sorted(role.value for role in chain_roles))
        problems.append(f"approver {r.approver} holds none of this case's roles ({roles})")
    if r.override_expires_on is None:
        problems.append("override needs override_expires_on (overrides expire)")
    elif r.override_expires_on <= today:
        problems.append(f"override_expires_on {r.override_expires_on} is not after today ({today})")
    elif r.override_expires_on > today + timedelta(days=routing.max_expiry_days):
        problems.append(
            f"override_expires_on {r.override_expires_on} is more than "
            f"{routing.max_expiry_days} days away"
        )
    return problems


def resolution_problems(
    case: CaseState,
    routing: CaseRouting,
    deal: DealSubmission | None,
    r: Resolution,
    today: date,
) -> list[str]:
    """Why `r` cannot resolve `case` at its current level (empty when it can)."""
    problems: list[str] = []
    if case.status is not CaseStatus.OPEN:
        problems.append(f"case {case.case_id} is {case.status.value}, not open")
    if r.actor not in routing.roles_of:
        problems.append(f"{r.actor} is not in the role directory")
    elif not routing.holds(r.actor, case.owner_role):
        held = ", ".join(role.value for role in routing.roles_of[r.actor])
        problems.append(
            f"{r.actor} ({held}) does not hold {case.owner_role.value}, which owns case "
            f"{case.case_id} at level {case.level}"
        )
    if r.reason_code not in routing.reason_codes:
        problems.append(
            f"reason_code {r.reason_code!r} is not one of: {', '.join(sorted(routing.reason_codes))}"
        )
    if r.action is ResolutionAction.AMEND:
        problems += _amendment_problems(deal, r.amendments)
    if r.action is ResolutionAction.OVERRIDE:
        problems += _override_problems(routing, r, today)
    if case.check_id in WRITE_SUSPENDED and r.action in (
        ResolutionAction.APPROVE,
        ResolutionAction.OVERRIDE,
    ):
        problems.append(
            f"{r.action.value} cannot resolve {case.check_id}: nothing can be written until the "
            "deal is amended (and re-checked), or rejected"
        )
    return problems


def signoff_problems(override: OverrideState, data: OverrideInput, s: SignOff) -> list[str]:
    """Why `s` cannot sign `override` off (empty when it can)."""
    problems: list[str] = []
    if override.signed_off is not None:
        problems.append(f"override on {override.case_id} is already signed off")
    if data.signoff_role not in data.roles_of.get(s.actor, []):
        problems.append(f"{s.actor} does not hold {data.signoff_role.value}, the sign-off role")
    if s.actor in (data.requester, data.approver):
        problems.append(f"{s.actor} requested or approved this override and cannot sign it off")
    if s.reason_code not in data.reason_codes:
        problems.append(
            f"reason_code {s.reason_code!r} is not one of: {', '.join(sorted(data.reason_codes))}"
        )
    return problems
