"""The exception case workflow (`case-deal-<deal id>-<check id>`), a child of the deal.

It records the case, waits durably for a person to resolve it and returns the resolution
to its parent. Operators act on it from the Temporal Web UI, the CLI or the API.

Updates: `resolve` (validated before it enters history; the answer says why it is refused).
Signals: `resolve_signal` (same rules; a refused signal is recorded with why, nothing else
changes), `withdraw` (from the parent, when an amendment made the check pass).
Queries: `state`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.records import CaseRecordInput, RecordsActivities
    from models.case import (
        CaseInput,
        CaseOutcome,
        CaseState,
        CaseStatus,
        Refusal,
        Resolution,
        ResolutionAction,
        amended_deal,
        resolution_problems,
    )
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa


@workflow.defn
class ExceptionCaseWorkflow:
    @workflow.init
    def __init__(self, data: CaseInput) -> None:
        self._input = data
        self._state = CaseState(
            case_id=data.case_id,
            subject=f"deal:{data.deal.deal_id}",
            check_id=data.check_id,
            owner_role=data.owner_role,
            status=CaseStatus.OPEN,
            messages=data.messages,
            evidence=data.evidence,
            opened_at=workflow.now(),
            rules_version=data.rules_version,
        )

    @workflow.run
    async def run(self, data: CaseInput) -> CaseOutcome:
        await self._record()
        await workflow.wait_condition(lambda: self._state.status is not CaseStatus.OPEN)
        self._publish()
        await self._record()
        return self._outcome()

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
            self._state.refusals.append(
                Refusal(
                    at=workflow.now(),
                    actor=resolution.actor,
                    action=resolution.action.value,
                    why=problems,
                )
            )
            return
        self._apply(resolution)

    @workflow.signal
    def withdraw(self, reason: str) -> None:
        if self._state.status is CaseStatus.OPEN:
            self._state.status = CaseStatus.WITHDRAWN
            self._state.messages = [*self._state.messages, f"withdrawn: {reason}"]
            self._state.resolved_at = workflow.now()

    def _problems(self, resolution: Resolution) -> list[str]:
        return resolution_problems(
            self._state, self._input.deal, self._input.reason_codes, resolution
        )

    def _apply(self, resolution: Resolution) -> None:
        self._state.resolution = resolution
        self._state.status = CaseStatus.RESOLVED
        self._state.resolved_at = workflow.now()

    def _outcome(self) -> CaseOutcome:
        r = self._state.resolution
        amended = None
        if r is not None and r.action is ResolutionAction.AMEND:
            amended = amended_deal(self._input.deal, r.amendments)
        return CaseOutcome(case_id=self._state.case_id, check_id=self._state.check_id,
                           status=self._state.status, resolution=r, amended_deal=amended)  # fmt: skip

    def _publish(self) -> None:
        workflow.upsert_search_attributes([sa.CASE_STATUS.value_set(self._state.status.value)])

    async def _record(self) -> None:
        s = self._state
        await workflow.execute_activity_method(
            RecordsActivities.record_case,
            CaseRecordInput(
                case_id=s.case_id, subject=s.subject, check_id=s.check_id,
                owner_role=s.owner_role.value, status=s.status.value, messages=s.messages,
                rules_version=s.rules_version,
                resolution=s.resolution.model_dump(mode="json") if s.resolution else None,
            ),
            summary=f"record case {s.status.value}",
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )  # fmt: skip
