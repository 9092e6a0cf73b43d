"""A month-end close on the real dev server and PostgreSQL, over a book of 2,000 contracts
seeded set-based (bench/close.py `seed_book`): five currencies; subscriptions of 12, 24 and
36 months, bundles with support, perpetual licences, milestone projects (some milestones
accepted, some not), T&M lines (posted outside the schedule, left alone by the close), a
third of the book recognised two months back, every 25th contract never billed.

The months before are closed by the same posting code, then every 50th contract gets a
halved schedule (a cumulative catch-up downwards), and the close of the period runs through
the CLI: posting, checks (revenue jumps when milestones are accepted: a case for finance),
sign-off refused while the case is open and for a billing person, then locked.

The period is in the 1900s (drawn per run), where no other test posts: the close scans
every contract of the shared database but finds nothing due there for theirs.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal

import asyncpg
import pytest
from temporalio.client import ScheduleActionStartWorkflow

from activities.close_posting import PeriodLocked, post_period
from activities.close_report import load_report
from bench.close import seed_amendments, seed_book
from models.case import Resolution, ResolutionAction
from models.close import (
    CHECK_PERIOD_DELTA,
    CHECK_POSTINGS,
    CloseStage,
    close_case_id,
    period_bounds,
    previous_period,
)
from models.deal import DealSubmission
from starter.close_commands import CLOSE_SCHEDULE_ID, ensure_close_schedule
from starter.services import Services
from tests.integration.helpers import case_state, wait_for_case
from tests.integration.test_cli_submit import revops
from workflows.exception_case import ExceptionCaseWorkflow
from workflows.month_end_close import MonthEndCloseWorkflow

pytestmark = pytest.mark.integration

CONTRACTS = 2_000
Key = tuple[str, str]  # (deal id, line id)


async def expected_catch_up(pool: asyncpg.Pool, prefix: str, last: date) -> dict[Key, Decimal]:
    """What the close must post per (deal, line), worked out in Python from the rows: due
    through `last` by the latest schedule version (milestones once accepted by then, T&M
    never) minus what is recognised (what was recognised later counts, but a reversal only
    takes back what was recognised through `last`)."""
    like = f"{prefix}-%"
    rows = await pool.fetch(
        "SELECT * FROM recognition_schedule WHERE deal_id LIKE $1 ORDER BY deal_id", like
    )
    accepted = {
        (r["deal_id"], r["milestone_id"]): r["accepted_on"]
        for r in await pool.fetch("SELECT * FROM milestone_delivery WHERE deal_id LIKE $1", like)
    }
    latest: dict[str, int] = defaultdict(int)
    for r in rows:
        latest[r["deal_id"]] = max(latest[r["deal_id"]], r["version"])
    due: dict[Key, Decimal] = defaultdict(Decimal)
    tm: set[Key] = set()
    for r in rows:
        key = (r["deal_id"], r["line_id"])
        due.setdefault(key, Decimal(0))
        if r["kind"] == "tm":
            tm.add(key)
        # Dated entries are due on their date; an accepted milestone from its acceptance.
        due_now = (not r["requires_event"] and r["recognition_date"] <= last) or (
            r["kind"] == "milestone"
            and accepted.get((r["deal_id"], r["milestone_id"]), date.max) <= last
        )
        if r["version"] == latest[r["deal_id"]] and due_now:
            due[key] += r["amount"]
    through: dict[Key, Decimal] = defaultdict(Decimal)
    ever: dict[Key, Decimal] = defaultdict(Decimal)
    for r in await pool.fetch(
        """SELECT e.deal_id, l.line_id, e.entry_date, l.credit - l.debit AS amount
           FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
           WHERE e.deal_id LIKE $1 AND l.account = '4000 Revenue'""",
        like,
    ):
        key = (r["deal_id"], r["line_id"])
        ever[key] += r["amount"]
        if r["entry_date"] <= last:
            through[key] += r["amount"]
    catch_up = {k: d - max(through[k], min(ever[k], d)) for k, d in due.items() if k not in tm}
    return {k: v for k, v in catch_up.items() if v}


async def posted_revenue(pool: asyncpg.Pool, period: str, prefix: str) -> dict[Key, Decimal]:
    rows = await pool.fetch(
        """SELECT e.deal_id, l.line_id, sum(l.credit - l.debit) AS amount
           FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
           WHERE e.key LIKE 'close:' || $1 || ':' || $2 || '-%' AND l.account = '4000 Revenue'
           GROUP BY 1, 2""",
        period, prefix,
    )  # fmt: skip
    return {(r["deal_id"], r["line_id"]): r["amount"] for r in rows}


async def entry_lines(pool: asyncpg.Pool, key: str) -> list[tuple[str, Decimal, Decimal]]:
    rows = await pool.fetch(
        """SELECT l.account, l.debit, l.credit FROM journal_entry e
           JOIN journal_line l ON l.entry_id = e.id WHERE e.key = $1 ORDER BY l.id""",
        key,
    )
    return [(r["account"], r["debit"], r["credit"]) for r in rows]


async def deferred_roll_forward(pool: asyncpg.Pool, period: str) -> dict[str, list[Decimal]]:
    """[opening, billings, recognised, closing] of 2400 per currency, each its own query."""
    first, last = period_bounds(period)
    queries = [
        "sum(l.credit - l.debit) FILTER (WHERE e.entry_date < $1)",
        "sum(l.credit) FILTER (WHERE e.entry_date >= $1)",
        "sum(l.debit) FILTER (WHERE e.entry_date >= $1)",
        "sum(l.credit - l.debit)",
    ]
    figures: dict[str, list[Decimal]] = defaultdict(list)
    for expression in queries:
        args = (first, last) if "$1" in expression else (last,)
        for r in await pool.fetch(
            f"""SELECT l.currency, coalesce({expression}, 0) AS amount
                FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
                WHERE l.account = '2400 Deferred revenue' AND e.entry_date <= ${len(args)}
                GROUP BY l.currency""",
            *args,
        ):
            figures[r["currency"]].append(r["amount"])
    return dict(figures)


async def test_a_close_over_two_thousand_contracts_ties_to_the_ledger_and_locks(
    services: Services,
) -> None:
    pool, prefix = services.pool, f"mec{uuid.uuid4().hex[:6]}"
    period = f"{random.randint(1960, 1995)}-{random.randint(1, 12):02d}"
    before, last = previous_period(period), period_bounds(period)[1]
    async with pool.acquire() as conn:
        await seed_book(conn, prefix, CONTRACTS, period)
    for month in (previous_period(before), before):  # the months before were closed
        await post_period(pool, month, rules_version=services.rules.version)
    async with pool.acquire() as conn:
        amended = await seed_amendments(conn, prefix)
    expected = await expected_catch_up(pool, prefix, last)

    # --- posting and checks: the close waits for the case its checks opened ---------------
    ran = await revops(services, "close", "run", period)
    assert ran.returncode == 0, ran.stderr
    case_id = close_case_id(period, CHECK_PERIOD_DELTA)
    assert f"close-{period} waits for 1 open case(s)" in ran.stdout
    assert case_id in ran.stdout and "waits for sign-off by finance, vp_finance, cfo" in ran.stdout
    handle = services.client.get_workflow_handle_for(MonthEndCloseWorkflow.run, f"close-{period}")
    state = await handle.query(MonthEndCloseWorkflow.state)
    assert state.stage is CloseStage.AWAITING_CASES

    posted = await posted_revenue(pool, period, prefix)
    assert posted == expected
    reversed_lines = [k for k, v in posted.items() if v < 0]
    assert amended > 0 and reversed_lines, "the halved schedules are caught up downwards"
    assert state.posting is not None and state.posting.entries == len({d for d, _ in posted})
    assert {c.check_id: c.passed for c in state.checks} == {
        CHECK_POSTINGS: True, CHECK_PERIOD_DELTA: False,
    }  # fmt: skip
    swings = state.checks[1]
    assert swings.failures > 0 and all(m.startswith(f"Deal {prefix}-") for m in swings.messages)

    # Entries: billed ahead → deferred revenue drawn; never billed → unbilled; halved → reversed.
    billed, never_billed, halved = (f"close:{period}:{prefix}-{n:07d}" for n in (2, 11, 51))
    assert [a for a, _, _ in await entry_lines(pool, billed)] == [
        "2400 Deferred revenue", "4000 Revenue",
    ]  # fmt: skip
    assert [a for a, _, _ in await entry_lines(pool, never_billed)] == [
        "1150 Unbilled receivable", "4000 Revenue",
    ]  # fmt: skip
    reversal = await entry_lines(pool, halved)
    assert [(a, d > 0, c > 0) for a, d, c in reversal] == [
        ("2400 Deferred revenue", False, True), ("4000 Revenue", True, False),
    ]  # fmt: skip

    # A second run of the posting posts nothing.
    again = await post_period(pool, period)
    assert (again.entries, again.lines) == (0, 0)
    assert await posted_revenue(pool, period, prefix) == expected

    # --- sign-off: refused while the case is open, and for someone without a finance role ----
    refused = await revops(services, "close", "signoff", period, "--actor", "aisha.khan")
    assert refused.returncode == 1
    assert f"close {period} has 1 open case(s): {case_id}" in refused.stdout
    await wait_for_case(services.client, case_id, lambda c: c.sla_deadline is not None)
    case = services.client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
    await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action=ResolutionAction.APPROVE, actor="aisha.khan", reason_code="CUSTOMER_CONFIRMED",
        note="milestones accepted this month"))  # fmt: skip
    assert (await case_state(services.client, case_id)).subject == f"close:{period}"
    billing = await revops(services, "close", "signoff", period, "--actor", "maria.santos")
    assert billing.returncode == 1 and "maria.santos (billing) holds none of" in billing.stdout

    signed = await revops(services, "close", "signoff", period, "--actor", "aisha.khan")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert f"close-{period} signed off by aisha.khan; {period} locked at" in signed.stdout
    final = await handle.result()
    assert final.stage is CloseStage.CLOSED and final.signed_off_by == "aisha.khan"

    # --- the report ties to the ledger exactly --------------------------------------------
    async with pool.acquire() as conn:
        report = await load_report(conn, period)
    assert report is not None and report.status == "final" and report.ties()
    ledger = await deferred_roll_forward(pool, period)
    assert {r.currency: [r.opening.amount, r.billings.amount, r.recognised.amount,
                         r.closing.amount] for r in report.roll_forward} == ledger  # fmt: skip
    for opening, billings, recognised, closing in ledger.values():
        assert opening + billings - recognised == closing
    assert {"USD", "EUR", "GBP", "JPY", "CAD"} <= set(ledger)
    revenue = {m.currency: m.amount for m in report.revenue_by_currency}
    for amounts in (report.revenue_by_customer, report.revenue_by_product):
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for line in amounts:
            totals[line.amount.currency] += line.amount.amount
        assert totals == revenue
    assert {p.product for p in report.revenue_by_product} >= {
        "Platform subscription", "Premium support", "Implementation services",
    }  # fmt: skip
    assert any(c.customer_id.startswith(f"{prefix}-co-") for c in report.unbilled_by_customer)
    printed = await revops(services, "close", "report", period)
    assert printed.returncode == 0 and "ties" in printed.stdout and "OFF by" not in printed.stdout

    # --- the locked period refuses entries; corrections go to an open period -----------------
    with pytest.raises(asyncpg.CheckViolationError, match=f"accounting period {period} is locked"):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """WITH e AS (INSERT INTO journal_entry (key, entry_date, period, deal_id,
                                  description) VALUES ($1, $2, $3, $4, 'late correction')
                              RETURNING id)
                   INSERT INTO journal_line (entry_id, account, debit, credit, currency)
                   SELECT id, a, d, c, 'USD' FROM e, (VALUES ('1150 Unbilled receivable', 5, 0),
                                                     ('4000 Revenue', 0, 5)) AS x(a, d, c)""",
                f"it:{prefix}:late", last, period, f"{prefix}-0000002",
            )  # fmt: skip
    with pytest.raises(PeriodLocked, match=f"accounting period {period} is locked"):
        await post_period(pool, period)

    audited = await pool.fetch(
        "SELECT action, actor FROM audit_event WHERE subject = $1 ORDER BY seq", f"close:{period}"
    )
    actions = [r["action"] for r in audited]
    assert actions.count("close.posted") >= CONTRACTS // 1000  # one per batch that posted
    # The case opens (and mails finance) while the draft report is stored: any order there.
    assert sorted(a for a in actions if a != "close.posted") == sorted([
        "close.checked", "case.opened", "notification.sent", "close.reported", "case.resolved",
        "close.signed_off", "close.locked", "close.reported",
    ])  # fmt: skip
    assert actions[-3:] == ["close.signed_off", "close.locked", "close.reported"]
    assert ("close.signed_off", "aisha.khan") in {(r["action"], r["actor"]) for r in audited}
    sample = await pool.fetchval(
        "SELECT deal FROM contract WHERE deal_id = $1", f"{prefix}-0000007"
    )
    assert DealSubmission.model_validate(sample).milestones, "seeded deals are real deals"


# --- the per-statement balance check (migration 0008) ------------------------------------

BALANCED_OR_NOT = """
WITH e AS (INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
           VALUES ($1, '1958-03-31', '1958-03', 'it-balance', 'bulk posting') RETURNING id)
