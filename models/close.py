"""Month-end close (SPEC §5, issue 5): the vocabulary and the pure rules of closing a period.

A close of period P ('YYYY-MM') posts, per contract, what the latest recognition schedule
makes due through P's last day and is not yet recognised (one entry per deal, key
`close:<P>:<deal id>`), checks the postings against the schedule and the revenue against
P-1, waits for finance's sign-off, locks P and reports the deferred-revenue roll-forward.
The set-based SQL lives in `activities.close`; what can be computed on values lives here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.calendar_math import add_months, month_end, period_label
from models.money import Money
from models.rules import ClosePolicy, Role

Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="'YYYY-MM'")]

CHECK_POSTINGS = "close.postings_vs_schedule"
CHECK_PERIOD_DELTA = "close.period_delta"


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of `period` ('2026-02' -> 2026-02-01, 2026-02-28)."""
    first = date(int(period[:4]), int(period[5:7]), 1)
    return first, month_end(first)


def previous_period(period: str) -> str:
    """The month before `period` ('2026-01' -> '2025-12')."""
    return period_label(add_months(period_bounds(period)[0], -1))


def period_before(day: date) -> str:
    """The last month that is over on `day` (a close on 2026-12-01 closes '2026-11')."""
    return period_label(day.replace(day=1) - timedelta(days=1))


def period_is_over(period: str, today: date) -> bool:
    """True once `today` is after the period's last day: only then is its revenue earned."""
    return today > period_bounds(period)[1]


def close_workflow_id(period: str) -> str:
    return f"close-{period}"


def close_subject(period: str) -> str:
    return f"close:{period}"


def close_case_id(period: str, check_id: str) -> str:
    """`case-<subject>-<check>`, as deal cases are named (DESIGN decision 2)."""
    return f"case-close-{period}-{check_id}"


# --- the checks ----------------------------------------------------------------------------


class LineMismatch(BaseModel):
    """A contract line whose recognised revenue through P differs from what is due."""

    model_config = ConfigDict(frozen=True)

    deal_id: str
    line_id: str
    due: Money = Field(description="Due through P by the latest schedule")
    recognised: Money = Field(description="Revenue credits - debits on the line through P")

    def message(self, period: str) -> str:
        gap = self.recognised - self.due
        how = f"{Money(amount=abs(gap.amount), currency=gap.currency)} " + (
            "too much" if gap.amount > 0 else "short"
        )
        return (
            f"Deal {self.deal_id} line {self.line_id}: recognised {self.recognised} through "
            f"{period} but {self.due} is due by the schedule ({how})"
        )


class RevenueSwing(BaseModel):
    """A contract whose revenue in P moved against P-1."""

    model_config = ConfigDict(frozen=True)

    deal_id: str
    previous: Money = Field(description="Revenue in P-1")
    current: Money = Field(description="Revenue in P")

    def message(self, period: str) -> str:
        change = self.current - self.previous
        percent = (
            "new revenue"
            if self.previous.is_zero()
            else f"{change.amount * 100 / abs(self.previous.amount):+.1f}%"
        )
        return (
            f"Deal {self.deal_id}: revenue {self.current} in {period} against "
            f"{self.previous} in {previous_period(period)} ({signed(change)}, {percent})"
        )


def signed(amount: Money) -> str:
    """'+1,200.00 USD', '-50.00 EUR': a change as finance reads it."""
    sign = "-" if amount.amount < 0 else "+"
    return sign + Money(amount=abs(amount.amount), currency=amount.currency).format()


def swing_exceeds(previous: Money, current: Money, percent: Decimal, floor: Money) -> bool:
    """True when revenue moved by more than `percent` of the previous month AND by more than
    the absolute `floor` (so a small contract's rounding never trips it). From zero, any
    change above the floor counts."""
    change = abs((current - previous).amount)
    if change <= floor.amount:
        return False
    if previous.is_zero():
        return True
    return change * 100 > percent * abs(previous.amount)


def floor_in(currency: str, policy: ClosePolicy, usd_rates: dict[str, Decimal]) -> Money | None:
    """The swing floor in `currency` (policy floor in USD over USD per unit); None when the
    currency has no rate, in which case only the percentage applies."""
    rate = usd_rates.get(currency)
    if not rate:
        return None
    return Money(amount=policy.period_delta_floor_usd / rate, currency=currency)


class CheckResult(BaseModel):
    """One anomaly check of a close: passed or not, how many failed, the first messages."""

    check_id: str
    passed: bool
    failures: int = Field(description="Lines (postings check) or contracts (delta check)")
    messages: list[str] = Field(description="The first failures, worst first")
    evidence: dict[str, str] = Field(default_factory=dict)
    case_id: str | None = Field(default=None, description="The case opened when it failed")
    case_status: str | None = None

    def summary(self) -> str:
        if self.passed:
            return f"{self.check_id}: passed"
        return f"{self.check_id}: {self.failures} failed"


# --- the report ----------------------------------------------------------------------------


class RollForward(BaseModel):
    """Deferred revenue (2400, credit balance) through P in one currency.

    opening + billings - recognised must equal closing, the balance read from the ledger on
    its own; `ties` says whether it does.
    """

    model_config = ConfigDict(frozen=True)

    currency: str
    opening: Money = Field(description="2400 credit balance before P")
    billings: Money = Field(description="Credits to 2400 dated in P")
    recognised: Money = Field(description="Debits to 2400 dated in P")
    closing: Money = Field(description="2400 credit balance at the end of P, from the ledger")

    @property
    def computed_closing(self) -> Money:
        return self.opening + self.billings - self.recognised

    @property
    def difference(self) -> Money:
        return self.closing - self.computed_closing

    @property
    def ties(self) -> bool:
        return self.difference.is_zero()


