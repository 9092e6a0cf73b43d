"""Invoicing: numbers gap-free per issuing entity, each invoice and its posting once."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity

from activities.db import DbConnection, insert_audit_event, jsonable
from activities.ledger import (
    fetch_journal_entry,
    insert_journal_entry,
    ledger_position,
    lock_deal,
)
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.deal_flow import DealBalances
from models.invoice import Invoice, InvoiceDraft, invoice_number
from models.ledger import Account, JournalEntry, billing_entry
from models.money import Money


class IssueInvoiceInput(BaseModel):
    draft: InvoiceDraft
    idempotency_key: str
    rules_version: str


class IssueInvoiceResult(BaseModel):
    invoice: Invoice
    entry: JournalEntry | None = Field(
        description="None for an invoice of zero (a period a credit covers in full)"
    )
    issued_now: bool
    balances: DealBalances


class InvoicingActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def issue_invoice(self, data: IssueInvoiceInput) -> IssueInvoiceResult:
        """Number, store and post the invoice in one transaction.

        The number is taken from the entity's sequence row inside the transaction that
        stores the invoice, so a failed attempt consumes no number (no gaps), and the
        idempotency key returns the same invoice to a retried attempt.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, data.draft.deal_id)
            existing = await conn.fetchval(
                "SELECT document FROM invoice WHERE idempotency_key = $1", data.idempotency_key
            )
            if existing is not None:
                invoice = Invoice.model_validate(existing)
                entry = await fetch_journal_entry(conn, f"invoice:{invoice.number}")
                position = await ledger_position(conn, invoice.deal_id, invoice.currency)
                return IssueInvoiceResult(
                    invoice=invoice, entry=entry, issued_now=False, balances=position.balances()
                )
            return await issue_in_transaction(conn, data.draft, data.idempotency_key,
                                              data.rules_version)  # fmt: skip


async def issue_in_transaction(
    conn: DbConnection, draft: InvoiceDraft, key: str, rules_version: str
) -> IssueInvoiceResult:
    """Number, store and post `draft` inside the caller's transaction (which holds the
    deal's ledger lock and has checked `key` is new)."""
    invoice = await _number(conn, draft)
    await _store(conn, invoice, key)
    position = await ledger_position(conn, invoice.deal_id, invoice.currency)
    zero = Money.zero(invoice.currency)
    entry = None
    if not (invoice.subtotal.is_zero() and invoice.tax.is_zero()):
        entry = billing_entry(invoice, position.accounts.get(Account.UNBILLED_RECEIVABLE, zero),
                              -position.accounts.get(Account.DEFERRED_REVENUE, zero))  # fmt: skip
        await insert_journal_entry(conn, entry)
    kind = "credit_note" if invoice.total.amount < 0 else "invoice"
    await insert_audit_event(conn, AuditEvent(
        key=f"invoice:{invoice.number}:issued", actor=SYSTEM_ACTOR, action=f"{kind}.issued",
        subject=f"deal:{invoice.deal_id}",
        after={"number": invoice.number, "total": str(invoice.total), "reason": invoice.reason,
               "po_number": invoice.po_number, "due_date": invoice.due_date.isoformat()},
        rules_version=rules_version))  # fmt: skip
    balances = position.after(entry) if entry else position.balances()
    return IssueInvoiceResult(invoice=invoice, entry=entry, issued_now=True, balances=balances)


async def _number(conn: DbConnection, draft: InvoiceDraft) -> Invoice:
    sequence: int = await conn.fetchval(
        """INSERT INTO invoice_sequence (entity_code, series, last_number) VALUES ($1, $2, 1)
           ON CONFLICT (entity_code, series)
           DO UPDATE SET last_number = invoice_sequence.last_number + 1
           RETURNING last_number""",
        draft.entity.code, draft.series,
    )  # fmt: skip
    number = invoice_number(draft.entity.invoice_prefix, sequence, draft.series)
    return Invoice(**draft.model_dump(), number=number)


async def _store(conn: DbConnection, invoice: Invoice, key: str) -> None:
    sequence = int(invoice.number.rsplit("-", 1)[1])
    await conn.execute(
        """INSERT INTO invoice (number, entity_code, sequence, idempotency_key, deal_id,
               customer_id, currency, invoice_date, due_date, po_number, subtotal, tax,
               total, document, series)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        invoice.number, invoice.entity.code, sequence, key, invoice.deal_id,
        invoice.customer_id, invoice.currency, invoice.invoice_date, invoice.due_date,
        invoice.po_number, invoice.subtotal.amount, invoice.tax.amount, invoice.total.amount,
        jsonable(invoice), invoice.series,
    )  # fmt: skip
