"""Month-end close posting: for every contract, revenue due through the period's last day
and not yet recognised, posted as one journal entry per deal (`close:<P>:<deal id>`) in
set-based batches. Never one round trip per contract: each batch of contracts is one locking
statement and one posting statement. A second run posts nothing (the keys are unique and
nothing is due any more).

Takes a pool, so the bench and the tests run exactly what the activity runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import asyncpg
from pydantic import BaseModel, Field

from activities.db import DbConnection, insert_audit_event, workflow_ids
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.close import PostingTotals, close_subject, period_bounds
from models.ledger import Account
from models.money import Money

REVENUE, DEFERRED, UNBILLED = (
    Account.REVENUE.value,
    Account.DEFERRED_REVENUE.value,
    Account.UNBILLED_RECEIVABLE.value,
)
BATCH_SIZE = 1000  # contracts per transaction: each takes one advisory lock per deal
CONCURRENCY = 2  # batches in flight, one connection each


class PeriodLocked(Exception):
    """The period is locked: the close cannot post into it."""


# Revenue due through $last per (deal, line) of the latest schedule version (an accepted
# milestone is due from its acceptance, early or late), for the deals
# with ids in [$lo, $hi] (a schedule is written with its contract), and whether the line is
# T&M in any version (T&M and usage revenue is posted when approved or rated, never from the
# schedule). The schedule is read once, by a range scan of its primary key, and summed per
# version before the latest version is picked (far fewer rows to sort than the schedule).
DUE_LINES = """
per_version AS (
    SELECT s.deal_id, s.line_id, s.version, s.currency, bool_or(s.kind = 'tm') AS tm,
           coalesce(sum(s.amount) FILTER (
               WHERE (NOT s.requires_event AND s.recognition_date <= $last)
                      OR (s.kind = 'milestone' AND EXISTS (
                          SELECT FROM milestone_delivery m
                          WHERE m.deal_id = s.deal_id AND m.milestone_id = s.milestone_id
                            AND m.deal_id BETWEEN $lo AND $hi AND m.accepted_on <= $last))
           ), 0) AS due
    FROM recognition_schedule s
    WHERE s.deal_id BETWEEN $lo AND $hi
    GROUP BY s.deal_id, s.line_id, s.version, s.currency
),
schedule_lines AS (
    SELECT v.deal_id, v.line_id, v.currency, bool_or(v.tm) AS tm,
           coalesce(sum(v.due) FILTER (WHERE v.version = v.latest), 0) AS due
    FROM (SELECT p.*, max(p.version) OVER (PARTITION BY p.deal_id) AS latest
          FROM per_version p) v
    GROUP BY v.deal_id, v.line_id, v.currency
)"""

# One statement per batch of contracts: the catch-up per line, one entry per deal. A line
# is brought to what is due through P. What was recognised after P already counts toward
# it (revenue of P posted late is not posted twice), but a downward catch-up only reverses
# what was recognised through P (never revenue of a later period).
POST_BATCH = f"""
WITH {DUE_LINES},
ledger AS (
    -- Each entry's lines through the entry_id index (the LATERAL aggregate keeps it so): a
    -- hash join would read the whole journal_line table for every batch.
    SELECT e.deal_id, x.account, x.line_id, x.currency,
           coalesce(sum(x.amount) FILTER (WHERE e.entry_date <= $last), 0) AS through_p,
           sum(x.amount) AS all_time
    FROM journal_entry e
    CROSS JOIN LATERAL (
        SELECT jl.account, jl.line_id, jl.currency, sum(jl.credit - jl.debit) AS amount
        FROM journal_line jl
        WHERE jl.entry_id = e.id AND jl.account IN ('{REVENUE}', '{DEFERRED}', '{UNBILLED}')
        GROUP BY jl.account, jl.line_id, jl.currency
    ) x
    WHERE e.deal_id BETWEEN $lo AND $hi
    GROUP BY e.deal_id, x.account, x.line_id, x.currency
),
delta AS (
    -- Schedule and ledger side by side per line, summed rather than joined: no join plan to
    -- go wrong on a table whose statistics are stale.
    SELECT deal_id, line_id, currency,
           due - greatest(through_p, least(all_time, due)) AS amount
    FROM (
        SELECT deal_id, line_id, currency, bool_or(scheduled) AS scheduled, bool_or(tm) AS tm,
               sum(due) AS due, sum(through_p) AS through_p, sum(all_time) AS all_time
        FROM (SELECT deal_id, line_id, currency, true AS scheduled, tm, due,
                     0 AS through_p, 0 AS all_time
              FROM schedule_lines
              UNION ALL
              SELECT deal_id, line_id, currency, false, false, 0, through_p, all_time
              FROM ledger WHERE account = '{REVENUE}' AND line_id IS NOT NULL) f
        GROUP BY deal_id, line_id, currency
    ) l
    WHERE scheduled AND NOT tm
),
moves AS (
    -- Per deal, in its currency: the revenue to post and the contract balances through P.
    SELECT deal_id, currency, sum(revenue) AS revenue, sum(deferred) AS deferred,
           sum(unbilled) AS unbilled
    FROM (SELECT deal_id, currency, amount AS revenue, 0 AS deferred, 0 AS unbilled,
                 amount <> 0 AS moved
          FROM delta
          UNION ALL
          SELECT deal_id, currency, 0,
                 CASE account WHEN '{DEFERRED}' THEN through_p ELSE 0 END,
                 CASE account WHEN '{UNBILLED}' THEN -through_p ELSE 0 END, false
          FROM ledger WHERE account IN ('{DEFERRED}', '{UNBILLED}')) f
    GROUP BY deal_id, currency
    HAVING bool_or(moved)
),
entries AS (
    INSERT INTO journal_entry (key, entry_date, period, deal_id, description, workflow_id, run_id)
    SELECT 'close:' || $period || ':' || deal_id, $last, $period, deal_id,
           'Month-end close ' || $period || ': revenue brought to the schedule through '
               || $last::text, $workflow_id, $run_id
    FROM moves ORDER BY deal_id
    ON CONFLICT (key) DO NOTHING
    RETURNING id, deal_id
),
sides AS (
    -- Net presentation (docs/conventions.md): recognition draws deferred revenue down first,
    -- the rest is unbilled; a reversal clears unbilled first, the rest goes back to deferred.
    SELECT deal_id, currency,
           least(greatest(revenue, 0), greatest(deferred, 0)) AS from_deferred,
           least(greatest(-revenue, 0), greatest(unbilled, 0)) AS from_unbilled,
           revenue
    FROM moves
),
lines AS (
    SELECT deal_id, 1 AS n, '{DEFERRED}' AS account, from_deferred AS debit, 0 AS credit,
           currency, NULL::text AS line_id FROM sides
    UNION ALL
    SELECT deal_id, 2, '{UNBILLED}', greatest(revenue, 0) - from_deferred, 0, currency, NULL
    FROM sides
    UNION ALL
    SELECT deal_id, 3, '{UNBILLED}', 0, from_unbilled, currency, NULL FROM sides
    UNION ALL
    SELECT deal_id, 4, '{DEFERRED}', 0, greatest(-revenue, 0) - from_unbilled, currency, NULL
    FROM sides
    UNION ALL
    SELECT deal_id, 5, '{REVENUE}', greatest(-amount, 0), greatest(amount, 0), currency, line_id
    FROM delta WHERE amount <> 0
),
written AS (
    INSERT INTO journal_line (entry_id, account, debit, credit, currency, line_id)
    SELECT e.id, x.account, x.debit, x.credit, x.currency, x.line_id
    FROM entries e JOIN lines x ON x.deal_id = e.deal_id
    WHERE x.debit + x.credit > 0
    ORDER BY e.id, x.n, x.line_id
    RETURNING entry_id, account, debit, credit, currency
)
SELECT currency, count(DISTINCT entry_id) AS entries, count(*) AS lines,
       coalesce(sum(credit - debit) FILTER (WHERE account = '{REVENUE}'), 0) AS revenue
