"""Month-end close posting against PostgreSQL's own floor, measured in the same run.

    python -m bench.close                       # 100,000 contracts, close of 2026-10
    python -m bench.close --contracts 20000 --batch 1000 --concurrency 2

On one embedded PostgreSQL (a fresh one in a temporary directory, or DATABASE_URL):
1. seed N active contracts set-based (`seed_book`): customers, contracts (the deal as JSON),
   recognition schedules, billing entries, milestone acceptances, a third of the book already
   recognised two months back, T&M revenue posted outside the schedule;
2. the close posting of the period (`activities.close.post_period`), timed;
3. the baseline: one raw `INSERT ... SELECT` writing the same journal_entry and journal_line
   rows again into scratch tables of the same shape (`LIKE ... INCLUDING ALL`: keys,
   indexes, checks), timed;
4. the close posting once more (it must post nothing), then the checks and the report, timed.
Target (issue 5): the close posting within 3x the raw statement.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

import asyncpg

from activities.close_checks import run_checks
from activities.close_posting import post_period
from activities.close_report import roll_forward
from activities.db import DbConnection, as_owner, create_pool
from models.close import ClosePlan, period_bounds, previous_period
from models.rules import ClosePolicy
from starter import event_loop
from starter.database import migrate_async
from starter.embedded_postgres import EmbeddedPostgres
from starter.ports import free_ports

T = TypeVar("T")
USD_RATES = {"USD": "1", "EUR": "1.08", "GBP": "1.27", "JPY": "0.0067", "CAD": "0.73"}

# One row per contract: who, what kind, which currency, the term. Every contract runs
# through the period closed ($period_start): ratable terms of 12, 24 or 36 months started up
# to a term ago, milestone projects started up to two months before.
SEED_CONTRACTS = """
CREATE TEMP TABLE seed_contract ON COMMIT DROP AS
WITH g AS (
    SELECT i, (ARRAY['USD','USD','USD','USD','USD','EUR','EUR','GBP','JPY','CAD'])[i % 10 + 1]
               AS currency,
           CASE WHEN i % 8 < 4 THEN 'subscription' WHEN i % 8 < 6 THEN 'bundle'
                WHEN i % 8 = 6 THEN 'licence' ELSE 'milestone' END AS kind,
           CASE WHEN i % 8 = 7 THEN 4 ELSE (ARRAY[12, 24, 36])[(i / 8) % 3 + 1] END AS months
    FROM generate_series(1, $2::int) AS i
)
SELECT i, $1 || '-' || lpad(i::text, 7, '0') AS deal_id,
       $1 || '-co-' || lpad(((i - 1) / 3 + 1)::text, 6, '0') AS customer_id,
       currency, kind, months,
       CASE currency WHEN 'JPY' THEN 0 ELSE 2 END AS digits,
       (CASE currency WHEN 'JPY' THEN 150 ELSE 1 END * (1200 + (i * 7919) % 48000))::numeric
           AS annual,
       ($3::date - make_interval(months => CASE kind WHEN 'milestone' THEN i % 3
                                                   ELSE i % months END))::date AS start_date
FROM g
"""

SEED_LINES = """
CREATE TEMP TABLE seed_line ON COMMIT DROP AS
SELECT c.deal_id, c.i, c.currency, c.digits, c.start_date, c.months, l.line_id, l.product,
       l.product_type, l.recognition, round(c.annual * l.share, c.digits) AS total
FROM seed_contract c
CROSS JOIN LATERAL (VALUES
    ('L1', CASE c.kind WHEN 'licence' THEN 'Perpetual licence'
                       WHEN 'milestone' THEN 'Implementation services'
                       ELSE 'Platform subscription' END,
           CASE c.kind WHEN 'licence' THEN 'license' WHEN 'milestone' THEN 'services'
                       ELSE 'subscription' END,
           CASE c.kind WHEN 'licence' THEN 'perpetual_license' WHEN 'milestone' THEN 'milestone'
                       ELSE 'ratable' END,
           CASE c.kind WHEN 'licence' THEN 2.0 WHEN 'milestone' THEN 1.0
                       WHEN 'bundle' THEN 0.8 * c.months / 12 ELSE c.months / 12.0 END, true),
    ('L2', 'Premium support', 'support', 'ratable', 0.2 * c.months / 12,
           c.kind IN ('bundle', 'licence')),
    ('L9', 'Consulting hours', 'services', 'tm', 0.1, c.i % 20 = 3)
) AS l(line_id, product, product_type, recognition, share, present)
WHERE l.present
"""

CUSTOMERS = """
INSERT INTO customer (customer_id, name, legal_entity, billing_contact, billing_address,
                      payment_method, on_credit_hold, late_payments)