INSERT INTO journal_line (entry_id, account, debit, credit, currency)
SELECT id, a, d, c, 'EUR' FROM e, (VALUES ('2400 Deferred revenue', 100.00, 0),
                                          ('4000 Revenue', 0, $2::numeric)) AS x(a, d, c)
"""


async def test_a_bulk_statement_is_checked_for_balance_when_it_ends_not_at_commit(
    services: Services,
) -> None:
    """Under `revops.balance_per_statement` an unbalanced entry is refused by the statement
    that wrote it (the same message as at commit); a balanced one is posted."""
    refused_key, posted_key = (f"it:balance:{uuid.uuid4().hex}" for _ in range(2))
    async with services.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            async with conn.transaction():
                await conn.execute("SET LOCAL revops.balance_per_statement = 'on'")
                await conn.execute(BALANCED_OR_NOT, refused_key, Decimal("90.00"))
        async with conn.transaction():
            await conn.execute("SET LOCAL revops.balance_per_statement = 'on'")
            await conn.execute(BALANCED_OR_NOT, posted_key, Decimal("100.00"))

    assert re.fullmatch(
        r"journal entry \d+ does not balance in EUR: debits - credits = 10\.0+", str(refused.value)
    )
    counts = await services.pool.fetch(
        "SELECT key FROM journal_entry WHERE key = ANY($1::text[])", [refused_key, posted_key]
    )
    assert [r["key"] for r in counts] == [posted_key]


async def test_the_worker_keeps_one_monthly_schedule_and_an_operators_pause(
    services: Services,
) -> None:
    """`month-end-close`: 06:00 UTC on the 1st, starting `ScheduledCloseWorkflow` under the
    worker's rules version; creating it again only refreshes its action."""
    client, queue = services.client, services.settings.task_queue
    first = await ensure_close_schedule(client, queue, services.rules.version)
    schedule = client.get_schedule_handle(CLOSE_SCHEDULE_ID)
    await schedule.pause(note="it: paused by an operator")
    again = await ensure_close_schedule(client, queue, "another-version")
    described = (await schedule.describe()).schedule

    assert first in ("created", "updated") and again == "updated"
    [calendar] = described.spec.calendars
    assert [(r.start, r.end) for r in calendar.hour] == [(6, 6)]
    assert [(r.start, r.end) for r in calendar.day_of_month] == [(1, 1)]
    assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
    action = described.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("ScheduledCloseWorkflow", queue)
    assert described.state.paused and described.state.note == "it: paused by an operator"
    await ensure_close_schedule(client, queue, services.rules.version)
    await schedule.unpause()
