"""Double-entry journal entries (SPEC §5, DESIGN decision 8).

Every entry balances per currency (checked here and again by the database), carries an
idempotency key so a retried posting happens once, and is never edited: corrections are
new entries. Contract balances are presented net, as ASC 606 does: revenue earned beyond
what was billed is an unbilled receivable (contract asset); billing beyond revenue is
deferred revenue (contract liability).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.invoice import Invoice
from models.money import Money


class Account(StrEnum):
    CASH = "1000 Cash"
    ACCOUNTS_RECEIVABLE = "1100 Accounts receivable"
    UNBILLED_RECEIVABLE = "1150 Unbilled receivable"
    TAX_PAYABLE = "2300 Tax payable"
    DEFERRED_REVENUE = "2400 Deferred revenue"
    REVENUE = "4000 Revenue"


class JournalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: Account
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    currency: str
    line_id: str | None = Field(default=None, description="Contract line (obligation), if any")

    @model_validator(mode="after")
    def _one_side(self) -> JournalLine:
        if self.debit < 0 or self.credit < 0 or (self.debit and self.credit):
            raise ValueError(f"{self.account}: a line is a non-negative debit or credit, not both")
        return self


class JournalEntry(BaseModel):
    """One balanced posting; `key` makes it happen once however often it is retried."""

    model_config = ConfigDict(frozen=True)

    key: str
    entry_date: date
    deal_id: str
    description: str
    lines: list[JournalLine]

    @property
    def period(self) -> str:
        return f"{self.entry_date:%Y-%m}"

    @model_validator(mode="after")
    def _balanced(self) -> JournalEntry:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.debit - line.credit
        unbalanced = {c: t for c, t in totals.items() if t != 0}
        if unbalanced or not self.lines:
            raise ValueError(f"entry {self.key} does not balance: {unbalanced or 'no lines'}")
        return self


def _dr(account: Account, amount: Money, line_id: str | None = None) -> JournalLine:
    return JournalLine(
        account=account, debit=amount.amount, currency=amount.currency, line_id=line_id
    )


def _cr(account: Account, amount: Money, line_id: str | None = None) -> JournalLine:
    return JournalLine(
        account=account, credit=amount.amount, currency=amount.currency, line_id=line_id
    )


def _nonzero(lines: Sequence[JournalLine]) -> list[JournalLine]:
    return [line for line in lines if line.debit or line.credit]


def billing_entry(
    invoice: Invoice, unbilled_balance: Money, deferred_balance: Money | None = None
) -> JournalEntry:
    """Issuing an invoice: the customer owes the total; the billed amount first clears any
    unbilled receivable, the rest is deferred until earned; tax is owed to the authority.

    A credit note (a negative total) is the mirror image: the receivable and the tax owed
    go down, and the amount first comes out of deferred revenue (`deferred_balance`, its
    credit balance); what was already earned beyond that becomes unbilled receivable."""
    if invoice.subtotal.amount < 0:
        return _credit_note_entry(invoice, deferred_balance or Money.zero(invoice.currency))
    cleared = min(unbilled_balance, invoice.subtotal) if unbilled_balance.amount > 0 else None
    cleared = cleared or Money.zero(invoice.currency)
    lines = [
        _dr(Account.ACCOUNTS_RECEIVABLE, invoice.total),
        _cr(Account.UNBILLED_RECEIVABLE, cleared),
        _cr(Account.DEFERRED_REVENUE, invoice.subtotal - cleared),
        _cr(Account.TAX_PAYABLE, invoice.tax),
    ]
    return JournalEntry(
        key=f"invoice:{invoice.number}",
        entry_date=invoice.invoice_date,
        deal_id=invoice.deal_id,
        description=f"Invoice {invoice.number} issued ({invoice.reason})",
        lines=_nonzero(lines),
    )


def _credit_note_entry(invoice: Invoice, deferred_balance: Money) -> JournalEntry:
    credited = -invoice.subtotal
    drawn = min(credited, deferred_balance) if deferred_balance.amount > 0 else None
    drawn = drawn or Money.zero(invoice.currency)
    lines = [
        _cr(Account.ACCOUNTS_RECEIVABLE, -invoice.total),
        _dr(Account.DEFERRED_REVENUE, drawn),
        _dr(Account.UNBILLED_RECEIVABLE, credited - drawn),
        _dr(Account.TAX_PAYABLE, -invoice.tax),
    ]
    return JournalEntry(
        key=f"invoice:{invoice.number}",
        entry_date=invoice.invoice_date,
        deal_id=invoice.deal_id,
        description=f"Credit note {invoice.number} issued ({invoice.reason})",
        lines=_nonzero(lines),
    )


def recognition_entry(
    *,
    key: str,
    deal_id: str,
    entry_date: date,
    description: str,
    revenue_by_line: dict[str, Money],
    deferred_balance: Money,
) -> JournalEntry | None:
    """Recognising revenue: it first draws down deferred revenue; beyond what was billed it
    becomes an unbilled receivable. None when there is nothing to recognise."""
    currency = deferred_balance.currency
    revenue = Money(
        amount=sum((m.amount for m in revenue_by_line.values()), Decimal(0)), currency=currency
    )
    if revenue.is_zero():
        return None
    drawn = min(revenue, deferred_balance) if deferred_balance.amount > 0 else Money.zero(currency)
    lines = [
        _dr(Account.DEFERRED_REVENUE, drawn),
        _dr(Account.UNBILLED_RECEIVABLE, revenue - drawn),
        *(
            _cr(Account.REVENUE, amount, line_id)
            for line_id, amount in sorted(revenue_by_line.items())
        ),
    ]
    return JournalEntry(key=key, entry_date=entry_date, deal_id=deal_id, description=description,
                        lines=_nonzero(lines))  # fmt: skip


def account_balances(entries: Sequence[JournalEntry], currency: str) -> dict[Account, Money]:
    """Debit-positive balance of each account over `entries` in one currency."""
    balances = {account: Money.zero(currency) for account in Account}
    for entry in entries:
        for line in entry.lines:
            if line.currency == currency:
                delta = Money(amount=line.debit - line.credit, currency=currency)
                balances[line.account] = balances[line.account] + delta
    return balances