SELECT DISTINCT customer_id, 'Customer ' || customer_id, 'Customer ' || customer_id || ' Ltd',
       jsonb_build_object('name', 'Accounts payable', 'email', 'ap@example.com'),
       jsonb_build_object('line1', '1 Main Street', 'city', 'Springfield', 'country', 'US'),
       'wire', false, 0
FROM seed_contract
"""

# The deal as a valid DealSubmission, so that anything reading `contract.deal` can.
CONTRACTS = """
INSERT INTO contract (contract_id, deal_id, customer_id, currency, tcv, arr, tcv_usd, arr_usd,
                      start_date, end_date, billing_frequency, recognition_type, deal,
                      rules_version)
SELECT c.deal_id, c.deal_id, c.customer_id, c.currency, t.tcv, c.annual, t.tcv * r.rate,
       c.annual * r.rate, c.start_date, term.end_date,
       CASE c.kind WHEN 'milestone' THEN 'milestone' ELSE 'annually' END,
       CASE c.kind WHEN 'milestone' THEN 'milestone' ELSE 'ratable' END,
       jsonb_build_object(
           'deal_id', c.deal_id, 'currency', c.currency,
           'customer', jsonb_build_object(
               'customer_id', c.customer_id, 'name', 'Customer ' || c.customer_id,
               'legal_entity', 'Customer ' || c.customer_id || ' Ltd',
               'billing_contact', jsonb_build_object('name', 'Accounts payable',
                                                     'email', 'ap@example.com'),
               'billing_address', jsonb_build_object('line1', '1 Main Street',
                                                     'city', 'Springfield', 'country', 'US')),
           'total_contract_value', t.tcv::text, 'annual_recurring_value', c.annual::text,
           'start_date', c.start_date, 'end_date', term.end_date,
           'billing_frequency', CASE c.kind WHEN 'milestone' THEN 'milestone' ELSE 'annually' END,
           'payment_terms', 'net_30', 'po_required', false, 'tax_jurisdiction', 'US',
           'recognition_type', CASE c.kind WHEN 'milestone' THEN 'milestone' ELSE 'ratable' END,
           'assigned_ae', 'jonas.becker', 'commission_plan_id', 'plan-2026',
           'milestones', CASE c.kind WHEN 'milestone' THEN (
               SELECT jsonb_agg(jsonb_build_object(
                   'milestone_id', 'M' || k, 'line_id', 'L1', 'description', 'Phase ' || k,
                   'due_date', (date_trunc('month', c.start_date + make_interval(months => k))
                                + interval '1 month - 1 day')::date,
                   'amount', (t.l1 * (ARRAY[0.3, 0.3, 0.4])[k])::text))
               FROM generate_series(1, 3) AS k) ELSE '[]'::jsonb END,
           'lines', t.lines),
       'bench'
FROM seed_contract c
JOIN (VALUES ('USD', 1.0), ('EUR', 1.08), ('GBP', 1.27), ('JPY', 0.0067), ('CAD', 0.73))
    AS r(currency, rate) ON r.currency = c.currency
JOIN (
    SELECT l.deal_id, sum(l.total) AS tcv, max(l.total) FILTER (WHERE l.line_id = 'L1') AS l1,
           jsonb_agg(jsonb_build_object(
               'line_id', l.line_id, 'product', l.product, 'product_type', l.product_type,
               'quantity', '1', 'list_price', l.total::text, 'net_price', l.total::text,
               'standalone_selling_price', l.total::text, 'recognition', l.recognition)
               ORDER BY l.line_id) AS lines
    FROM seed_line l GROUP BY l.deal_id
) AS t ON t.deal_id = c.deal_id
CROSS JOIN LATERAL (
    SELECT (c.start_date + make_interval(months => c.months) - interval '1 day')::date AS end_date
) AS term
"""

# Ratable and T&M lines: one whole month per row, dated the month's end; the last month takes
# what rounding left. Licences: all on the start date. Milestones: 30/30/40% at month ends.
SCHEDULE = """
INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
                                  recognition_date, amount, currency, kind, milestone_id,
                                  requires_event)
