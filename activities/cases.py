"""The operators' record of exception cases, and the routing a case opens with.

The case workflow is the source of truth; these rows are the list `revops cases` reads and
sorts (breached first, then by deadline), and every change writes an audit event.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import DbConnection, insert_audit_event
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.routing import CaseRouting, OperatingRules


class OpenCaseInput(BaseModel):
    case_id: str
    subject: str
    check_id: str
    owner_role: str
    messages: list[str]
    evidence: dict[str, str] = Field(default_factory=dict)
    rules_version: str


class CaseEventInput(BaseModel):
    """One change of a case: the row as it now stands, and what happened, by whom, why."""

    case_id: str
    subject: str
    check_id: str
    event: str = Field(description="opened, escalated, breached, resolved, withdrawn, refused")
    event_no: int = Field(description="The case's own event counter (idempotency key part)")
    status: str
    level: int
    owner_role: str
    messages: list[str]
    sla_deadline: datetime | None
    breached: bool
    actor: str = SYSTEM_ACTOR
    reason_code: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    resolution: dict[str, Any] | None = None
    rules_version: str


class OverrideEventInput(BaseModel):
    case_id: str
    subject: str
    event: str = Field(description="granted, signed_off, audit_flagged, expired")
    actor: str = SYSTEM_ACTOR
    reason_code: str | None = None
    expires_on: date | None = None
    signoff_due: datetime | None = None
    signed_off_by: str | None = None
    signed_off_at: datetime | None = None
    audit_flagged: bool = False
    detail: dict[str, Any] = Field(default_factory=dict)
    rules_version: str


async def stored_operating_rules(conn: DbConnection, version: str) -> OperatingRules | None:
    document = await conn.fetchval("SELECT operating FROM rule_set WHERE version = $1", version)
    return None if document is None else OperatingRules.model_validate(document)


class CaseActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def open_case(self, data: OpenCaseInput) -> CaseRouting:
        """Record the case as open and return its routing under the deal's rules version."""
        async with self._pool.acquire() as conn, conn.transaction():
            rules = await stored_operating_rules(conn, data.rules_version)
            if rules is None:
                raise ApplicationError(
                    f"rules version {data.rules_version} is not stored in rule_set: start the "
                    "worker or API once with those rules (they store their rule set at start)",
                    type="RulesVersionUnknown", non_retryable=True,
                )  # fmt: skip
            routing = rules.routing_for(data.check_id)
            await conn.execute(
                """INSERT INTO exception_case (case_id, subject, check_id, owner_role, status,
                       messages, rules_version, level, breached)
                   VALUES ($1, $2, $3, $4, 'open', $5, $6, 0, false)
                   ON CONFLICT (case_id) DO UPDATE SET status = 'open', level = 0,
                       owner_role = EXCLUDED.owner_role, messages = EXCLUDED.messages,
                       rules_version = EXCLUDED.rules_version, breached = false,
                       resolution = NULL, resolved_at = NULL, sla_deadline = NULL,
                       opened_at = CASE WHEN exception_case.status <> 'open' THEN now()
                                        ELSE exception_case.opened_at END""",
                data.case_id, data.subject, data.check_id, data.owner_role, data.messages,
                data.rules_version,
            )  # fmt: skip
            await insert_audit_event(conn, AuditEvent(
                key=f"{data.case_id}:{activity.info().workflow_run_id}:opened",
                actor=SYSTEM_ACTOR, action="case.opened", subject=data.subject,
                after={"case_id": data.case_id, "check_id": data.check_id,
                       "owner_role": data.owner_role, "messages": data.messages,
                       "evidence": data.evidence},
                rules_version=data.rules_version))  # fmt: skip
        return routing

    @activity.defn
    async def record_case_event(self, data: CaseEventInput) -> None:
        """Bring the case's row up to date and audit what happened, once per event."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE exception_case SET status = $2, level = $3, owner_role = $4,
                       messages = $5, sla_deadline = $6, breached = $7,
                       resolution = coalesce($8, resolution),
                       resolved_at = CASE WHEN $2 = 'open' THEN NULL
                                          ELSE coalesce(resolved_at, now()) END
                   WHERE case_id = $1""",
                data.case_id, data.status, data.level, data.owner_role, data.messages,
                data.sla_deadline, data.breached, data.resolution,
            )  # fmt: skip
            await insert_audit_event(conn, AuditEvent(
                key=f"{data.case_id}:{activity.info().workflow_run_id}:{data.event_no}:{data.event}",
                actor=data.actor, action=f"case.{data.event}", subject=data.subject,
                after={"case_id": data.case_id, "check_id": data.check_id, "status": data.status,
                       "level": data.level, "owner_role": data.owner_role,
                       "sla_deadline": data.sla_deadline.isoformat() if data.sla_deadline else None,
                       "breached": data.breached, **data.detail},
                reason_code=data.reason_code, rules_version=data.rules_version))  # fmt: skip

    @activity.defn
    async def record_override_event(self, data: OverrideEventInput) -> None:
        """The override's trail on the case row (expiry, sign-off, audit flag), audited."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE exception_case SET
                       override_expires_on = coalesce($2, override_expires_on),
                       signoff_due = coalesce($3, signoff_due),
                       signed_off_by = coalesce($4, signed_off_by),
                       signed_off_at = coalesce($5, signed_off_at),
                       audit_flagged = audit_flagged OR $6
                   WHERE case_id = $1""",
                data.case_id, data.expires_on, data.signoff_due, data.signed_off_by,
                data.signed_off_at, data.audit_flagged,
            )  # fmt: skip
            await insert_audit_event(conn, AuditEvent(
                key=f"{data.case_id}:{activity.info().workflow_run_id}:override.{data.event}",
                actor=data.actor, action=f"override.{data.event}", subject=data.subject,
                after={"case_id": data.case_id,
                       "expires_on": data.expires_on.isoformat() if data.expires_on else None,
                       "signoff_due": data.signoff_due.isoformat() if data.signoff_due else None,
                       "signed_off_by": data.signed_off_by, "audit_flagged": data.audit_flagged,
                       **data.detail},
                reason_code=data.reason_code, rules_version=data.rules_version))  # fmt: skip
