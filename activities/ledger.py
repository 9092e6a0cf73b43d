"""The ledger: journal entries posted exactly once, and the recognition schedule."""

from __future__ import annotations

from datetime import date

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity

from activities.db import DbConnection, insert_audit_event, workflow_ids
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.deal_flow import DealBalances
from models.ledger import (
    Account,
    JournalEntry,
    JournalLine,
    account_balances,
    recognition_entry,
)
from models.money import Money
from models.recognition import RecognitionSchedule


async def insert_journal_entry(conn: DbConnection, entry: JournalEntry) -> bool:
    """Post `entry` (header and lines in one statement) unless its key was posted before;
    True when posted now.

    Balance is checked again by the database at commit (a deferred constraint trigger).
    """
    workflow_id, run_id = workflow_ids()
    lines = entry.lines
    status: str = await conn.execute(
        """WITH posted AS (
               INSERT INTO journal_entry (key, entry_date, period, deal_id, description,
                   workflow_id, run_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id)
           INSERT INTO journal_line (entry_id, account, debit, credit, currency, line_id)
           SELECT posted.id, l.account, l.debit, l.credit, l.currency, l.line_id
           FROM posted, unnest($8::text[], $9::numeric[], $10::numeric[], $11::text[],
                               $12::text[]) WITH ORDINALITY
                AS l(account, debit, credit, currency, line_id, n)
           ORDER BY l.n""",
        entry.key, entry.entry_date, entry.period, entry.deal_id, entry.description,
        workflow_id, run_id,
        [line.account.value for line in lines], [line.debit for line in lines],
        [line.credit for line in lines], [line.currency for line in lines],
        [line.line_id for line in lines],
    )  # fmt: skip
    return not status.endswith(" 0")


async def fetch_journal_entry(conn: DbConnection, key: str) -> JournalEntry | None:
    """The posted entry with `key`, as the ledger holds it."""
    rows = await conn.fetch(
        """SELECT e.key, e.entry_date, e.deal_id, e.description, l.account, l.debit, l.credit,
                  l.currency, l.line_id
           FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
           WHERE e.key = $1 ORDER BY l.id""",
        key,
    )
    if not rows:
        return None
    first = rows[0]
    return JournalEntry(
        key=first["key"], entry_date=first["entry_date"], deal_id=first["deal_id"],
        description=first["description"],
        lines=[JournalLine(account=Account(r["account"]), debit=r["debit"], credit=r["credit"],
                           currency=r["currency"], line_id=r["line_id"]) for r in rows],
    )  # fmt: skip


class LedgerPosition(BaseModel):
    """One deal's ledger in one currency: debit-positive account balances and the revenue
    recognised so far per contract line."""

    currency: str
    accounts: dict[Account, Money]
    revenue_by_line: dict[str, Money]

    def after(self, entry: JournalEntry) -> DealBalances:
        """The deal's balances once `entry` is posted on top of this position."""
        posted = account_balances([entry], self.currency)
        zero = Money.zero(self.currency)
        accounts = {a: self.accounts.get(a, zero) + posted[a] for a in Account}
        return DealBalances.from_accounts(accounts, self.currency)

    def balances(self) -> DealBalances:
        return DealBalances.from_accounts(self.accounts, self.currency)


async def ledger_position(conn: DbConnection, deal_id: str, currency: str) -> LedgerPosition:
    """The deal's position, read in one query."""
    rows = await conn.fetch(
        """SELECT l.account, l.line_id, sum(l.debit - l.credit) AS balance FROM journal_line l
           JOIN journal_entry e ON e.id = l.entry_id
           WHERE e.deal_id = $1 AND l.currency = $2 GROUP BY l.account, l.line_id""",
        deal_id, currency,
    )  # fmt: skip
    zero = Money.zero(currency)
    accounts: dict[Account, Money] = {}
    revenue_by_line: dict[str, Money] = {}
    for r in rows:
        account, amount = Account(r["account"]), Money(amount=r["balance"], currency=currency)
        accounts[account] = accounts.get(account, zero) + amount
        if account is Account.REVENUE and r["line_id"] is not None:
            revenue_by_line[r["line_id"]] = revenue_by_line.get(r["line_id"], zero) - amount
    return LedgerPosition(currency=currency, accounts=accounts, revenue_by_line=revenue_by_line)