SELECT deal_id, 1, row_number() OVER (PARTITION BY deal_id ORDER BY line_id, recognition_date),
       line_id, to_char(recognition_date, 'YYYY-MM'), recognition_date, amount, currency, kind,
       milestone_id, kind IN ('tm', 'milestone')
FROM (
    SELECT l.deal_id, l.line_id, l.currency,
           (date_trunc('month', l.start_date + make_interval(months => k))
            + interval '1 month - 1 day')::date AS recognition_date,
           CASE WHEN k < l.months - 1 THEN round(l.total / l.months, l.digits)
                ELSE l.total - round(l.total / l.months, l.digits) * (l.months - 1) END AS amount,
           CASE l.recognition WHEN 'tm' THEN 'tm' ELSE 'ratable' END AS kind,
           NULL::text AS milestone_id
    FROM seed_line l CROSS JOIN LATERAL generate_series(0, l.months - 1) AS k
    WHERE l.recognition IN ('ratable', 'tm')
    UNION ALL
    SELECT deal_id, line_id, currency, start_date, total, 'point_in_time', NULL
    FROM seed_line WHERE recognition = 'perpetual_license'
    UNION ALL
    SELECT l.deal_id, l.line_id, l.currency,
           (date_trunc('month', l.start_date + make_interval(months => k))
            + interval '1 month - 1 day')::date,
           CASE WHEN k < 3 THEN round(l.total * 0.3, l.digits)
                ELSE l.total - 2 * round(l.total * 0.3, l.digits) END,
           'milestone', 'M' || k
    FROM seed_line l CROSS JOIN generate_series(1, 3) AS k
    WHERE l.recognition = 'milestone'
) s
"""

# Milestones due by the period's end are delivered and accepted three days before their due
# date, except every other third milestone and every fifth project.
MILESTONES = """
INSERT INTO milestone_delivery (deal_id, milestone_id, delivered_on, accepted_on, accepted_by,
                                evidence)
SELECT s.deal_id, s.milestone_id, s.recognition_date - 5, s.recognition_date - 3, 'seed',
       '{}'::jsonb
FROM recognition_schedule s JOIN seed_contract c ON c.deal_id = s.deal_id
WHERE s.kind = 'milestone' AND s.recognition_date <= $1
  AND NOT (s.milestone_id = 'M3' AND c.i % 2 = 0) AND c.i % 5 <> 0
"""

# Invoices (receivable against deferred revenue): ratable and licence lines annually in
# advance from the start date; milestones on acceptance. Every 25th contract is never billed
# (its revenue is an unbilled receivable).
BILLINGS = """
WITH bills AS (
    SELECT $1 || ':inv:' || s.deal_id || ':' || y AS key, s.deal_id, s.currency,
           (c.start_date + make_interval(years => y))::date AS entry_date, sum(s.amount) AS amount
    FROM recognition_schedule s
    JOIN seed_contract c ON c.deal_id = s.deal_id
    CROSS JOIN LATERAL (SELECT ((s.recognition_date - c.start_date) / 366)::int AS y) AS yr
    WHERE s.kind IN ('ratable', 'point_in_time') AND c.i % 25 <> 11
      AND (c.start_date + make_interval(years => y))::date <= $2
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT $1 || ':inv:' || s.deal_id || ':' || s.milestone_id, s.deal_id, s.currency,
           m.accepted_on, s.amount
    FROM recognition_schedule s
    JOIN milestone_delivery m ON m.deal_id = s.deal_id AND m.milestone_id = s.milestone_id
    JOIN seed_contract c ON c.deal_id = s.deal_id
),
entries AS (
    INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
    SELECT key, entry_date, to_char(entry_date, 'YYYY-MM'), deal_id, 'Invoice (seeded)'
    FROM bills RETURNING id, key
)
INSERT INTO journal_line (entry_id, account, debit, credit, currency)
SELECT e.id, x.account, x.debit, x.credit, b.currency
FROM entries e JOIN bills b ON b.key = e.key
CROSS JOIN LATERAL (VALUES ('1100 Accounts receivable', b.amount, 0),
                           ('2400 Deferred revenue', 0, b.amount)) AS x(account, debit, credit)
