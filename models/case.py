"""Exception cases (SPEC §3): a failed check becomes a case with an owner, and a person
resolves it by approving, amending, overriding or rejecting, always with a reason code.

`resolution_problems` is the one rule book for a resolution; the update validator and the
signal handler of the case workflow both apply it, so every path refuses the same things.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.deal import DealSubmission
from models.rules import Role


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
    """What an operator sends to resolve a case (Web UI, CLI or API: same payload)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: ResolutionAction
    actor: str = Field(min_length=1, description="Who resolves (the authenticated caller)")
    actor_role: Role = Field(description="The role the actor acts in")
    reason_code: str = Field(min_length=1, description="A code from rules/reason_codes.yaml")
    note: str = ""
    amendments: dict[str, Any] = Field(
        default_factory=dict, description="amend: corrected deal fields, e.g. {'po_number': 'PO-1'}"
    )
    approver: str | None = Field(default=None, description="override: who approved it")
    override_expires_on: date | None = Field(default=None, description="override: its expiry")


class CaseInput(BaseModel):
    case_id: str
    deal: DealSubmission
    check_id: str
    owner_role: Role
    messages: list[str]
    evidence: dict[str, str] = Field(default_factory=dict)
    rules_version: str
    reason_codes: dict[str, str]


class Refusal(BaseModel):
    at: datetime
    actor: str
    action: str
    why: list[str]


class CaseState(BaseModel):
    """What the `state` query of a case returns."""

    case_id: str
    subject: str
    check_id: str
    owner_role: Role
    status: CaseStatus
    messages: list[str]
    evidence: dict[str, str]
    opened_at: datetime
    resolution: Resolution | None = None
    resolved_at: datetime | None = None
    refusals: list[Refusal] = Field(default_factory=list)
    rules_version: str


class CaseOutcome(BaseModel):
    case_id: str
    check_id: str
    status: CaseStatus
    resolution: Resolution | None = None
    amended_deal: DealSubmission | None = None


def amended_deal(deal: DealSubmission, amendments: dict[str, Any]) -> DealSubmission:
    """The deal with the corrected fields applied (top-level fields replace whole)."""
    return DealSubmission.model_validate({**deal.model_dump(mode="json"), **amendments})


def _amendment_problems(deal: DealSubmission, amendments: dict[str, Any]) -> list[str]:
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


def resolution_problems(
    case: CaseState, deal: DealSubmission, reason_codes: dict[str, str], r: Resolution
) -> list[str]:
    """Why `r` cannot resolve `case` (empty when it can)."""
    problems: list[str] = []
    if case.status is not CaseStatus.OPEN:
        problems.append(f"case {case.case_id} is {case.status.value}, not open")
    if r.actor_role is not case.owner_role:
        problems.append(
            f"{r.actor} acts as {r.actor_role.value}; case {case.case_id} is owned by {case.owner_role.value}"
        )
    if r.reason_code not in reason_codes:
        problems.append(
            f"reason_code {r.reason_code!r} is not one of: {', '.join(sorted(reason_codes))}"
        )
    if r.action is ResolutionAction.AMEND:
        problems += _amendment_problems(deal, r.amendments)
    if r.action is ResolutionAction.OVERRIDE:
        if not r.approver:
            problems.append("override needs an approver")
        elif r.approver == r.actor:
            problems.append(
                f"override approver must not be the requester ({r.actor}): segregation of duties"
            )
    return problems