async def lock_deal(conn: DbConnection, deal_id: str) -> None:
    """Serialise postings of one deal so balances read and written stay consistent."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ledger:{deal_id}")


class PostRecognitionInput(BaseModel):
    """Post what the stored schedule makes due by `as_of` (the schedule itself is written
    with the contract, so only its key travels through the workflow's history)."""

    deal_id: str
    currency: str
    as_of: date
    delivered_milestones: list[str] = []
    rules_version: str
    occasion: str = Field(
        default="", description="Set when more than one posting may fall on the same day"
    )


class PostRecognitionResult(BaseModel):
    entry: JournalEntry | None
    balances: DealBalances


async def store_schedule(conn: DbConnection, schedule: RecognitionSchedule) -> None:
    """Write the contract's recognition schedule (version 1) in one statement, once; a retry
    writes nothing."""
    es = schedule.entries
    await conn.execute(
        """INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
               recognition_date, amount, currency, kind, milestone_id, requires_event)
           SELECT $1, 1, e.* FROM unnest($2::int[], $3::text[], $4::text[], $5::date[],
               $6::numeric[], $7::text[], $8::text[], $9::text[], $10::bool[]) AS e
           ON CONFLICT DO NOTHING""",
        schedule.deal_id, list(range(1, len(es) + 1)), [e.line_id for e in es],
        [e.period for e in es], [e.recognition_date for e in es],
        [e.amount.amount for e in es], [e.amount.currency for e in es],
        [str(e.kind) for e in es], [e.milestone_id for e in es], [e.requires_event for e in es],
    )  # fmt: skip


async def due_by_line(
    conn: DbConnection, deal_id: str, currency: str, as_of: date, delivered: list[str]
) -> dict[str, Money]:
    """Revenue the latest stored schedule makes recognisable by `as_of`, per line: entries
    dated on or before it that need no event, and the entries of accepted milestones
    (whenever they were expected: one delivered early is earned early). T&M entries need
    approved hours, never the schedule, so they are never due here (as in
    `RecognitionSchedule.entries_recognisable_as_of`)."""
    rows = await conn.fetch(
        """SELECT line_id, sum(amount) AS amount FROM recognition_schedule
           WHERE deal_id = $1 AND currency = $2
             AND version = (SELECT max(version) FROM recognition_schedule WHERE deal_id = $1)
             AND ((NOT requires_event AND recognition_date <= $3)
                  OR (kind = 'milestone' AND milestone_id = ANY($4::text[])))
           GROUP BY line_id""",
        deal_id, currency, as_of, delivered,
    )  # fmt: skip
    return {r["line_id"]: Money(amount=r["amount"], currency=currency) for r in rows}


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def post_recognition(self, data: PostRecognitionInput) -> PostRecognitionResult:
        """Recognise what the stored schedule makes due by `as_of` and is not yet recognised.

        The entry's key names the deal and the date, so a retried attempt finds the posted
        entry instead of posting again.
        """
        deal_id, currency = data.deal_id, data.currency
        key = f"recognition:{deal_id}:{data.as_of.isoformat()}"
        if data.occasion:
            key += f":{data.occasion}"
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, deal_id)
            posted = await fetch_journal_entry(conn, key)
            position = await ledger_position(conn, deal_id, currency)
            if posted is not None:
                return PostRecognitionResult(entry=posted, balances=position.balances())
            entry = await self._post_due(conn, data, key, position)
            balances = position.after(entry) if entry else position.balances()
            return PostRecognitionResult(entry=entry, balances=balances)

    async def _post_due(
        self, conn: DbConnection, data: PostRecognitionInput, key: str, position: LedgerPosition
    ) -> JournalEntry | None:
        deal_id, currency = data.deal_id, data.currency
        done = position.revenue_by_line
        due = await due_by_line(conn, deal_id, currency, data.as_of, data.delivered_milestones)
        delta = {k: v - done.get(k, Money.zero(currency)) for k, v in due.items()}
        delta = {k: v for k, v in delta.items() if v.amount > 0}
        entry = recognition_entry(
            key=key, deal_id=deal_id, entry_date=data.as_of,
            description=f"Revenue recognised for deal {deal_id} through {data.as_of}",
            revenue_by_line=delta,
            deferred_balance=-position.accounts.get(Account.DEFERRED_REVENUE, Money.zero(currency)),
        )  # fmt: skip
        if entry is not None:
            await insert_journal_entry(conn, entry)
            await insert_audit_event(conn, AuditEvent(
                key=f"deal:{deal_id}:{key}", actor=SYSTEM_ACTOR, action="revenue.recognised",
                subject=f"deal:{deal_id}", rules_version=data.rules_version,
                after={"entry": key, "by_line": {k: str(v) for k, v in delta.items()}}))  # fmt: skip
        return entry