"""

# A third of the book was recognised two months back: revenue per line, deferred revenue
# drawn down up to what was billed by then, the rest unbilled.
RECOGNISED_BEFORE = """
WITH due AS (
    SELECT s.deal_id, s.line_id, s.currency, sum(s.amount) AS amount
    FROM recognition_schedule s
    JOIN seed_contract c ON c.deal_id = s.deal_id AND c.i % 3 = 0
    LEFT JOIN milestone_delivery m ON m.deal_id = s.deal_id AND m.milestone_id = s.milestone_id
    WHERE s.recognition_date <= $2 AND s.kind <> 'tm'
      AND (s.kind <> 'milestone' OR m.accepted_on <= $2)
    GROUP BY 1, 2, 3
),
deals AS (
    SELECT d.deal_id, d.currency, sum(d.amount) AS revenue,
           (SELECT coalesce(sum(jl.credit - jl.debit), 0) FROM journal_entry e
            JOIN journal_line jl ON jl.entry_id = e.id
            WHERE e.deal_id = d.deal_id AND e.entry_date <= $2
              AND jl.account = '2400 Deferred revenue') AS deferred
    FROM due d GROUP BY 1, 2
),
entries AS (
    INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
    SELECT $1 || ':rec:' || deal_id, $2, to_char($2::date, 'YYYY-MM'), deal_id,
           'Revenue recognised (seeded)'
    FROM deals RETURNING id, deal_id
)
INSERT INTO journal_line (entry_id, account, debit, credit, currency, line_id)
SELECT e.id, x.account, x.debit, 0, d.currency, NULL
FROM entries e JOIN deals d ON d.deal_id = e.deal_id
CROSS JOIN LATERAL (VALUES ('2400 Deferred revenue', least(d.revenue, greatest(d.deferred, 0))),
                           ('1150 Unbilled receivable',
                            d.revenue - least(d.revenue, greatest(d.deferred, 0))))
    AS x(account, debit)
WHERE x.debit > 0
UNION ALL
SELECT e.id, '4000 Revenue', 0, u.amount, u.currency, u.line_id
FROM entries e JOIN due u ON u.deal_id = e.deal_id WHERE u.amount > 0
"""

# T&M revenue the contract workflow posted when hours were approved: the close leaves it be.
TM_REVENUE = """
WITH hours AS (
    SELECT deal_id, line_id, currency, round(total / months, digits) AS amount
    FROM seed_line WHERE recognition = 'tm' AND start_date <= $2
),
entries AS (
    INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
    SELECT $1 || ':tm:' || deal_id, $2, to_char($2::date, 'YYYY-MM'), deal_id,
           'Approved hours recognised (seeded)'
    FROM hours RETURNING id, deal_id
)
INSERT INTO journal_line (entry_id, account, debit, credit, currency, line_id)
SELECT e.id, x.account, x.debit, x.credit, h.currency, x.line_id
FROM entries e JOIN hours h ON h.deal_id = e.deal_id
CROSS JOIN LATERAL (VALUES ('1150 Unbilled receivable', h.amount, 0, NULL),
                           ('4000 Revenue', 0, h.amount, h.line_id))
    AS x(account, debit, credit, line_id)
"""

# A price cut with a cumulative catch-up on every 50th contract: a new schedule version at
# half the amounts, so the next close reverses what was recognised beyond it.
AMENDMENTS = """
INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
                                  recognition_date, amount, currency, kind, milestone_id,
                                  requires_event)
