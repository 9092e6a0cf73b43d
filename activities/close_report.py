"""The close report of a period, read from the ledger: the deferred-revenue roll-forward
per currency (tied to the ledger's own closing balance), revenue by customer and by product,
unbilled receivables by customer, and the checks that ran."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from activities.close_posting import DEFERRED, REVENUE, UNBILLED
from activities.db import DbConnection, workflow_ids
from models.close import (
    CheckResult,
    CloseReport,
    CustomerAmount,
    ProductAmount,
    ReportStatus,
    RollForward,
    period_bounds,
)
from models.money import Money

ROLL_FORWARD_SQL = f"""
SELECT jl.currency,
       coalesce(sum(jl.credit - jl.debit) FILTER (WHERE e.entry_date < $1), 0) AS opening,
       coalesce(sum(jl.credit) FILTER (WHERE e.entry_date >= $1), 0) AS billings,
       coalesce(sum(jl.debit) FILTER (WHERE e.entry_date >= $1), 0) AS recognised
FROM journal_line jl JOIN journal_entry e ON e.id = jl.entry_id
WHERE jl.account = '{DEFERRED}' AND e.entry_date <= $2
GROUP BY jl.currency ORDER BY jl.currency
"""
# The closing balance on its own, so the roll-forward is checked against the ledger.
CLOSING_SQL = f"""
SELECT jl.currency, sum(jl.credit) - sum(jl.debit) AS closing
FROM journal_line jl JOIN journal_entry e ON e.id = jl.entry_id
WHERE jl.account = '{DEFERRED}' AND e.entry_date <= $1
GROUP BY jl.currency
"""
BY_CUSTOMER_SQL = """
SELECT coalesce(c.customer_id, '(no contract)') AS customer_id,
       coalesce(cu.name, '(no contract)') AS name, jl.currency, sum({amount}) AS amount
FROM journal_entry e
JOIN journal_line jl ON jl.entry_id = e.id
LEFT JOIN contract c ON c.deal_id = e.deal_id
LEFT JOIN customer cu ON cu.customer_id = c.customer_id
WHERE jl.account = $1 AND e.entry_date >= $2 AND e.entry_date <= $3
GROUP BY 1, 2, 3 HAVING sum({amount}) <> 0
ORDER BY jl.currency, amount DESC, customer_id
"""
REVENUE_BY_CUSTOMER_SQL = BY_CUSTOMER_SQL.format(amount="jl.credit - jl.debit")
UNBILLED_BY_CUSTOMER_SQL = BY_CUSTOMER_SQL.format(amount="jl.debit - jl.credit")
BY_PRODUCT_SQL = f"""
WITH posted AS (
    SELECT e.deal_id, jl.line_id, jl.currency, sum(jl.credit - jl.debit) AS amount
    FROM journal_entry e JOIN journal_line jl ON jl.entry_id = e.id
    WHERE e.period = $1 AND jl.account = '{REVENUE}'
    GROUP BY e.deal_id, jl.line_id, jl.currency
),
products AS (
    SELECT c.deal_id, l ->> 'line_id' AS line_id, l ->> 'product' AS product
    FROM contract c CROSS JOIN jsonb_array_elements(c.deal -> 'lines') l
    WHERE c.deal_id IN (SELECT deal_id FROM posted)
)
SELECT coalesce(p.product, '(no contract line)') AS product, r.currency, sum(r.amount) AS amount
FROM posted r
LEFT JOIN products p ON p.deal_id = r.deal_id AND p.line_id = r.line_id
GROUP BY 1, 2 HAVING sum(r.amount) <> 0
ORDER BY r.currency, amount DESC, product
"""


def _customers(rows: list[asyncpg.Record]) -> list[CustomerAmount]:
    return [
        CustomerAmount(customer_id=r["customer_id"], name=r["name"],
                       amount=Money(amount=r["amount"], currency=r["currency"]))
        for r in rows
    ]  # fmt: skip


async def roll_forward(conn: DbConnection, period: str) -> list[RollForward]:
    first, last = period_bounds(period)
    closing = {r["currency"]: r["closing"] for r in await conn.fetch(CLOSING_SQL, last)}
    return [
        RollForward(
            currency=(c := r["currency"]), opening=Money(amount=r["opening"], currency=c),
            billings=Money(amount=r["billings"], currency=c),
            recognised=Money(amount=r["recognised"], currency=c),
            closing=Money(amount=closing.get(c, Decimal(0)), currency=c),
        )
        for r in await conn.fetch(ROLL_FORWARD_SQL, first, last)
    ]  # fmt: skip


async def build_report(
    conn: DbConnection, period: str, status: ReportStatus, checks: list[CheckResult],
    rules_version: str,
) -> CloseReport:  # fmt: skip
    """The close report of `period`, read from the ledger in one transaction snapshot."""
    first, last = period_bounds(period)
    by_customer = _customers(await conn.fetch(REVENUE_BY_CUSTOMER_SQL, REVENUE, first, last))
    unbilled = _customers(await conn.fetch(UNBILLED_BY_CUSTOMER_SQL, UNBILLED, date.min, last))
    products = [
        ProductAmount(product=r["product"], amount=Money(amount=r["amount"], currency=r["currency"]))
        for r in await conn.fetch(BY_PRODUCT_SQL, period)
    ]  # fmt: skip
    revenue: dict[str, Money] = {}
    for c in by_customer:
        revenue[c.amount.currency] = revenue.get(c.amount.currency, Money.zero(c.amount.currency)) + c.amount  # fmt: skip
    return CloseReport(
        period=period, status=status, generated_at=datetime.now(UTC), rules_version=rules_version,
        roll_forward=await roll_forward(conn, period),
        revenue_by_currency=[revenue[c] for c in sorted(revenue)],
        revenue_by_customer=by_customer, revenue_by_product=products,
        unbilled_by_customer=unbilled,
        customers_with_revenue=len({c.customer_id for c in by_customer}),
        customers_with_unbilled=len({c.customer_id for c in unbilled}), checks=checks,
    )  # fmt: skip


async def store_report(conn: DbConnection, report: CloseReport) -> None:
    """Keep the report of the period (a final report is never replaced by a draft)."""
    workflow_id, run_id = workflow_ids()
    await conn.execute(
        """INSERT INTO close_report (period, status, report, rules_version, workflow_id, run_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (period) DO UPDATE SET status = EXCLUDED.status, report = EXCLUDED.report,
               rules_version = EXCLUDED.rules_version, workflow_id = EXCLUDED.workflow_id,
               run_id = EXCLUDED.run_id, updated_at = now()
           WHERE close_report.status = 'draft' OR EXCLUDED.status = 'final'""",
        report.period, report.status, report.model_dump(mode="json"), report.rules_version,
        workflow_id, run_id,
    )  # fmt: skip


async def load_report(conn: DbConnection, period: str) -> CloseReport | None:
    document = await conn.fetchval("SELECT report FROM close_report WHERE period = $1", period)
    return None if document is None else CloseReport.model_validate(document)