FROM written GROUP BY currency
"""


def numbered(sql: str, names: list[str]) -> str:
    """Named `$name` placeholders (readable SQL) to asyncpg's `$1..$n`, longest name first."""
    for name in sorted(names, key=len, reverse=True):
        sql = sql.replace(f"${name}", f"${names.index(name) + 1}")
    return sql


POST_BATCH_SQL = numbered(POST_BATCH, ["lo", "hi", "last", "period", "workflow_id", "run_id"])
# The same advisory lock per deal as every other posting (`activities.ledger.lock_deal`).
LOCK_BATCH_SQL = """SELECT pg_advisory_xact_lock(hashtext('ledger:' || deal_id)) FROM contract
                    WHERE deal_id BETWEEN $1 AND $2 ORDER BY deal_id"""


async def batch_bounds(conn: DbConnection, batch_size: int) -> list[tuple[str, str]]:
    """First and last deal id of each run of `batch_size` contracts, in deal id order."""
    rows = await conn.fetch(
        """SELECT min(deal_id) AS lo, max(deal_id) AS hi
           FROM (SELECT deal_id, (row_number() OVER (ORDER BY deal_id) - 1) / $1 AS batch
                 FROM contract) c
           GROUP BY batch ORDER BY batch""",
        batch_size,
    )
    return [(r["lo"], r["hi"]) for r in rows]