SELECT s.deal_id, 2, s.entry_no, s.line_id, s.period, s.recognition_date,
       round(s.amount / 2, CASE s.currency WHEN 'JPY' THEN 0 ELSE 2 END), s.currency, s.kind,
       s.milestone_id, s.requires_event
FROM recognition_schedule s JOIN contract c ON c.deal_id = s.deal_id
WHERE s.deal_id LIKE $1 || '-%' AND s.version = 1 AND c.recognition_type = 'ratable'
  AND right(s.deal_id, 7)::int % $2 = 1
"""


async def seed_book(conn: DbConnection, prefix: str, contracts: int, period: str) -> None:
    """A book of `contracts` contracts running through `period`, with its history (see the
    SQL above), written set-based in one transaction. Ids start with `prefix`."""
    first, last = period_bounds(period)
    two_back = period_bounds(previous_period(previous_period(period)))[1]
    last_month_mid = period_bounds(previous_period(period))[0].replace(day=15)
    async with conn.transaction():
        await conn.execute("SET LOCAL revops.balance_per_statement = 'on'")
        await conn.execute(SEED_CONTRACTS, prefix, contracts, first)
        await conn.execute(SEED_LINES)
        await conn.execute("ANALYZE seed_contract")
        await conn.execute("ANALYZE seed_line")
        await conn.execute(CUSTOMERS)
        await conn.execute(CONTRACTS)
        await conn.execute(SCHEDULE)
        await conn.execute("ANALYZE contract, recognition_schedule")  # owner only; else a no-op
        await conn.execute(MILESTONES, last)
        await conn.execute(BILLINGS, f"seed:{prefix}", last)
        await conn.execute("ANALYZE milestone_delivery, journal_entry, journal_line")
        await conn.execute(RECOGNISED_BEFORE, f"seed:{prefix}", two_back)
        await conn.execute(TM_REVENUE, f"seed:{prefix}", last_month_mid)


async def seed_amendments(conn: DbConnection, prefix: str, every: int = 50) -> int:
    """Halve the schedule of every `every`-th ratable contract (version 2); contracts hit."""
    status: str = await conn.execute(AMENDMENTS, prefix, every)
    rows = int(status.split()[-1])
    count: int = await conn.fetchval(
        "SELECT count(DISTINCT deal_id) FROM recognition_schedule WHERE version = 2 "
        "AND deal_id LIKE $1 || '-%'",
        prefix,
    )
    return count if rows else 0


BASELINE = """
WITH entries AS (
    INSERT INTO bench_close_entry (id, key, entry_date, period, deal_id, description,
                                   workflow_id, run_id)
    SELECT id, key, entry_date, period, deal_id, description, workflow_id, run_id
    FROM journal_entry WHERE period = $1 AND key LIKE 'close:%'
    RETURNING id
)
INSERT INTO bench_close_line (entry_id, account, debit, credit, currency, line_id)
SELECT l.entry_id, l.account, l.debit, l.credit, l.currency, l.line_id
FROM journal_line l JOIN journal_entry e ON e.id = l.entry_id
WHERE e.period = $1 AND e.key LIKE 'close:%'
"""


async def baseline(pool: asyncpg.Pool, period: str) -> tuple[float, int, int]:
    """One raw INSERT ... SELECT of the close's rows into scratch tables of the same shape
    (columns, keys, indexes, checks and the lines' foreign key; no triggers)."""
    async with pool.acquire() as conn, as_owner(conn):  # the application role creates nothing
        await conn.execute("DROP TABLE IF EXISTS bench_close_line, bench_close_entry")
        for table in ("entry", "line"):
            await conn.execute(
                f"CREATE TABLE bench_close_{table} (LIKE journal_{table} INCLUDING ALL)"
            )
        await conn.execute("ALTER TABLE bench_close_line ADD FOREIGN KEY (entry_id) "
                           "REFERENCES bench_close_entry (id)")  # fmt: skip
        started = time.perf_counter()
        await conn.execute(BASELINE, period)
        elapsed = time.perf_counter() - started
        entries = await conn.fetchval("SELECT count(*) FROM bench_close_entry")
        lines = await conn.fetchval("SELECT count(*) FROM bench_close_line")
        for table in ("line", "entry"):
            await conn.execute(f"DROP TABLE bench_close_{table}")
    return elapsed, entries, lines


def bench_plan() -> ClosePlan:
    from decimal import Decimal

    return ClosePlan(rules_version="bench", policy=ClosePolicy(),
                     usd_rates={c: Decimal(r) for c, r in USD_RATES.items()}, roles_of={},
                     owners={})  # fmt: skip


async def settle(conn: DbConnection, superuser_url: str | None) -> None:
    """What a live database has had time to do after a bulk load: vacuumed and analysed by
    autovacuum, and checkpointed, so no phase pays for the seeding's leftovers."""
    async with as_owner(conn):
        await conn.execute("VACUUM (ANALYZE)")
    if superuser_url is not None:
        admin = await asyncpg.connect(superuser_url)
        try:
            await admin.execute("CHECKPOINT")
        finally:
            await admin.close()


async def timed(step: Awaitable[T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await step
    return time.perf_counter() - started, result


async def measure(
    url: str, superuser_url: str | None, contracts: int, period: str, batch: int, concurrency: int
) -> dict[str, float]:
    """Seconds per phase; checks that the raw statement wrote what the close did, that a
    second close posts nothing and that the postings match the schedule."""
    pool = await create_pool(url, max_size=concurrency + 1)
    try:
        async with pool.acquire() as conn:
            async with as_owner(conn):  # who may ANALYZE while seeding
                seconds = {"seed": (await timed(seed_book(conn, "bench", contracts, period)))[0]}
            await settle(conn, superuser_url)
        seconds["close"], posted = await timed(
            post_period(pool, period, batch_size=batch, concurrency=concurrency)
        )
        async with pool.acquire() as conn:
            await settle(conn, superuser_url)
        seconds["raw"], entries, lines = await baseline(pool, period)
        seconds["again"], again = await timed(
            post_period(pool, period, batch_size=batch, concurrency=concurrency)
        )
        async with pool.acquire() as conn:
            seconds["checks"], checks = await timed(run_checks(conn, period, bench_plan()))
            ties = all(r.ties for r in await roll_forward(conn, period))
    finally:
        await pool.close()
    assert (entries, lines) == (posted.entries, posted.lines), (entries, lines, posted)
    assert again.entries == 0 and checks[0].passed and ties, (again, checks[0], ties)
    seconds["rows"] = posted.entries + posted.lines
    print(f"contracts: {contracts:,}; close of {period} in batches of {batch:,}, {concurrency} "
          f"at a time; Python {platform.python_version()}, {os.cpu_count()} cores")  # fmt: skip
    print(f"seeded in {seconds['seed']:.1f} s; the close posted {posted.entries:,} entries and "
          f"{posted.lines:,} lines")  # fmt: skip
    return seconds


def print_figures(seconds: dict[str, float]) -> None:
    rows = seconds["rows"]
    print(f"{'phase':44} {'seconds':>8} {'rows/s':>10}")
    for name, key in [("baseline: raw INSERT ... SELECT", "raw"), ("close posting", "close"),
                      ("close posting again (posts nothing)", "again"),
                      ("anomaly checks (whole book)", "checks")]:  # fmt: skip
        print(f"{name:44} {seconds[key]:8.2f} {rows / seconds[key]:10,.0f}")
    ratio = seconds["close"] / seconds["raw"]
    print(f"close ÷ raw = {ratio:.2f} (target ≤ 3: {'MET' if ratio <= 3 else 'NOT MET'})")


async def bench(contracts: int, period: str, batch: int, concurrency: int) -> int:
    with tempfile.TemporaryDirectory(prefix="revops-bench-close-") as state:
        postgres, superuser_url = None, None
        url = os.environ.get("DATABASE_URL")
        if not url:
            postgres = EmbeddedPostgres(Path(state), free_ports(1)[0])
            url = postgres.start().url
            superuser_url = url.replace("://revops@", "://postgres@", 1)  # trust auth, local
        try:
            await migrate_async(url)
            print_figures(await measure(url, superuser_url, contracts, period, batch, concurrency))
        finally:
            if postgres is not None:
                postgres.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    return event_loop.run(bench(args.contracts, args.period, args.batch, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
