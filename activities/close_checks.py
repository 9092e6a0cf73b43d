"""The anomaly checks of a close: postings against the schedule (every deal and line, T&M
aside) and each contract's revenue against the month before, set-based over the whole book."""

from __future__ import annotations

from activities.close_posting import DUE_LINES, REVENUE, numbered
from activities.db import DbConnection
from models.close import (
    CHECK_PERIOD_DELTA,
    CHECK_POSTINGS,
    CheckResult,
    ClosePlan,
    LineMismatch,
    RevenueSwing,
    floor_in,
    period_bounds,
    previous_period,
    swing_exceeds,
)
from models.money import Money

MAX_FAILURES_READ = 10_000  # failing rows a check reads back (the count covers all)

# Every contract at once: the same due lines as the posting over the whole deal id range.
MISMATCHES_SQL = numbered(
    f"""
WITH {DUE_LINES},
recognised AS (
    SELECT e.deal_id, jl.line_id, jl.currency, sum(jl.credit - jl.debit) AS amount
    FROM journal_entry e JOIN journal_line jl ON jl.entry_id = e.id
    WHERE e.deal_id BETWEEN $lo AND $hi AND e.entry_date <= $last
      AND jl.account = '{REVENUE}' AND jl.line_id IS NOT NULL
    GROUP BY e.deal_id, jl.line_id, jl.currency
)
SELECT s.deal_id, s.line_id, s.currency, s.due, coalesce(r.amount, 0) AS recognised,
       count(*) OVER () AS failures
FROM schedule_lines s
LEFT JOIN recognised r
    ON r.deal_id = s.deal_id AND r.line_id = s.line_id AND r.currency = s.currency
WHERE NOT s.tm AND s.due <> coalesce(r.amount, 0)
ORDER BY abs(s.due - coalesce(r.amount, 0)) DESC, s.deal_id, s.line_id
LIMIT $limit""",
    ["lo", "hi", "last", "limit"],
)

# Contracts running through both whole months: a start or an end inside them is not an anomaly.
SWINGS_SQL = f"""
WITH revenue AS (
    SELECT e.deal_id, jl.currency,
           coalesce(sum(jl.credit - jl.debit) FILTER (WHERE e.period = $1), 0) AS current,
           coalesce(sum(jl.credit - jl.debit) FILTER (WHERE e.period = $2), 0) AS previous
    FROM journal_entry e JOIN journal_line jl ON jl.entry_id = e.id
    WHERE e.period IN ($1, $2) AND jl.account = '{REVENUE}'
    GROUP BY e.deal_id, jl.currency
)
SELECT r.deal_id, r.currency, r.current, r.previous
FROM revenue r
JOIN contract c ON c.deal_id = r.deal_id
LEFT JOIN unnest($5::text[], $6::numeric[]) AS f(currency, floor) ON f.currency = r.currency
WHERE c.start_date <= $3 AND c.end_date >= $4
  AND abs(r.current - r.previous) > coalesce(f.floor, 0)
  AND (r.previous = 0 OR abs(r.current - r.previous) * 100 > $7 * abs(r.previous))
ORDER BY abs(r.current - r.previous) DESC, r.deal_id
"""


async def check_postings(conn: DbConnection, period: str, plan: ClosePlan) -> CheckResult:
    """Recognised through P equals due through P on every (deal, line), T&M lines aside."""
    last = period_bounds(period)[1]
    everyone = await conn.fetchval("SELECT max(deal_id) FROM contract") or ""
    rows = await conn.fetch(MISMATCHES_SQL, "", everyone, last, MAX_FAILURES_READ)
    found = [
        LineMismatch(deal_id=r["deal_id"], line_id=r["line_id"],
                     due=Money(amount=r["due"], currency=r["currency"]),
                     recognised=Money(amount=r["recognised"], currency=r["currency"]))
        for r in rows
    ]  # fmt: skip
    failures = rows[0]["failures"] if rows else 0
    return CheckResult(
        check_id=CHECK_POSTINGS, passed=not found, failures=failures,
        messages=[m.message(period) for m in found[: plan.policy.messages_per_case]],
        evidence={"through": last.isoformat(), "lines_failing": str(failures)},
    )  # fmt: skip


async def check_swings(conn: DbConnection, period: str, plan: ClosePlan) -> CheckResult:
    """Revenue in P against P-1 per contract, beyond both tolerances of `close.yaml`."""
    policy, before = plan.policy, previous_period(period)
    first_before = period_bounds(before)[0]
    currencies = sorted(plan.usd_rates)
    floors = [floor_in(c, policy, plan.usd_rates) for c in currencies]
    rows = await conn.fetch(
        SWINGS_SQL, period, before, first_before, period_bounds(period)[1],
        [c for c, f in zip(currencies, floors, strict=True) if f is not None],
        [f.amount for f in floors if f is not None], policy.period_delta_percent,
    )  # fmt: skip
    swings = [
        RevenueSwing(deal_id=r["deal_id"],
                     previous=Money(amount=r["previous"], currency=r["currency"]),
                     current=Money(amount=r["current"], currency=r["currency"]))
        for r in rows
    ]  # fmt: skip
    zero_floor = {c: Money.zero(c) for c in {s.current.currency for s in swings}}
    swings = [
        s for s in swings
        if swing_exceeds(s.previous, s.current, policy.period_delta_percent,
                         floor_in(s.current.currency, policy, plan.usd_rates)
                         or zero_floor[s.current.currency])
    ]  # fmt: skip
    return CheckResult(
        check_id=CHECK_PERIOD_DELTA, passed=not swings, failures=len(swings),
        messages=[s.message(period) for s in swings[: policy.messages_per_case]],
        evidence={"against": before, "tolerance_percent": str(policy.period_delta_percent),
                  "floor_usd": str(policy.period_delta_floor_usd),
                  "contracts_failing": str(len(swings))},
    )  # fmt: skip


async def run_checks(conn: DbConnection, period: str, plan: ClosePlan) -> list[CheckResult]:
    """Both checks over one snapshot of the ledger."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # Whole-book scans: hash joins, whatever the statistics say (a table bulk-loaded a
        # minute ago has none, and a nested loop planned for 30 rows then meets 3 million).
        await conn.execute("SET LOCAL enable_nestloop = off")
        return [await check_postings(conn, period, plan), await check_swings(conn, period, plan)]