class CustomerAmount(BaseModel):
    customer_id: str
    name: str
    amount: Money


class ProductAmount(BaseModel):
    product: str
    amount: Money


ReportStatus = Literal["draft", "final"]


class CloseReport(BaseModel):
    """The close report of P: stored whole in `close_report`; workflows carry `summary()`."""

    period: Period
    status: ReportStatus = Field(description="draft before the lock, final once locked")
    generated_at: datetime
    rules_version: str
    roll_forward: list[RollForward] = Field(description="Per currency")
    revenue_by_currency: list[Money] = Field(description="Revenue (4000) dated in P")
    revenue_by_customer: list[CustomerAmount] = Field(description="Largest first")
    revenue_by_product: list[ProductAmount] = Field(description="Largest first")
    unbilled_by_customer: list[CustomerAmount] = Field(description="1150 balance at P's end")
    customers_with_revenue: int
    customers_with_unbilled: int
    checks: list[CheckResult]

    def ties(self) -> bool:
        return all(r.ties for r in self.roll_forward)

    def summary(self, top: int = 10) -> CloseReport:
        """The report with its customer lists cut to the `top` largest of each currency,
        small enough for a workflow's state (the whole report stays in the database)."""
        return self.model_copy(
            update={
                "revenue_by_customer": largest_per_currency(self.revenue_by_customer, top),
                "unbilled_by_customer": largest_per_currency(self.unbilled_by_customer, top),
            }
        )


def largest_per_currency(amounts: list[CustomerAmount], top: int) -> list[CustomerAmount]:
    """The `top` largest amounts of each currency, in currency order, largest first."""
    ordered = sorted(amounts, key=lambda a: (a.amount.currency, -a.amount.amount, a.customer_id))
    kept: list[CustomerAmount] = []
    for currency in sorted({a.amount.currency for a in ordered}):
        kept += [a for a in ordered if a.amount.currency == currency][:top]
    return kept


# --- the workflow's state and messages --------------------------------------------------


class CloseStage(StrEnum):
    POSTING = "posting"
    CHECKING = "checking"
    AWAITING_CASES = "awaiting_cases"
    AWAITING_SIGNOFF = "awaiting_signoff"
    LOCKING = "locking"
    CLOSED = "closed"


SIGNOFF_STAGES = frozenset({CloseStage.AWAITING_CASES, CloseStage.AWAITING_SIGNOFF})


class CloseInput(BaseModel):
    period: Period
    rules_version: str = Field(description="Thresholds and the directory come from this version")


class ScheduledCloseInput(BaseModel):
    rules_version: str


class ClosePlan(BaseModel):
    """What the close needs from the stored rules: thresholds and who may sign off."""

    rules_version: str
    policy: ClosePolicy
    usd_rates: dict[str, Decimal]
    roles_of: dict[str, list[Role]] = Field(description="person -> roles (the directory)")
    owners: dict[str, Role] = Field(description="check id -> the role owning its cases")


class PostingTotals(BaseModel):
    """What a close posting wrote (a re-run writes nothing)."""

    contracts: int = Field(default=0, description="Contracts scanned")
    entries: int = 0
    lines: int = 0
    batches: int = 0
    revenue: list[Money] = Field(
        default_factory=list, description="Net revenue posted, per currency"
    )


class CloseSignOff(BaseModel):
    """Finance's sign-off of a close; the actor's roles come from the directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(min_length=1, description="Person id from rules/directory.yaml")
    note: str = ""


class SignOffRefusal(BaseModel):
    at: datetime
    actor: str
    why: list[str]


class OpenCloseCase(BaseModel):
    case_id: str
    check_id: str
    status: str = "open"


class CloseState(BaseModel):
    """What the `state` query of `close-<P>` returns."""

    period: Period
    stage: CloseStage
    rules_version: str
    started_at: datetime
    posting: PostingTotals | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    cases: list[OpenCloseCase] = Field(default_factory=list)
    signed_off_by: str | None = None
    signed_off_at: datetime | None = None
    locked_at: datetime | None = None
    report: CloseReport | None = Field(default=None, description="Draft, then final (summary)")
    refusals: list[SignOffRefusal] = Field(default_factory=list)

    def open_cases(self) -> list[OpenCloseCase]:
        return [c for c in self.cases if c.status == "open"]


def signoff_problems(state: CloseState, signoff: CloseSignOff, plan: ClosePlan | None) -> list[str]:
    """Why `signoff` cannot sign the close off now (empty when it can)."""
    period = state.period
    if state.signed_off_by is not None:
        return [f"close {period} is already signed off by {state.signed_off_by}"]
    if plan is None or state.stage not in SIGNOFF_STAGES:
        return [f"close {period} is {state.stage.value}: sign-off comes after the checks"]
    problems: list[str] = []
    open_cases = state.open_cases()
    if open_cases:
        listed = ", ".join(f"{c.case_id} ({c.check_id})" for c in open_cases)
        problems.append(
            f"close {period} has {len(open_cases)} open case(s): {listed}; resolve them first"
        )
    roles = plan.roles_of.get(signoff.actor)
    allowed = ", ".join(r.value for r in plan.policy.signoff_roles)
    if roles is None:
        problems.append(f"{signoff.actor} is not in the role directory")
    elif not set(roles) & set(plan.policy.signoff_roles):
        held = ", ".join(r.value for r in roles)
        problems.append(
            f"{signoff.actor} ({held}) holds none of {allowed}, the roles that sign a close off"
        )
    return problems
