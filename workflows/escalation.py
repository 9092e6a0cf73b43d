"""One escalation of an exception case (`escalation-<case id>-<level>`), a child of the case.

Runbook: record that the case now belongs to the next level (its row, the audit trail) →
notify the new owner and the stakeholders. The case workflow then starts the level's SLA.
A notification that cannot be delivered is reported back, never allowed to stop the
escalation itself.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities, CaseEventInput
    from models.case import CaseState
    from models.notices import case_escalated
    from models.routing import CaseLevel, Contact
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows.notifying import notify


class EscalationInput(BaseModel):
    case: CaseState
    previous: CaseLevel
    level: CaseLevel
    stakeholders: list[Contact]
    event_no: int


class EscalationResult(BaseModel):
    notified: list[str]
    notification_problem: str | None = None


@workflow.defn
class EscalationWorkflow:
    @workflow.run
    async def run(self, data: EscalationInput) -> EscalationResult:
        case, level = data.case, data.level
        await workflow.execute_activity_method(
            CaseActivities.record_case_event,
            CaseEventInput(
                case_id=case.case_id, subject=case.subject, check_id=case.check_id,
                event="escalated", event_no=data.event_no, status=case.status.value,
                level=level.level, owner_role=level.role.value, messages=case.messages,
                sla_deadline=case.sla_deadline, breached=False,
                detail={"from_role": data.previous.role.value, "to_role": level.role.value},
                rules_version=case.rules_version,
            ),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"record the escalation to {level.role.value}",
        )  # fmt: skip
        people = level.people + [c for c in data.stakeholders if c not in level.people]
        problem = await notify(
            f"{case.case_id}:escalated:{level.level}:{workflow.info().run_id}", case.subject,
            people, case_escalated(case, data.previous, level),
        )  # fmt: skip
        return EscalationResult(notified=[p.person for p in people], notification_problem=problem)
