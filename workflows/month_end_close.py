"""The month-end close of one period (`close-<P>`), and the monthly run that starts it.

Runbook: read the close's rules (tolerances, who signs off) → post the period's revenue in
set-based batches, one entry per deal → run the anomaly checks (postings against the
schedule, revenue against the month before) and open a case per failed check, owned by
finance (child `case-close-<P>-<check>`) → store the draft report → wait until every close
case is resolved → wait for finance's sign-off → lock the period → store the final report.

Updates: `sign_off` (validated: the actor holds a sign-off role of `rules/close.yaml` in the
directory, and no close case is open; the answer says why not). Signals: `sign_off_signal`
(same rules; a refusal is recorded with why, audited, and changes nothing).
Queries: `state` (a `CloseState`: stage, posting counts, checks, cases, the report).

`ScheduledCloseWorkflow` is what the Temporal Schedule `month-end-close` starts at 06:00 UTC
on the 1st: it starts (or finds) the close of the month that just ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.close import (
        CheckCloseInput,
        CloseActivities,
        CloseEventInput,
        LockPeriodInput,
        PostCloseInput,
        PrepareCloseInput,
        ReportCloseInput,
    )
    from models.case import CaseInput, CaseOutcome
    from models.close import (
        CheckResult,
        CloseInput,
        ClosePlan,
        CloseSignOff,
        CloseStage,
        CloseState,
        OpenCloseCase,
        ReportStatus,
        ScheduledCloseInput,
        SignOffRefusal,
        close_case_id,
        close_subject,
        close_workflow_id,
        period_before,
        period_bounds,
        period_is_over,
        signoff_problems,
    )
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa
    from workflows.exception_case import ExceptionCaseWorkflow

# Bulk steps heartbeat every few seconds: a dead worker is noticed within the heartbeat
# timeout, not after the hour a close of a large book may take.
BULK_TIMEOUT = timedelta(hours=2)
BULK_HEARTBEAT = timedelta(minutes=1)
BULK_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))

CaseChild = workflow.ChildWorkflowHandle[ExceptionCaseWorkflow, CaseOutcome]
OpenedCase = tuple[CaseChild, OpenCloseCase]


@workflow.defn
class MonthEndCloseWorkflow:
    @workflow.init
    def __init__(self, data: CloseInput) -> None:
        self._plan: ClosePlan | None = None
        self._signoff: CloseSignOff | None = None
        self._refusals_audited = 0
        self._state = CloseState(period=data.period, stage=CloseStage.POSTING,
                                 rules_version=data.rules_version, started_at=workflow.now())  # fmt: skip

    @workflow.run
    async def run(self, data: CloseInput) -> CloseState:
        self._refuse_a_month_not_over()
        self._plan = await self._prepare()
        await self._post()
        await self._check()
        cases = await self._open_cases()
        await self._report("draft")
        await self._wait_for_cases(cases)
        await self._wait_for_signoff()
        await self._lock()
        await self._report("final")
        self._enter(CloseStage.CLOSED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    # --- what finance calls -------------------------------------------------------------

    @workflow.query
    def state(self) -> CloseState:
        return self._state

    @workflow.update
    def sign_off(self, signoff: CloseSignOff) -> CloseState:
        self._accept(signoff)
        return self._state

    @sign_off.validator
    def _validate_sign_off(self, signoff: CloseSignOff) -> None:
        problems = signoff_problems(self._state, signoff, self._plan)
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.signal
    def sign_off_signal(self, signoff: CloseSignOff) -> None:
        problems = signoff_problems(self._state, signoff, self._plan)
        if problems:
            self._state.refusals.append(
                SignOffRefusal(at=workflow.now(), actor=signoff.actor, why=problems)
            )
            return
        self._accept(signoff)

    def _accept(self, signoff: CloseSignOff) -> None:
        self._signoff = signoff
        self._state.signed_off_by = signoff.actor
        self._state.signed_off_at = workflow.now()

    # --- the steps ----------------------------------------------------------------------

    def _refuse_a_month_not_over(self) -> None:
        period = self._state.period
        if not period_is_over(period, workflow.now().date()):
            last = period_bounds(period)[1]
            raise ApplicationError(
                f"period {period} is not over until {last}: its revenue is not earned yet, "
                f"close it from {last + timedelta(days=1)}",
                type="PeriodNotOver", non_retryable=True,
            )  # fmt: skip

    async def _prepare(self) -> ClosePlan:
        return await workflow.execute_activity_method(
            CloseActivities.prepare_close,
            PrepareCloseInput(period=self._state.period, rules_version=self._state.rules_version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary="read the close's tolerances and sign-off roles",
        )  # fmt: skip

    async def _post(self) -> None:
        self._state.posting = await workflow.execute_activity_method(
            CloseActivities.post_close,
            PostCloseInput(period=self._state.period, rules_version=self._state.rules_version),
            start_to_close_timeout=BULK_TIMEOUT, heartbeat_timeout=BULK_HEARTBEAT,
            retry_policy=BULK_RETRY,
            summary=f"post revenue due through {period_bounds(self._state.period)[1]}, "
            "one entry per deal, in batches",
        )  # fmt: skip

    async def _check(self) -> None:
        assert self._plan is not None
        self._enter(CloseStage.CHECKING)
        self._state.checks = await workflow.execute_activity_method(
            CloseActivities.check_close,
            CheckCloseInput(period=self._state.period, plan=self._plan),
            start_to_close_timeout=BULK_TIMEOUT, heartbeat_timeout=BULK_HEARTBEAT,
            retry_policy=BULK_RETRY,
            summary="check postings against the schedule and revenue against last month",
        )  # fmt: skip

    async def _report(self, status: ReportStatus) -> None:
        self._state.report = await workflow.execute_activity_method(
            CloseActivities.report_close,
            ReportCloseInput(period=self._state.period, status=status,
                             checks=self._state.checks, rules_version=self._state.rules_version),
            start_to_close_timeout=BULK_TIMEOUT, heartbeat_timeout=BULK_HEARTBEAT,
            retry_policy=BULK_RETRY, summary=f"store the {status} close report",
        )  # fmt: skip

    async def _open_cases(self) -> list[OpenedCase]:
        """One case per failed check; sign-off is refused until all are resolved."""
        return [await self._open_case(check.check_id) for check in self._state.checks
                if not check.passed]  # fmt: skip

    async def _wait_for_cases(self, cases: list[OpenedCase]) -> None:
        self._enter(CloseStage.AWAITING_CASES)
        following = asyncio.gather(*(self._follow(handle, case) for handle, case in cases))
        await self._wait_until(following.done)
        await following

    async def _open_case(self, check_id: str) -> OpenedCase:
        assert self._plan is not None
        period, check = self._state.period, self._check_result(check_id)
        case = OpenCloseCase(case_id=close_case_id(period, check_id), check_id=check_id)
        owner = self._plan.owners[check_id]
        handle = await workflow.start_child_workflow(
            ExceptionCaseWorkflow.run,
            CaseInput(case_id=case.case_id, subject=close_subject(period), check_id=check_id,
                      owner_role=owner, messages=check.messages, evidence=check.evidence,
                      rules_version=self._state.rules_version),
            id=case.case_id, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=sa.case_attributes(owner.value, check_id),
            static_summary=f"{check_id} failed in the close of {period}: waiting for {owner.value}",
        )  # fmt: skip
        check.case_id, check.case_status = case.case_id, case.status
        self._state.cases.append(case)
        return handle, case

    async def _follow(self, handle: CaseChild, case: OpenCloseCase) -> None:
        outcome = await handle
        case.status = outcome.status.value
        self._check_result(case.check_id).case_status = case.status

    async def _wait_for_signoff(self) -> None:
        self._enter(CloseStage.AWAITING_SIGNOFF)
        await self._wait_until(lambda: self._signoff is not None)

    async def _lock(self) -> None:
        assert self._signoff is not None
        self._enter(CloseStage.LOCKING)
        self._state.locked_at = await workflow.execute_activity_method(
            CloseActivities.lock_period,
            LockPeriodInput(period=self._state.period, signed_off_by=self._signoff.actor,
                            note=self._signoff.note, rules_version=self._state.rules_version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"record {self._signoff.actor}'s sign-off and lock {self._state.period}",
        )  # fmt: skip

    # --- bookkeeping ----------------------------------------------------------------------

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        """Wait for `done`, auditing each refused sign-off signal as it comes."""
        while not done():
            await workflow.wait_condition(
                lambda: done() or len(self._state.refusals) > self._refusals_audited
            )
            await self._audit_refusals()

    async def _audit_refusals(self) -> None:
        while len(self._state.refusals) > self._refusals_audited:
            refusal = self._state.refusals[self._refusals_audited]
            self._refusals_audited += 1
            await workflow.execute_activity_method(
                CloseActivities.record_close_event,
                CloseEventInput(
                    period=self._state.period, action="close.signoff_refused",
                    key=f"close:{self._state.period}:{workflow.info().run_id}:refused:"
                    f"{self._refusals_audited}",
                    actor=refusal.actor, after={"why": refusal.why},
                    rules_version=self._state.rules_version,
                ),
                start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
                summary="audit a refused sign-off",
            )  # fmt: skip

    def _check_result(self, check_id: str) -> CheckResult:
        return next(c for c in self._state.checks if c.check_id == check_id)

    def _enter(self, stage: CloseStage) -> None:
        self._state.stage = stage
        workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])


@workflow.defn
class ScheduledCloseWorkflow:
    """Started by the Schedule `month-end-close`: starts (or finds) the close of the month
    before the scheduled time, and returns at once (the close waits for people)."""

    @workflow.run
    async def run(self, data: ScheduledCloseInput) -> str:
        period = period_before(self._scheduled_day())
        workflow_id = close_workflow_id(period)
        try:
            await workflow.start_child_workflow(
                MonthEndCloseWorkflow.run,
                CloseInput(period=period, rules_version=data.rules_version),
                id=workflow_id, parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=f"month-end close of {period}",
            )  # fmt: skip
        except WorkflowAlreadyStartedError:
            return f"{workflow_id} was already started"
        return f"started {workflow_id}"

    def _scheduled_day(self) -> date:
        """The day the schedule meant (not when a late start ran), in UTC."""
        key = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
        scheduled = workflow.info().typed_search_attributes.get(key)
        return (scheduled or workflow.now()).date()
