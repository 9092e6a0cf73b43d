"""The month-end close workflow on the time-skipping server, with the close activities faked
(tests/workflows/close_fakes.py) and cases routed by the shipped rules: close checks go to
finance (aisha.khan, lena.fischer); maria.santos holds billing only.

Scenario of the main test, a close of 2025-03:
  posting → checks: postings match the schedule, but one contract's revenue jumped
  (close.period_delta) → a case opens for finance → aisha.khan's sign-off is refused while
  it is open → aisha.khan approves the case → maria.santos (billing) is refused → aisha.khan
  signs off → the period is locked with her name on it → final report.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.case import CaseStatus, Resolution, ResolutionAction
from models.close import (
    CHECK_PERIOD_DELTA,
    CHECK_POSTINGS,
    CheckResult,
    CloseInput,
    CloseSignOff,
    CloseStage,
    CloseState,
    ScheduledCloseInput,
    close_case_id,
    period_before,
)
from tests.workflows.close_fakes import FakeClose, passed
from tests.workflows.fake_activities import FakeSystems
from worker import WORKFLOWS, workflow_runner
from workflows.exception_case import ExceptionCaseWorkflow
from workflows.month_end_close import MonthEndCloseWorkflow, ScheduledCloseWorkflow

SWING = "Deal D-7: revenue 13,000.00 USD in 2025-03 against 10,000.00 USD in 2025-02 (+3,000.00 USD, +30.0%)"
CloseHandle = WorkflowHandle[MonthEndCloseWorkflow, CloseState]


@pytest.fixture
def close(systems: FakeSystems) -> FakeClose:
    return FakeClose(systems.workflow_ids)


@pytest.fixture
async def worker(
    env: WorkflowEnvironment, task_queue: str, systems: FakeSystems, close: FakeClose
) -> AsyncIterator[Worker]:
    async with Worker(env.client, task_queue=task_queue, workflows=list(WORKFLOWS),
                      activities=systems.all() + close.all(),
                      workflow_runner=workflow_runner()) as running:  # fmt: skip
        yield running


async def eventually(query: Callable[[], Any], check: Callable[[Any], bool]) -> Any:
    value = None
    for _ in range(500):
        try:
            value = await query()
        except RPCError:  # not started yet
            value = None
        else:
            if check(value):
                return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"never true; last value: {value}")


async def start_close(env: WorkflowEnvironment, task_queue: str, period: str) -> CloseHandle:
    return await env.client.start_workflow(
        MonthEndCloseWorkflow.run, CloseInput(period=period, rules_version="test"),
        id=f"close-{period}-{uuid.uuid4().hex[:6]}", task_queue=task_queue,
    )  # fmt: skip


async def refusal(handle: CloseHandle, actor: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(MonthEndCloseWorkflow.sign_off, CloseSignOff(actor=actor))
    return str(getattr(refused.value.cause, "message", refused.value.cause))


@pytest.mark.usefixtures("worker")
async def test_sign_off_waits_for_the_case_and_a_finance_role_then_the_period_is_locked(
    env: WorkflowEnvironment, task_queue: str, close: FakeClose
) -> None:
    close.checks = [
        passed(CHECK_POSTINGS),
        CheckResult(check_id=CHECK_PERIOD_DELTA, passed=False, failures=1, messages=[SWING]),
    ]
    handle = await start_close(env, task_queue, "2025-03")
    case_id = close_case_id("2025-03", CHECK_PERIOD_DELTA)

    waiting = await eventually(lambda: handle.query(MonthEndCloseWorkflow.state),
                               lambda s: s.stage is CloseStage.AWAITING_CASES)  # fmt: skip
    assert [(c.case_id, c.status) for c in waiting.cases] == [(case_id, "open")]
    assert waiting.posting.entries == 2 and str(waiting.posting.revenue[0]) == "1,500.00 USD"
    assert waiting.report.status == "draft" and waiting.report.ties()
    assert await refusal(handle, "aisha.khan") == (
        f"close 2025-03 has 1 open case(s): {case_id} (close.period_delta); resolve them first"
    )

    case = env.client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
    opened = await eventually(lambda: case.query(ExceptionCaseWorkflow.state),
                              lambda s: s.sla_deadline is not None)  # fmt: skip
    assert (opened.subject, opened.owner_role.value, opened.messages) == (
        "close:2025-03", "finance", [SWING],
    )  # fmt: skip
    await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action=ResolutionAction.APPROVE, actor="aisha.khan", reason_code="CUSTOMER_CONFIRMED",
        note="new seats from March 1"))  # fmt: skip

    ready = await eventually(lambda: handle.query(MonthEndCloseWorkflow.state),
                             lambda s: s.stage is CloseStage.AWAITING_SIGNOFF)  # fmt: skip
    assert [(c.case_id, c.status) for c in ready.cases] == [(case_id, CaseStatus.RESOLVED.value)]
    assert ready.checks[1].case_status == "resolved"
    assert await refusal(handle, "maria.santos") == (
        "maria.santos (billing) holds none of finance, vp_finance, cfo, the roles that sign a "
        "close off"
    )

    await handle.execute_update(MonthEndCloseWorkflow.sign_off,
                                CloseSignOff(actor="aisha.khan", note="reviewed"))  # fmt: skip
    final = await handle.result()

    assert final.stage is CloseStage.CLOSED
    assert final.signed_off_by == "aisha.khan" and final.locked_at is not None
    assert [(lock.period, lock.signed_off_by, lock.note) for lock in close.locked] == [
        ("2025-03", "aisha.khan", "reviewed")
    ]
    assert [r.status for r in close.reports] == ["draft", "final"]
    assert close.reports[1].checks[1].case_status == "resolved"
    assert final.report is not None and final.report.status == "final"


@pytest.mark.usefixtures("worker")
async def test_a_refused_signal_is_recorded_and_audited_and_changes_nothing(
    env: WorkflowEnvironment, task_queue: str, close: FakeClose
) -> None:
    handle = await start_close(env, task_queue, "2025-04")
    await eventually(lambda: handle.query(MonthEndCloseWorkflow.state),
                     lambda s: s.stage is CloseStage.AWAITING_SIGNOFF)  # fmt: skip

    await handle.signal(MonthEndCloseWorkflow.sign_off_signal, CloseSignOff(actor="tom.okafor"))
    refused = await eventually(lambda: handle.query(MonthEndCloseWorkflow.state),
                               lambda s: bool(s.refusals))  # fmt: skip
    await eventually(lambda: asyncio.sleep(0, close.events), bool)

    why = "tom.okafor (sales_ops) holds none of finance, vp_finance, cfo, the roles that sign a close off"
    assert [(r.actor, r.why) for r in refused.refusals] == [("tom.okafor", [why])]
    assert refused.stage is CloseStage.AWAITING_SIGNOFF and refused.signed_off_by is None
    assert [(e.action, e.actor, e.after) for e in close.events] == [
        ("close.signoff_refused", "tom.okafor", {"why": [why]})
    ]
    assert close.locked == []

    await handle.signal(MonthEndCloseWorkflow.sign_off_signal, CloseSignOff(actor="samuel.ortiz"))
    assert (await handle.result()).signed_off_by == "samuel.ortiz"


@pytest.mark.usefixtures("worker")
async def test_a_month_that_is_not_over_is_not_closed(
    env: WorkflowEnvironment, task_queue: str, close: FakeClose
) -> None:
    handle = await start_close(env, task_queue, "2999-01")

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    message = str(getattr(failed.value.cause, "message", failed.value.cause))
    assert message == (
        "period 2999-01 is not over until 2999-01-31: its revenue is not earned yet, close it "
        "from 2999-02-01"
    )
    assert close.posted == []


@pytest.mark.usefixtures("worker")
async def test_the_scheduled_run_starts_the_close_of_the_month_that_ended_once(
    env: WorkflowEnvironment, task_queue: str, close: FakeClose
) -> None:
    today = (await env.get_current_time()).date()
    period = period_before(today)

    async def scheduled_run() -> str:
        return await env.client.execute_workflow(
            ScheduledCloseWorkflow.run, ScheduledCloseInput(rules_version="test"),
            id=f"month-end-close-{uuid.uuid4().hex[:6]}", task_queue=task_queue,
        )  # fmt: skip

    assert await scheduled_run() == f"started close-{period}"
    assert await scheduled_run() == f"close-{period} was already started"
    closing = env.client.get_workflow_handle_for(MonthEndCloseWorkflow.run, f"close-{period}")
    state = await eventually(lambda: closing.query(MonthEndCloseWorkflow.state),
                             lambda s: s.stage is CloseStage.AWAITING_SIGNOFF)  # fmt: skip
    assert state.period == period and close.posted[0].period == period
