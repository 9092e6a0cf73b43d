"""`revops close run|signoff|report`: the month-end close from a terminal, and the Temporal
Schedule `month-end-close` that starts it after each month end (created by the worker).

The close workflow decides: a refused sign-off is printed with why (and audited).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.close import (
    CloseInput,
    CloseReport,
    CloseSignOff,
    CloseStage,
    CloseState,
    ScheduledCloseInput,
    close_workflow_id,
    period_bounds,
    period_is_over,
)
from models.money import Money
from starter.settings import get_settings
from workflows.month_end_close import MonthEndCloseWorkflow, ScheduledCloseWorkflow

close_app = typer.Typer(
    help="Month-end close: post, check, sign off, lock, report.", no_args_is_help=True
)
console = Console()

CLOSE_SCHEDULE_ID = "month-end-close"
# Where `close run` and `close signoff` stop following the workflow.
RESTING = frozenset({CloseStage.AWAITING_CASES, CloseStage.AWAITING_SIGNOFF, CloseStage.CLOSED})
FOLLOW_SECONDS = 600.0
CloseHandle = WorkflowHandle[MonthEndCloseWorkflow, CloseState]


class CloseFailed(Exception):
    """The close workflow failed; the message says why."""


def _period(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise typer.BadParameter(f"{value!r} is not a period: write YYYY-MM, e.g. 2026-11")
    return value


Period = Annotated[str, typer.Argument(help="The month, YYYY-MM", callback=_period)]


async def start_or_find(
    client: Client, period: str, rules_version: str, task_queue: str
) -> CloseHandle:
    """The close of `period`: started now, or the one running or finished (a failed one is
    started again)."""
    workflow_id = close_workflow_id(period)
    try:
        return await client.start_workflow(
            MonthEndCloseWorkflow.run, CloseInput(period=period, rules_version=rules_version),
            id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"month-end close of {period}",
        )  # fmt: skip
    except WorkflowAlreadyStartedError:  # finished: its report is there
        return client.get_workflow_handle_for(MonthEndCloseWorkflow.run, workflow_id)


async def follow(handle: CloseHandle, until: frozenset[CloseStage]) -> CloseState:
    """Print each stage the close enters until it reaches one of `until`."""
    deadline, seen = time.monotonic() + FOLLOW_SECONDS, None
    while True:
        status = (await handle.describe()).status
        if status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
            try:
                await handle.result()
            except WorkflowFailureError as exc:
                raise CloseFailed(str(getattr(exc.cause, "message", exc.cause))) from None
        state = await handle.query(MonthEndCloseWorkflow.state)
        if state.stage is not seen:
            seen = state.stage
            console.print(f"{datetime.now(UTC):%H:%M:%S}  {handle.id}: {state.stage.value}")
        if state.stage in until or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.5)


def _money(amount: Money) -> str:
    return amount.format()


def report_tables(report: CloseReport) -> list[Table]:
    last = period_bounds(report.period)[1]
    roll = Table("currency", "opening", "+ billings", "- recognised", "= closing", "ledger",
                 title=f"Deferred revenue (2400) roll-forward, {report.period} ({report.status})")  # fmt: skip
    for r in report.roll_forward:
        ties = "ties" if r.ties else f"OFF by {r.difference}"
        roll.add_row(r.currency, _money(r.opening), _money(r.billings), _money(r.recognised),
                     _money(r.closing), ties)  # fmt: skip
    products = Table("product", "revenue", title=f"Revenue in {report.period} by product")
    for p in report.revenue_by_product:
        products.add_row(p.product, _money(p.amount))
    customers = Table("customer", "name", "revenue",
                      title=f"Revenue in {report.period} by customer "
                      f"({report.customers_with_revenue} customers)")  # fmt: skip
    for c in report.revenue_by_customer:
        customers.add_row(c.customer_id, c.name, _money(c.amount))
    unbilled = Table("customer", "name", "unbilled", title=f"Unbilled receivables (1150) at "
                     f"{last} ({report.customers_with_unbilled} customers)")  # fmt: skip
    for c in report.unbilled_by_customer:
        unbilled.add_row(c.customer_id, c.name, _money(c.amount))
    checks = Table("check", "result", "failures", "case", title="Checks")
    for check in report.checks:
        case = f"{check.case_id} ({check.case_status})" if check.case_id else "-"
        checks.add_row(check.check_id, "passed" if check.passed else "FAILED",
                       str(check.failures), case)  # fmt: skip
    return [roll, products, customers, unbilled, checks]


def print_report(report: CloseReport) -> None:
    for table in report_tables(report):
        console.print(table)


def print_waiting(state: CloseState, roles: str) -> None:
    open_cases = state.open_cases()
    if open_cases:
        console.print(f"close-{state.period} waits for {len(open_cases)} open case(s); "
                      "resolve them, then sign off:")  # fmt: skip
        for case in open_cases:
            console.print(f"  {case.case_id}  ({case.check_id})  `revops case show {case.case_id}`")
    console.print(f"close-{state.period} waits for sign-off by {roles}: "
                  f"`revops close signoff {state.period} --actor <person id>`")  # fmt: skip


@close_app.command("run")
def close_run(period: Period) -> None:
    """Start (or find) the close of PERIOD and follow it until it closes or waits for people."""
    from starter.cli import _connected, _run

    if not period_is_over(period, datetime.now(UTC).date()):
        console.print(f"[red]period {period} is not over until {period_bounds(period)[1]}; "
                      "its revenue is not earned yet")  # fmt: skip
        raise typer.Exit(1)

    async def run() -> int:
        settings = get_settings()
        async with _connected(settings) as (pool, client, rules):
            handle = await start_or_find(client, period, rules.version, settings.task_queue)
            try:
                state = await follow(handle, RESTING)
            except CloseFailed as exc:
                console.print(f"[red]close-{period} failed: {exc}")
                return 1
            if state.stage is CloseStage.CLOSED:
                from activities.close_report import load_report

                async with pool.acquire() as conn:
                    report = await load_report(conn, period) or state.report
                if report is not None:
                    print_report(report)
                console.print(f"{period} is locked (since {state.locked_at:%Y-%m-%d %H:%M} UTC), "
                              f"signed off by {state.signed_off_by}")  # fmt: skip
                return 0
            if state.report is not None:
                print_report(state.report)
            print_waiting(state, ", ".join(r.value for r in rules.close.signoff_roles))
        return 0

    _run(run)


@close_app.command("signoff")
def close_signoff(
    period: Period,
    actor: Annotated[str, typer.Option("--actor", help="Your person id in rules/directory.yaml")],
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Sign the close of PERIOD off (finance, vp_finance or cfo); the period is then locked."""
    from starter.cli import _connected, _run

    async def run() -> int:
        async with _connected(get_settings()) as (_pool, client, _rules):
            handle = client.get_workflow_handle_for(
                MonthEndCloseWorkflow.run, close_workflow_id(period)
            )
            try:
                await handle.execute_update(
                    MonthEndCloseWorkflow.sign_off, CloseSignOff(actor=actor, note=note)
                )
            except WorkflowUpdateFailedError as exc:
                console.print(f"[red]refused:[/red] {getattr(exc.cause, 'message', exc.cause)}")
                return 1
            try:
                state = await follow(handle, frozenset({CloseStage.CLOSED}))
            except CloseFailed as exc:
                console.print(f"[red]close-{period} failed: {exc}")
                return 1
        console.print(f"close-{period} signed off by {actor}; {period} "
                      + (f"locked at {state.locked_at:%Y-%m-%d %H:%M} UTC" if state.locked_at
                         else "is being locked"))  # fmt: skip
        return 0

    _run(run)


