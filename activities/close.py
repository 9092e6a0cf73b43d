"""Month-end close activities: thin adapters over `close_posting`, `close_checks` and
`close_report`, each effect audited in its own transaction (docs/month-end-close.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.close_checks import run_checks
from activities.close_posting import (
    BATCH_SIZE,
    CONCURRENCY,
    PeriodLocked,
    PostingProgress,
    lock,
    post_period,
)
from activities.close_report import build_report, store_report
from activities.db import insert_audit_event
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.close import (
    CHECK_PERIOD_DELTA,
    CHECK_POSTINGS,
    CheckResult,
    ClosePlan,
    CloseReport,
    PostingTotals,
    ReportStatus,
    close_subject,
)
from models.routing import OperatingRules
from models.rules import RuleSet


class PrepareCloseInput(BaseModel):
    period: str
    rules_version: str


class PostCloseInput(BaseModel):
    period: str
    rules_version: str
    batch_size: int = BATCH_SIZE
    concurrency: int = CONCURRENCY


class CheckCloseInput(BaseModel):
    period: str
    plan: ClosePlan


class ReportCloseInput(BaseModel):
    period: str
    status: ReportStatus
    checks: list[CheckResult]
    rules_version: str


class LockPeriodInput(BaseModel):
    period: str
    signed_off_by: str
    note: str = ""
    rules_version: str


class CloseEventInput(BaseModel):
    """Something a person did to a close that is audited without another effect."""

    period: str
    key: str = Field(description="Idempotency key of the audit event")
    action: str
    actor: str
    after: dict[str, object]
    rules_version: str


@asynccontextmanager
async def heartbeating(
    details: Callable[[], tuple[object, ...]] = tuple, every: float = 5.0
) -> AsyncIterator[None]:
    """Heartbeat (with `details()`) while long statements run, so a dead worker is noticed
    within the heartbeat timeout."""

    async def beat() -> None:
        while True:
            activity.heartbeat(*details())
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


class CloseActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def prepare_close(self, data: PrepareCloseInput) -> ClosePlan:
        """Thresholds and the directory under the close's rules version, read once."""
        row = await self._pool.fetchrow(
            "SELECT policy, operating FROM rule_set WHERE version = $1", data.rules_version
        )
        if row is None:
            raise ApplicationError(
                f"rules version {data.rules_version} is not stored in rule_set: start the "
                "worker or the CLI once with those rules", type="RulesVersionUnknown",
                non_retryable=True,
            )  # fmt: skip
        policy = RuleSet.model_validate(row["policy"])
        directory = OperatingRules.model_validate(row["operating"]).directory
        return ClosePlan(
            rules_version=data.rules_version, policy=policy.close,
            usd_rates=dict(policy.credit.usd_rates),
            roles_of={pid: list(p.roles) for pid, p in directory.items()},
            owners={c: policy.owner_of(c) for c in (CHECK_POSTINGS, CHECK_PERIOD_DELTA)},
        )  # fmt: skip

    @activity.defn
    async def post_close(self, data: PostCloseInput) -> PostingTotals:
        """Post the period's close in batches, heartbeating the batches done (a retry resumes
        after them)."""
        details = activity.info().heartbeat_details
        latest = PostingProgress.model_validate(details[0]) if details else PostingProgress()

        def keep(progress: PostingProgress) -> None:
            nonlocal latest
            latest = progress

        try:
            async with heartbeating(lambda: (latest,)):
                return await post_period(
                    self._pool, data.period, rules_version=data.rules_version,
                    batch_size=data.batch_size, concurrency=data.concurrency, resume=latest,
                    on_batch=keep,
                )  # fmt: skip
        except PeriodLocked as exc:
            raise ApplicationError(str(exc), type="PeriodLocked", non_retryable=True) from None

    @activity.defn
    async def check_close(self, data: CheckCloseInput) -> list[CheckResult]:
        """Both anomaly checks, read in one snapshot, and audited."""
        async with heartbeating(), self._pool.acquire() as conn:
            checks = await run_checks(conn, data.period, data.plan)
            await insert_audit_event(conn, AuditEvent(
                key=f"close:{data.period}:{activity.info().workflow_run_id}:checked",
                actor=SYSTEM_ACTOR, action="close.checked", subject=close_subject(data.period),
                rules_version=data.plan.rules_version,
                after={c.check_id: {"passed": c.passed, "failures": c.failures} for c in checks}))  # fmt: skip
        return checks

    @activity.defn
    async def report_close(self, data: ReportCloseInput) -> CloseReport:
        """Build and store the close report; the workflow keeps its summary."""
        async with (
            heartbeating(),
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read"),
        ):
            await conn.execute("SET LOCAL enable_nestloop = off")  # whole-ledger scans
            report = await build_report(conn, data.period, data.status, data.checks,
                                        data.rules_version)  # fmt: skip
            await store_report(conn, report)
            await insert_audit_event(conn, AuditEvent(
                key=f"close:{data.period}:{activity.info().workflow_run_id}:report:{data.status}",
                actor=SYSTEM_ACTOR, action="close.reported", subject=close_subject(data.period),
                rules_version=data.rules_version,
                after={"status": data.status, "ties": report.ties(),
                       "roll_forward": [r.model_dump(mode="json") for r in report.roll_forward]}))  # fmt: skip
        return report.summary()

    @activity.defn
    async def lock_period(self, data: LockPeriodInput) -> datetime:
        """Record the sign-off and lock the period, in one transaction."""
        subject = close_subject(data.period)
        async with self._pool.acquire() as conn, conn.transaction():
            locked_at = await lock(conn, data.period)
            for action, after in (
                ("close.signed_off", {"note": data.note}),
                ("close.locked", {"locked_at": locked_at.isoformat()}),
            ):
                await insert_audit_event(conn, AuditEvent(
                    key=f"close:{data.period}:{action}", actor=data.signed_off_by, action=action,
                    subject=subject, after=after, rules_version=data.rules_version))  # fmt: skip
        return locked_at

    @activity.defn
    async def record_close_event(self, data: CloseEventInput) -> None:
        async with self._pool.acquire() as conn:
            await insert_audit_event(conn, AuditEvent(
                key=data.key, actor=data.actor, action=data.action,
                subject=close_subject(data.period), after=data.after,
                rules_version=data.rules_version))  # fmt: skip
