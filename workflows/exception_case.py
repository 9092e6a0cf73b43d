"""The exception case workflow (`case-<subject>-<check id>`), a child of the workflow whose
check failed.

Runbook: record the case and fetch its routing (owner, SLA, escalation chain, people,
calendars) under the rules version of the parent → notify the owner → wait for a resolution
with the level's SLA as a business-time timer → when it passes, an escalation child workflow
(`escalation-<case id>-<level>`) moves the case up one level and notifies the new owner and
the stakeholders; past the last level the case stays open, flagged as breached → a
resolution at any level ends the wait → an override starts its sign-off workflow
(`signoff-<case id>`, which outlives this one) → the outcome goes back to the parent.

Updates: `resolve` (validated before it enters history; the answer says why it is refused).
Signals: `resolve_signal` (same rules; a refused signal is recorded with why, nothing else
changes), `withdraw` (from the parent, when an amendment made the check pass).
Queries: `state` (a `CaseState` with the full timeline).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities, CaseEventInput, OpenCaseInput
    from models.case import (
        CaseInput,
        CaseOutcome,
        CaseState,
        CaseStatus,
        OverrideInput,
        Refusal,
        Resolution,
        ResolutionAction,
        TimelineEntry,
        amended_deal,
        resolution_problems,
    )
    from models.notices import case_breached, case_opened
    from models.routing import CaseLevel, CaseRouting
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa
    from workflows.escalation import EscalationInput, EscalationWorkflow
    from workflows.notifying import notify
    from workflows.override_signoff import OverrideSignoffWorkflow


@workflow.defn
class ExceptionCaseWorkflow:
    @workflow.init
    def __init__(self, data: CaseInput) -> None:
        self._input = data
        self._routing: CaseRouting | None = None
        self._events = 0
        self._refusals_audited = 0
        self._state = CaseState(
            case_id=data.case_id, subject=data.subject, check_id=data.check_id,
            owner_role=data.owner_role, status=CaseStatus.OPEN, messages=data.messages,
            evidence=data.evidence, opened_at=workflow.now(), rules_version=data.rules_version,
        )  # fmt: skip

    @workflow.run
    async def run(self, data: CaseInput) -> CaseOutcome:
        self._routing = await workflow.execute_activity_method(
            CaseActivities.open_case,
            OpenCaseInput(case_id=data.case_id, subject=data.subject, check_id=data.check_id,
                          owner_role=data.owner_role.value, messages=data.messages,
                          evidence=data.evidence, rules_version=data.rules_version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"record the case and read the routing of {data.check_id}",
        )  # fmt: skip
        self._log(f"opened: {data.check_id} failed; owner {self._level.role.value}")
        self._start_sla(self._level)
        await self._notify_owner()
        while self._state.status is CaseStatus.OPEN:
            await self._wait_for_resolution_or_sla()
        await self._record_final()
        if self._state.resolution and self._state.resolution.action is ResolutionAction.OVERRIDE:
            await self._start_signoff(self._state.resolution)
        return self._outcome()

    # --- what operators call -----------------------------------------------------------------

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    @workflow.update
    def resolve(self, resolution: Resolution) -> CaseState:
        self._apply(resolution)
        return self._state

    @resolve.validator
    def _validate_resolve(self, resolution: Resolution) -> None:
        problems = self._problems(resolution)
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.signal
    def resolve_signal(self, resolution: Resolution) -> None:
        problems = self._problems(resolution)
        if problems:
            self._state.refusals.append(Refusal(
                at=workflow.now(), actor=resolution.actor, action=resolution.action.value,
                why=problems))  # fmt: skip
            self._log(f"refused {resolution.action.value}: {'; '.join(problems)}", resolution.actor)
            return
        self._apply(resolution)

    @workflow.signal
    def withdraw(self, reason: str) -> None:
        if self._state.status is CaseStatus.OPEN:
            self._state.status = CaseStatus.WITHDRAWN
            self._state.messages = [*self._state.messages, f"withdrawn: {reason}"]
            self._state.resolved_at = workflow.now()
            self._log(f"withdrawn: {reason}")

    # --- the SLA and escalation --------------------------------------------------------------

    @property
    def _level(self) -> CaseLevel:
        assert self._routing is not None, "routing is read before anything else"
        return self._routing.levels[self._state.level]

    def _start_sla(self, level: CaseLevel) -> None:
        deadline = level.calendar.add_business_hours(workflow.now(), level.sla_business_hours)
        self._state.sla_deadline = deadline
        self._state.owner_role = level.role
        self._publish()

    async def _wait_for_resolution_or_sla(self) -> None:
        """Wait for a resolution, a refused signal to audit, or the end of the level's SLA."""
        if self._state.breached or self._state.sla_deadline is None:
            await workflow.wait_condition(self._something_to_do)
        else:
            level = self._level
            remaining = max(self._state.sla_deadline - workflow.now(), timedelta(seconds=1))
            try:
                await workflow.wait_condition(
                    self._something_to_do, timeout=remaining,
                    timeout_summary=f"SLA of level {level.level} ({level.role.value}): "
                    f"{level.sla_business_hours} business hours on the {level.calendar.name} calendar",
                )  # fmt: skip
            except TimeoutError:
                await self._sla_passed(level)
        await self._audit_refusals()

    def _something_to_do(self) -> bool:
        return (
            self._state.status is not CaseStatus.OPEN
            or len(self._state.refusals) > self._refusals_audited
        )

    async def _audit_refusals(self) -> None:
        """A refused signal never changes the case, but it is audited (who tried what, why)."""
        while len(self._state.refusals) > self._refusals_audited:
            refusal = self._state.refusals[self._refusals_audited]
            self._refusals_audited += 1
            await self._record("refused", actor=refusal.actor,
                               detail={"action": refusal.action, "why": refusal.why})  # fmt: skip

    async def _sla_passed(self, level: CaseLevel) -> None:
        assert self._routing is not None
        if level.level + 1 >= len(self._routing.levels):
            self._state.breached = True
            self._log(f"SLA breached at the last level ({level.role.value})")
            self._publish()
            await self._record("breached")
            why_not = await notify(
                f"{self._state.case_id}:{workflow.info().run_id}:breached", self._state.subject,
                level.people + self._routing.stakeholders, case_breached(self._state, level),
            )  # fmt: skip
            if why_not:
                self._log(why_not)
            return
        nxt = self._routing.levels[level.level + 1]
        deadline = nxt.calendar.add_business_hours(workflow.now(), nxt.sla_business_hours)
        self._events += 1
        await workflow.execute_child_workflow(
            EscalationWorkflow.run,
            EscalationInput(
                case=self._state.model_copy(update={"level": nxt.level, "owner_role": nxt.role,
                                                    "sla_deadline": deadline}),
                previous=level, level=nxt, stakeholders=self._routing.stakeholders,
                event_no=self._events,
            ),
            id=f"escalation-{self._state.case_id}-{nxt.level}",
            static_summary=f"escalate {self._state.case_id} from {level.role.value} to {nxt.role.value}",
        )  # fmt: skip
        self._state.level = nxt.level
        self._log(f"escalated to {nxt.role.value} (level {nxt.level})")
        self._start_sla(nxt)

    # --- resolution ----------------------------------------------------------------------------

    def _problems(self, resolution: Resolution) -> list[str]:
        if self._routing is None:
            return [f"case {self._state.case_id} is still opening; try again in a moment"]
        return resolution_problems(self._state, self._routing, self._input.deal, resolution,
                                   today=workflow.now().date())  # fmt: skip

    def _apply(self, resolution: Resolution) -> None:
        self._state.resolution = resolution
        self._state.status = CaseStatus.RESOLVED
        self._state.resolved_at = workflow.now()
        self._log(
            f"{resolution.action.value} ({resolution.reason_code})"
            + (f": {resolution.note}" if resolution.note else ""),
            resolution.actor,
        )

    async def _start_signoff(self, r: Resolution) -> None:
        assert self._routing is not None and r.approver and r.override_expires_on
        routing, now = self._routing, workflow.now()
        due = routing.signoff_calendar.add_business_days(now, routing.signoff_business_days)
        signoff_id = f"signoff-{self._state.case_id}"
        await workflow.start_child_workflow(
            OverrideSignoffWorkflow.run,
            OverrideInput(
                case_id=self._state.case_id, subject=self._state.subject,
                check_id=self._state.check_id, requester=r.actor, approver=r.approver,
                reason_code=r.reason_code, expires_on=r.override_expires_on, granted_at=now,
                signoff_due=due, signoff_role=routing.signoff_role,
                signoff_people=routing.signoff_people, signoff_calendar=routing.signoff_calendar,
                roles_of=routing.roles_of, reason_codes=routing.reason_codes,
                rules_version=self._state.rules_version,
            ),
            id=signoff_id, parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"retrospective QA sign-off of the override on {self._state.case_id}",
        )  # fmt: skip
        self._log(f"override sign-off due by {due.isoformat()} ({signoff_id})")

    def _outcome(self) -> CaseOutcome:
        r = self._state.resolution
        amended = None
        if r is not None and r.action is ResolutionAction.AMEND and self._input.deal is not None:
            amended = amended_deal(self._input.deal, r.amendments)
        return CaseOutcome(case_id=self._state.case_id, check_id=self._state.check_id,
                           status=self._state.status, resolution=r, amended_deal=amended)  # fmt: skip

    # --- bookkeeping ---------------------------------------------------------------------------

    def _log(self, what: str, who: str = "system") -> None:
        self._state.timeline.append(TimelineEntry(at=workflow.now(), what=what, who=who))

    def _publish(self) -> None:
        s = self._state
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_STATUS.value_set(s.status.value),
            sa.OWNER_ROLE.value_set(s.owner_role.value),
            sa.ESCALATION_LEVEL.value_set(s.level),
            sa.SLA_BREACHED.value_set(s.breached),
        ]
        if s.sla_deadline is not None and s.status is CaseStatus.OPEN:
            updates.append(sa.SLA_DEADLINE.value_set(s.sla_deadline))
        workflow.upsert_search_attributes(updates)

    async def _notify_owner(self) -> None:
        why_not = await notify(
            f"{self._state.case_id}:{workflow.info().run_id}:opened", self._state.subject,
            self._level.people, case_opened(self._state, self._level),
        )  # fmt: skip
        self._log(why_not or f"notified {', '.join(p.person for p in self._level.people)}")

    async def _record_final(self) -> None:
        self._publish()
        r = self._state.resolution
        await self._record(
            self._state.status.value, actor=r.actor if r else "system",
            reason_code=r.reason_code if r else None,
            resolution=r.model_dump(mode="json") if r else None,
            detail=r.model_dump(mode="json", exclude={"actor", "reason_code"}) if r else None,
        )  # fmt: skip

    async def _record(self, event: str, actor: str = "system", reason_code: str | None = None,
                      resolution: dict[str, object] | None = None,
                      detail: dict[str, object] | None = None) -> None:  # fmt: skip
        s = self._state
        self._events += 1
        await workflow.execute_activity_method(
            CaseActivities.record_case_event,
            CaseEventInput(
                case_id=s.case_id, subject=s.subject, check_id=s.check_id, event=event,
                event_no=self._events, status=s.status.value, level=s.level,
                owner_role=s.owner_role.value, messages=s.messages, sla_deadline=s.sla_deadline,
                breached=s.breached, actor=actor, reason_code=reason_code, resolution=resolution,
                detail=detail or {}, rules_version=s.rules_version,
            ),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"record case {event}",
        )  # fmt: skip