async def period_locked(conn: DbConnection, period: str) -> bool:
    status = await conn.fetchval("SELECT status FROM accounting_period WHERE period = $1", period)
    return bool(status == "locked")


async def _post_batch(
    pool: asyncpg.Pool, period: str, lo: str, hi: str, rules_version: str | None
) -> PostingTotals:
    last = period_bounds(period)[1]
    workflow_id, run_id = workflow_ids()
    async with pool.acquire() as conn, conn.transaction():
        # Balance is checked once for the whole statement (migration 0008), not per line.
        await conn.execute("SET LOCAL revops.balance_per_statement = 'on'")
        locked = await conn.execute(LOCK_BATCH_SQL, lo, hi)
        rows = await conn.fetch(POST_BATCH_SQL, lo, hi, last, period, workflow_id, run_id)
        totals = PostingTotals(
            contracts=int(locked.split()[-1]), batches=1,
            entries=sum(r["entries"] for r in rows), lines=sum(r["lines"] for r in rows),
            revenue=[Money(amount=r["revenue"], currency=r["currency"]) for r in rows],
        )  # fmt: skip
        if totals.entries:
            await insert_audit_event(conn, AuditEvent(
                key=f"close:{period}:posted:{lo}", actor=SYSTEM_ACTOR, action="close.posted",
                subject=close_subject(period), rules_version=rules_version,
                after={"contracts": {"from": lo, "to": hi}, "entries": totals.entries,
                       "lines": totals.lines, "revenue": [str(m) for m in totals.revenue]}))  # fmt: skip
    return totals


def merge_totals(a: PostingTotals, b: PostingTotals) -> PostingTotals:
    revenue: dict[str, Money] = {m.currency: m for m in a.revenue}
    for m in b.revenue:
        revenue[m.currency] = revenue[m.currency] + m if m.currency in revenue else m
    return PostingTotals(
        contracts=a.contracts + b.contracts, entries=a.entries + b.entries,
        lines=a.lines + b.lines, batches=a.batches + b.batches,
        revenue=[revenue[c] for c in sorted(revenue)],
    )  # fmt: skip


class PostingProgress(BaseModel):
    """How far a posting got: what a retried activity resumes from (its heartbeat)."""

    done: list[str] = Field(default_factory=list, description="First deal id of each batch done")
    totals: PostingTotals = Field(default_factory=PostingTotals)


async def post_period(
    pool: asyncpg.Pool,
    period: str,
    *,
    rules_version: str | None = None,
    batch_size: int = BATCH_SIZE,
    concurrency: int = CONCURRENCY,
    resume: PostingProgress | None = None,
    on_batch: Callable[[PostingProgress], None] | None = None,
) -> PostingTotals:
    """Post the close of `period` for every contract, `concurrency` batches at a time.

    Batches done in `resume` are skipped and its totals carried on (a retried activity);
    `on_batch` gets the progress after each batch. Posting twice is safe: the second run
    finds nothing due and the entry keys are unique.
    """
    progress = resume or PostingProgress()
    async with pool.acquire() as conn:
        if await period_locked(conn, period):
            raise PeriodLocked(
                f"accounting period {period} is locked: the close cannot post into it; "
                "corrections go into an open period"
            )
        done = set(progress.done)
        ranges = [r for r in await batch_bounds(conn, batch_size) if r[0] not in done]
    gate = asyncio.Semaphore(concurrency)

    async def run(lo: str, hi: str) -> None:
        nonlocal progress
        async with gate:
            posted = await _post_batch(pool, period, lo, hi, rules_version)
        progress = PostingProgress(done=sorted({*progress.done, lo}),
                                   totals=merge_totals(progress.totals, posted))  # fmt: skip
        if on_batch is not None:
            on_batch(progress)

    async with asyncio.TaskGroup() as group:
        for lo, hi in ranges:
            group.create_task(run(lo, hi))
    return progress.totals


async def lock(conn: DbConnection, period: str) -> datetime:
    """Lock `period`: from now on the database refuses entries dated in it."""
    locked_at: datetime = await conn.fetchval(
        """INSERT INTO accounting_period (period, status, locked_at) VALUES ($1, 'locked', now())
           ON CONFLICT (period) DO UPDATE SET status = 'locked',
               locked_at = coalesce(accounting_period.locked_at, now())
           RETURNING locked_at""",
        period,
    )
    return locked_at