@close_app.command("report")
def close_report(period: Period) -> None:
    """Print the close report of PERIOD (final once locked, else the draft)."""
    from activities.close_report import load_report
    from starter.cli import _connected, _run

    async def run() -> int:
        async with _connected(get_settings()) as (pool, _client, _rules), pool.acquire() as conn:
            report = await load_report(conn, period)
        if report is None:
            console.print(f"[red]no close report for {period}: `revops close run {period}`")
            return 1
        print_report(report)
        return 0

    _run(run)


# --- the schedule ----------------------------------------------------------------------


def close_schedule(task_queue: str, rules_version: str) -> Schedule:
    """06:00 UTC on the 1st of every month: the close of the month that just ended."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduledCloseWorkflow.run, ScheduledCloseInput(rules_version=rules_version),
            id=CLOSE_SCHEDULE_ID, task_queue=task_queue,
        ),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(
            second=[ScheduleRange(0)], minute=[ScheduleRange(0)], hour=[ScheduleRange(6)],
            day_of_month=[ScheduleRange(1)],
        )]),
        # A worker down over the 1st still closes the month when it is back within a week.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=timedelta(days=7)),
    )  # fmt: skip


async def ensure_close_schedule(client: Client, task_queue: str, rules_version: str) -> str:
    """Create the schedule, or bring its action and calendar up to date (its pause state and
    policies, which an operator may have changed, are kept). 'created' or 'updated'."""
    wanted = close_schedule(task_queue, rules_version)
    try:
        await client.create_schedule(CLOSE_SCHEDULE_ID, wanted)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = dataclasses.replace(
            current.description.schedule, action=wanted.action, spec=wanted.spec
        )
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(CLOSE_SCHEDULE_ID).update(update)
    return "updated"
