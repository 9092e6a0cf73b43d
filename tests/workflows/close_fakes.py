"""In-memory stand-ins for the month-end close activities, under their real names.

They return what a test sets (the checks) and keep what the workflow asked for (postings,
reports, the lock, audited refusals), so tests assert on the workflow's decisions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.close import (
    CheckCloseInput,
    CloseEventInput,
    LockPeriodInput,
    PostCloseInput,
    PrepareCloseInput,
    ReportCloseInput,
)
from models.close import (
    CHECK_PERIOD_DELTA,
    CHECK_POSTINGS,
    CheckResult,
    ClosePlan,
    CloseReport,
    PostingTotals,
    RollForward,
)
from models.money import Money
from models.rules import RuleSet
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT
from tests.workflows.fake_activities import OPERATING

POLICY: RuleSet = load_rules(PROJECT_ROOT / "rules")


def passed(check_id: str) -> CheckResult:
    return CheckResult(check_id=check_id, passed=True, failures=0, messages=[])


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


class FakeClose:
    """`checks` is what the anomaly QA finds; `workflow_ids` is shared with `FakeSystems`, so
    the test's fixture terminates the closes left waiting."""

    def __init__(self, workflow_ids: set[str]) -> None:
        self.checks = [passed(CHECK_POSTINGS), passed(CHECK_PERIOD_DELTA)]
        self.workflow_ids = workflow_ids
        self.posted: list[PostCloseInput] = []
        self.reports: list[ReportCloseInput] = []
        self.locked: list[LockPeriodInput] = []
        self.events: list[CloseEventInput] = []

    def _seen(self) -> None:
        self.workflow_ids.add(activity.info().workflow_id or "")

    @activity.defn(name="prepare_close")
    async def prepare_close(self, data: PrepareCloseInput) -> ClosePlan:
        self._seen()
        return ClosePlan(
            rules_version=data.rules_version, policy=POLICY.close,
            usd_rates=dict(POLICY.credit.usd_rates),
            roles_of={pid: list(p.roles) for pid, p in OPERATING.directory.items()},
            owners={c: POLICY.owner_of(c) for c in (CHECK_POSTINGS, CHECK_PERIOD_DELTA)},
        )  # fmt: skip

    @activity.defn(name="post_close")
    async def post_close(self, data: PostCloseInput) -> PostingTotals:
        self._seen()
        self.posted.append(data)
        return PostingTotals(contracts=3, entries=2, lines=5, batches=1,
                             revenue=[usd("1500.00")])  # fmt: skip

    @activity.defn(name="check_close")
    async def check_close(self, data: CheckCloseInput) -> list[CheckResult]:
        self._seen()
        return self.checks

    @activity.defn(name="report_close")
    async def report_close(self, data: ReportCloseInput) -> CloseReport:
        """Deferred revenue: 1,200.00 opening + 300.00 billed - 500.00 recognised = 1,000.00."""
        self._seen()
        self.reports.append(data)
        return CloseReport(
            period=data.period, status=data.status, generated_at=datetime.now(UTC),
            rules_version=data.rules_version,
            roll_forward=[RollForward(currency="USD", opening=usd("1200.00"),
                                      billings=usd("300.00"), recognised=usd("500.00"),
                                      closing=usd("1000.00"))],
            revenue_by_currency=[usd("1500.00")], revenue_by_customer=[], revenue_by_product=[],
            unbilled_by_customer=[], customers_with_revenue=2, customers_with_unbilled=0,
            checks=data.checks,
        )  # fmt: skip

    @activity.defn(name="lock_period")
    async def lock_period(self, data: LockPeriodInput) -> datetime:
        self._seen()
        self.locked.append(data)
        return datetime.now(UTC)

    @activity.defn(name="record_close_event")
    async def record_close_event(self, data: CloseEventInput) -> None:
        self._seen()
        self.events.append(data)

    def all(self) -> list[Any]:
        return [self.prepare_close, self.post_close, self.check_close, self.report_close,
                self.lock_period, self.record_close_event]  # fmt: skip
