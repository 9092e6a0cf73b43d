"""The ledger: journal entries posted exactly once, and the recognition schedule."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.db import DbConnection, insert_audit_event, workflow_ids
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.deal_flow import DealBalances
from models.ledger import Account, JournalEntry, JournalLine, recognition_entry
from models.money import Money
from models.recognition import RecognitionSchedule


async def insert_journal_entry(conn: DbConnection, entry: JournalEntry) -> bool:
    """Post `entry` unless its key was posted before; True when posted now.

    Balance is checked again by the database at commit (a deferred constraint trigger).
    """
    workflow_id, run_id = workflow_ids()
    entry_id = await conn.fetchval(
        """INSERT INTO journal_entry (key, entry_date, period, deal_id, description,
               workflow_id, run_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id""",
        entry.key, entry.entry_date, entry.period, entry.deal_id, entry.description,
        workflow_id, run_id,
    )  # fmt: skip
    if entry_id is None:
        return False
    await conn.executemany(
        """INSERT INTO journal_line (entry_id, account, debit, credit, currency, line_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [(entry_id, line.account.value, line.debit, line.credit, line.currency, line.line_id)
         for line in entry.lines],
    )  # fmt: skip
    return True


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


async def account_balance(
    conn: DbConnection, deal_id: str, account: Account, currency: str
) -> Money:
    """Debit-positive balance of one account for one deal."""
    value = await conn.fetchval(
        """SELECT coalesce(sum(l.debit - l.credit), 0) FROM journal_line l
           JOIN journal_entry e ON e.id = l.entry_id
           WHERE e.deal_id = $1 AND l.account = $2 AND l.currency = $3""",
        deal_id, account.value, currency,
    )  # fmt: skip
    return Money(amount=value, currency=currency)


async def lock_deal(conn: DbConnection, deal_id: str) -> None:
    """Serialise postings of one deal so balances read and written stay consistent."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ledger:{deal_id}")


class PostRecognitionInput(BaseModel):
    schedule: RecognitionSchedule
    as_of: date
    delivered_milestones: list[str] = []
    rules_version: str


class PostRecognitionResult(BaseModel):
    entry: JournalEntry | None
    balances: DealBalances


async def deal_balances(conn: DbConnection, deal_id: str, currency: str) -> DealBalances:
    """The deal's contract balances, all four accounts in one read."""
    rows = await conn.fetch(
        """SELECT l.account, sum(l.debit - l.credit) AS balance FROM journal_line l
           JOIN journal_entry e ON e.id = l.entry_id
           WHERE e.deal_id = $1 AND l.currency = $2 GROUP BY l.account""",
        deal_id, currency,
    )  # fmt: skip
    debit_balance = {r["account"]: r["balance"] for r in rows}

    def balance(account: Account) -> Money:
        return Money(amount=debit_balance.get(account.value, 0), currency=currency)

    return DealBalances(
        recognised=-balance(Account.REVENUE),
        deferred_revenue=-balance(Account.DEFERRED_REVENUE),
        unbilled_receivable=balance(Account.UNBILLED_RECEIVABLE),
        receivable=balance(Account.ACCOUNTS_RECEIVABLE),
    )


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def post_recognition(self, data: PostRecognitionInput) -> PostRecognitionResult:
        """Store the schedule and recognise what is earned by `as_of` and not yet recognised.

        The entry's key names the deal and the date, so a retried attempt finds the posted
        entry instead of posting again.
        """
        schedule = data.schedule
        deal_id, currency = schedule.deal_id, schedule.currency
        key = f"recognition:{deal_id}:{data.as_of.isoformat()}"
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, deal_id)
            entry = await fetch_journal_entry(conn, key)
            if entry is None:
                await self._store_schedule(conn, schedule)
                entry = await self._post_due(conn, data, key)
            return PostRecognitionResult(
                entry=entry, balances=await deal_balances(conn, deal_id, currency)
            )

    async def _post_due(
        self, conn: DbConnection, data: PostRecognitionInput, key: str
    ) -> JournalEntry | None:
        deal_id, currency = data.schedule.deal_id, data.schedule.currency
        done = await self._recognised_by_line(conn, deal_id, currency)
        delta = {
            k: v - done.get(k, Money.zero(currency)) for k, v in self._due_by_line(data).items()
        }
        delta = {k: v for k, v in delta.items() if v.amount > 0}
        entry = recognition_entry(
            key=key, deal_id=deal_id, entry_date=data.as_of,
            description=f"Revenue recognised for deal {deal_id} through {data.as_of}",
            revenue_by_line=delta,
            deferred_balance=-(await account_balance(conn, deal_id, Account.DEFERRED_REVENUE, currency)),
        )  # fmt: skip
        if entry is not None:
            await insert_journal_entry(conn, entry)
            await insert_audit_event(conn, AuditEvent(
                key=f"deal:{deal_id}:{key}", actor=SYSTEM_ACTOR, action="revenue.recognised",
                subject=f"deal:{deal_id}", rules_version=data.rules_version,
                after={"entry": key, "by_line": {k: str(v) for k, v in delta.items()}}))  # fmt: skip
        return entry

    def _due_by_line(self, data: PostRecognitionInput) -> dict[str, Money]:
        due: dict[str, Money] = defaultdict(lambda: Money.zero(data.schedule.currency))
        delivered = frozenset(data.delivered_milestones)
        for e in data.schedule.entries_recognisable_as_of(data.as_of, delivered):
            due[e.line_id] = due[e.line_id] + e.amount
        return dict(due)

    async def _recognised_by_line(
        self, conn: DbConnection, deal_id: str, currency: str
    ) -> dict[str, Money]:
        rows = await conn.fetch(
            """SELECT l.line_id, sum(l.credit - l.debit) AS amount FROM journal_line l
               JOIN journal_entry e ON e.id = l.entry_id
               WHERE e.deal_id = $1 AND l.account = $2 AND l.currency = $3 GROUP BY l.line_id""",
            deal_id, Account.REVENUE.value, currency,
        )  # fmt: skip
        return {r["line_id"]: Money(amount=r["amount"], currency=currency) for r in rows}

    async def _store_schedule(self, conn: DbConnection, schedule: RecognitionSchedule) -> None:
        await conn.executemany(
            """INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
                   recognition_date, amount, currency, kind, milestone_id, requires_event)
               VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING""",
            [(schedule.deal_id, n, e.line_id, e.period, e.recognition_date, e.amount.amount,
              e.amount.currency, str(e.kind), e.milestone_id, e.requires_event)
             for n, e in enumerate(schedule.entries, start=1)],
        )  # fmt: skip
