"""Business time inside the Temporal workflow sandbox, with the worker's own sandbox runner.

`models.business_time` is imported here *without* passing it through, so the sandbox loads
its own copy of it for every workflow run, with the sandbox's restricted `datetime` and
`zoneinfo` (the strictest way a workflow can use it; the product's workflows pass `models`
through). Nothing in it may read the clock, and zoneinfo must be able to load the zone.

With `from zoneinfo import ZoneInfo` in the module this failed: the sandbox wraps
`zoneinfo.ZoneInfo`, the zones it makes are wrappers, and datetime refuses them ("tzinfo
argument must be None or of a tzinfo subclass, not type '_RestrictedProxy'"); the module now
takes the class from `_zoneinfo` (see `_zone_class`). `expand_holidays` is called outside: the
`holidays` package cannot be imported in the sandbox (dateutil calls time.localtime).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio import workflow

from models.business_time import BusinessCalendar, expand_holidays

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from tests.unit.test_business_time import is_within_working_hours_inclusive_end
    from worker import workflow_runner

NEW_YORK = "America/New_York"


class SlaInput(BaseModel):
    opened_at: datetime
    holidays: dict[date, str]


class SlaDeadlines(BaseModel):
    now: datetime
    due_from_now: datetime
    due_from_opened_at: datetime


def us_finance(holidays: dict[date, str]) -> BusinessCalendar:
    return BusinessCalendar(
        name="us-finance",
        timezone=NEW_YORK,
        working_days=[1, 2, 3, 4, 5],
        day_start=time(9),
        day_end=time(17),
        holidays=holidays,
    )


@workflow.defn
class BusinessTimeWorkflow:
    """Builds the calendar in the workflow; holidays are expanded outside and passed in."""

    @workflow.run
    async def run(self, data: SlaInput) -> SlaDeadlines:
        calendar = us_finance(data.holidays)
        now = workflow.now()
        return SlaDeadlines(
            now=now,
            due_from_now=calendar.add_business_hours(now, 48),
            due_from_opened_at=calendar.add_business_hours(data.opened_at, 48),
        )


async def test_business_hours_in_the_sandbox(env: WorkflowEnvironment) -> None:
    holidays = expand_holidays("US", None, range(2024, 2032))
    opened_at = datetime(2026, 12, 18, 15, tzinfo=ZoneInfo(NEW_YORK))
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[BusinessTimeWorkflow],
        workflow_runner=workflow_runner(),
    ):
        result = await env.client.execute_workflow(
            BusinessTimeWorkflow.run,
            SlaInput(opened_at=opened_at, holidays=holidays),
            id=f"business-time-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )

    outside = us_finance(holidays)
    # The worked example of tests/unit/test_business_time.py: Tue 2026-12-29 15:00 EST.
    assert result.due_from_opened_at == datetime(2026, 12, 29, 20, tzinfo=UTC)
    assert result.due_from_opened_at == outside.add_business_hours(opened_at, 48)
    # From the server's clock: the same answer as outside, in working time (or a day_end).
    assert result.due_from_now == outside.add_business_hours(result.now, 48)
    assert is_within_working_hours_inclusive_end(outside, result.due_from_now)
    assert result.due_from_now.tzinfo == UTC
    assert result.due_from_now - result.now >= timedelta(hours=48)
