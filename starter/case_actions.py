"""What operators do to cases outside the Web UI (CLI and API share it): resolve through the
case workflow's validated update (a refusal is audited here, since a refused update never
enters the workflow's history), and list the open cases, breached first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError

from activities.db import insert_audit_event
from models.audit import AuditEvent
from models.case import CaseState, Resolution
from workflows.exception_case import ExceptionCaseWorkflow


class CaseRefused(Exception):
    """The case workflow's validator refused the resolution; `why` says what to fix."""

    def __init__(self, case_id: str, why: str) -> None:
        super().__init__(f"case {case_id} refused the resolution: {why}")
        self.why = why


async def audit_refusal(pool: asyncpg.Pool, case_id: str, r: Resolution, why: str) -> None:
    """Record a refused update (it never enters the workflow's history) under the rules
    version the case runs under."""
    row = await pool.fetchrow(
        "SELECT subject, rules_version FROM exception_case WHERE case_id = $1", case_id
    )
    async with pool.acquire() as conn:
        await insert_audit_event(conn, AuditEvent(
            key=f"{case_id}:refused:{datetime.now(UTC).isoformat()}:{r.actor}",
            actor=r.actor, action="case.refused", subject=row["subject"] if row else case_id,
            after={"case_id": case_id, "action": r.action.value, "why": why, "note": r.note},
            reason_code=r.reason_code, rules_version=row["rules_version"] if row else "unknown",
        ))  # fmt: skip


async def resolve_case(
    client: Client, pool: asyncpg.Pool, case_id: str, resolution: Resolution
) -> CaseState:
    handle = client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
    try:
        return await handle.execute_update(ExceptionCaseWorkflow.resolve, resolution)
    except WorkflowUpdateFailedError as exc:
        why = str(exc.cause.message if hasattr(exc.cause, "message") else exc.cause)
        await audit_refusal(pool, case_id, resolution, why)
        raise CaseRefused(case_id, why) from exc


@dataclass(frozen=True)
class OpenCaseRow:
    case_id: str
    subject: str
    check_id: str
    owner_role: str
    level: int
    opened_at: datetime
    sla_deadline: datetime | None
    breached: bool
    audit_flagged: bool


async def open_cases(pool: asyncpg.Pool, owner_role: str | None = None) -> list[OpenCaseRow]:
    """Open cases, breached first, then by deadline (soonest first), then oldest."""
    rows = await pool.fetch(
        """SELECT case_id, subject, check_id, owner_role, level, opened_at, sla_deadline,
                  breached, audit_flagged
           FROM exception_case WHERE status = 'open' AND ($1::text IS NULL OR owner_role = $1)
           ORDER BY breached DESC, sla_deadline ASC NULLS LAST, opened_at ASC""",
        owner_role,
    )
    return [OpenCaseRow(**dict(r)) for r in rows]
