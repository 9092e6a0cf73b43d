"""Journal entries (SPEC §5): issuing an invoice and recognising revenue as balanced
double-entry postings, presented net (unbilled receivable or deferred revenue, never both).

Unless a test says otherwise the invoice is LLUS-000001 for deal D-1:

    Deal D-1, USD, 2026-01-01 .. 2026-12-31, billed annually in advance, net 30, US-NY.
      SUB  Platform subscription  120,000.00
    Invoice LLUS-000001, 2026-01-01: subtotal 120,000.00, NY tax 8.875% 10,650.00,
    total 130,650.00 USD.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.billing import first_invoice
from models.deal import DealSubmission, ProductType
from models.invoice import Invoice, draft_invoice
from models.ledger import (
    Account,
    JournalEntry,
    JournalLine,
    account_balances,
    billing_entry,
    recognition_entry,
)
from models.money import Money, money_sum
from models.recognition import RecognitionSchedule, build_schedule
from models.rules import RuleSet
from tests.builders import make_deal, make_line, usd
from tests.strategies import deals

AR = Account.ACCOUNTS_RECEIVABLE
UNBILLED = Account.UNBILLED_RECEIVABLE
DEFERRED = Account.DEFERRED_REVENUE
TAX = Account.TAX_PAYABLE
REVENUE = Account.REVENUE


def issue(deal: DealSubmission, rules: RuleSet, number: str = "LLUS-000001") -> Invoice:
    """The deal's first invoice, issued on its planned date under `number`."""
    event = first_invoice(deal)
    assert event is not None
    draft = draft_invoice(deal, event, rules, event.invoice_date)
    return Invoice(**draft.model_dump(), number=number)


def subscription_invoice(rules: RuleSet, **overrides: Any) -> Invoice:
    """LLUS-000001 of the module docstring (with `overrides` on the deal)."""
    line = make_line("SUB", ProductType.SUBSCRIPTION, "120000", product="Platform subscription")
    return issue(make_deal([line], **overrides), rules)


def postings(entry: JournalEntry) -> list[tuple[str, Account, str, str | None]]:
    """('Dr' or 'Cr', account, amount, contract line) per journal line, in entry order."""
    return [
        ("Dr", line.account, str(line.debit), line.line_id)
        if line.debit
        else ("Cr", line.account, str(line.credit), line.line_id)
        for line in entry.lines
    ]


# --- billing --------------------------------------------------------------------------------


def test_issuing_an_invoice_books_receivable_deferred_revenue_and_tax(rules: RuleSet) -> None:
    """Nothing recognised yet:
    Dr 1100 Accounts receivable   130,650.00
       Cr 2400 Deferred revenue             120,000.00
       Cr 2300 Tax payable                   10,650.00"""
    entry = billing_entry(subscription_invoice(rules), usd("0"))

    assert postings(entry) == [
        ("Dr", AR, "130650.00", None),
        ("Cr", DEFERRED, "120000.00", None),
        ("Cr", TAX, "10650.00", None),
    ]
    assert (entry.key, entry.entry_date, entry.deal_id, entry.period) == (
        "invoice:LLUS-000001",
        date(2026, 1, 1),
        "D-1",
        "2026-01",
    )
    assert entry.description == "Invoice LLUS-000001 issued (subscription period 1 of 1)"


def test_invoice_clears_the_unbilled_receivable_before_deferring(rules: RuleSet) -> None:
    """30,000.00 already recognised and not yet billed (unbilled receivable):
    Dr 1100 Accounts receivable   130,650.00
       Cr 1150 Unbilled receivable           30,000.00
       Cr 2400 Deferred revenue              90,000.00
       Cr 2300 Tax payable                   10,650.00"""
    entry = billing_entry(subscription_invoice(rules), usd("30000"))

    assert postings(entry) == [
        ("Dr", AR, "130650.00", None),
        ("Cr", UNBILLED, "30000.00", None),
        ("Cr", DEFERRED, "90000.00", None),
        ("Cr", TAX, "10650.00", None),
    ]


def test_invoice_smaller_than_the_unbilled_receivable_defers_nothing(rules: RuleSet) -> None:
    """150,000.00 unbilled; the 120,000.00 subtotal clears 120,000.00 of it and no
    deferred-revenue line is written."""
    entry = billing_entry(subscription_invoice(rules), usd("150000"))

    assert postings(entry) == [
        ("Dr", AR, "130650.00", None),
        ("Cr", UNBILLED, "120000.00", None),
        ("Cr", TAX, "10650.00", None),
    ]


def test_tax_exempt_invoice_books_no_tax_payable(rules: RuleSet) -> None:
    """Exempt (certificate NY-ST-120-2291): AR 120,000.00 against deferred revenue only."""
    invoice = subscription_invoice(rules, tax_exempt=True, exemption_certificate="NY-ST-120-2291")
    entry = billing_entry(invoice, usd("0"))

    assert postings(entry) == [("Dr", AR, "120000.00", None), ("Cr", DEFERRED, "120000.00", None)]


# --- recognition ----------------------------------------------------------------------------


def recognise(revenue: dict[str, str], deferred: str) -> JournalEntry | None:
    return recognition_entry(
        key="recognition:D-1:2026-01",
        deal_id="D-1",
        entry_date=date(2026, 1, 31),
        description="Revenue 2026-01",
        revenue_by_line={line_id: usd(amount) for line_id, amount in revenue.items()},
        deferred_balance=usd(deferred),
    )


def test_recognition_draws_down_deferred_revenue() -> None:
    """January of the 120,000.00 subscription, 31 of 365 days = 10,191.78, with
    120,000.00 deferred:
    Dr 2400 Deferred revenue   10,191.78
       Cr 4000 Revenue (SUB)              10,191.78"""
    entry = recognise({"SUB": "10191.78"}, deferred="120000")

    assert entry is not None
    assert postings(entry) == [
        ("Dr", DEFERRED, "10191.78", None),
        ("Cr", REVENUE, "10191.78", "SUB"),
    ]
    assert (entry.key, entry.entry_date, entry.period) == (
        "recognition:D-1:2026-01",
        date(2026, 1, 31),
        "2026-01",
    )


def test_recognition_beyond_deferred_revenue_becomes_unbilled_receivable() -> None:
    """SUB 10,000.00 and IMPL 5,000.00 earned, only 4,000.00 deferred:
    Dr 2400 Deferred revenue      4,000.00
    Dr 1150 Unbilled receivable  11,000.00
       Cr 4000 Revenue (IMPL)              5,000.00
       Cr 4000 Revenue (SUB)              10,000.00"""
    entry = recognise({"SUB": "10000", "IMPL": "5000"}, deferred="4000")

    assert entry is not None
    assert postings(entry) == [
        ("Dr", DEFERRED, "4000.00", None),
        ("Dr", UNBILLED, "11000.00", None),
        ("Cr", REVENUE, "5000.00", "IMPL"),
        ("Cr", REVENUE, "10000.00", "SUB"),
    ]


def test_recognition_before_any_billing_is_all_unbilled_receivable() -> None:
    """A milestone accepted before it is invoiced: IMPL 25,000.00, nothing deferred."""
    entry = recognise({"IMPL": "25000"}, deferred="0")

    assert entry is not None
    assert postings(entry) == [
        ("Dr", UNBILLED, "25000.00", None),
        ("Cr", REVENUE, "25000.00", "IMPL"),
    ]


@pytest.mark.parametrize("revenue", [{}, {"SUB": "0"}, {"SUB": "0", "IMPL": "0"}])
def test_nothing_to_recognise_writes_no_entry(revenue: dict[str, str]) -> None:
    assert recognise(revenue, deferred="120000") is None


# --- entries refuse what cannot be posted ---------------------------------------------------


def line(
    account: Account, debit: str = "0", credit: str = "0", currency: str = "USD"
) -> JournalLine:
    return JournalLine(
        account=account, debit=Decimal(debit), credit=Decimal(credit), currency=currency
    )


def entry_of(lines: list[JournalLine]) -> JournalEntry:
    return JournalEntry(
        key="manual:1", entry_date=date(2026, 1, 31), deal_id="D-1", description="x", lines=lines
    )


def test_unbalanced_entry_is_refused_naming_the_gap() -> None:
    """Dr AR 100.00 against Cr Revenue 90.00: 10.00 USD of debit unmatched."""
    with pytest.raises(ValidationError) as refused:
        entry_of([line(AR, debit="100.00"), line(REVENUE, credit="90.00")])

    assert "entry manual:1 does not balance: {'USD': Decimal('10.00')}" in str(refused.value)


def test_entry_must_balance_in_each_currency() -> None:
    """Dr AR 100.00 USD against Cr Revenue 100.00 EUR balances in neither currency."""
    with pytest.raises(ValidationError, match="does not balance"):
        entry_of([line(AR, debit="100"), line(REVENUE, credit="100", currency="EUR")])


def test_entry_without_lines_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not balance: no lines"):
        entry_of([])


@pytest.mark.parametrize(
    ("debit", "credit"),
    [("10", "10"), ("-10", "0"), ("0", "-10")],
    ids=["both", "neg dr", "neg cr"],
)
def test_journal_line_is_one_non_negative_side(debit: str, credit: str) -> None:
    with pytest.raises(ValidationError, match="a line is a non-negative debit or credit, not both"):
        line(AR, debit=debit, credit=credit)


def test_balanced_entry_is_accepted() -> None:
    entry = entry_of([line(AR, debit="100"), line(DEFERRED, credit="100")])

    assert account_balances([entry], "USD")[AR] == usd("100")
    assert account_balances([entry], "USD")[DEFERRED] == usd("-100")


# --- properties: invoice, then recognition, over random deals -------------------------------


def assert_balanced(entry: JournalEntry) -> None:
    for currency in {line.currency for line in entry.lines}:
        mine = [line for line in entry.lines if line.currency == currency]
        assert sum(line.debit for line in mine) == sum(line.credit for line in mine), entry.key


def revenue_by_line(
    schedule: RecognitionSchedule, as_of: date, delivered: frozenset[str]
) -> dict[str, Money]:
    """Cumulative revenue recognisable by `as_of`, per contract line."""
    due: dict[str, Money] = {}
    for item in schedule.entries_recognisable_as_of(as_of, delivered):
        due[item.line_id] = due.get(item.line_id, Money.zero(schedule.currency)) + item.amount
    return due


class Books:
    """The ledger of one deal as the workflow would post it, with its invariants."""

    def __init__(self, invoice: Invoice, schedule: RecognitionSchedule) -> None:
        self.invoice, self.schedule = invoice, schedule
        self.currency = schedule.currency
        self.entries: list[JournalEntry] = []
        self.billed = Money.zero(self.currency)
        self.recognised: dict[str, Money] = {}

    def balances(self) -> dict[Account, Money]:
        return account_balances(self.entries, self.currency)

    def bill(self) -> None:
        unbilled = self.balances()[UNBILLED]
        self.entries.append(billing_entry(self.invoice, unbilled))
        self.billed = self.invoice.subtotal

    def recognise(self, as_of: date, delivered: frozenset[str]) -> None:
        due = revenue_by_line(self.schedule, as_of, delivered)
        zero = Money.zero(self.currency)
        delta = {k: v - self.recognised.get(k, zero) for k, v in due.items()}
        entry = recognition_entry(
            key=f"recognition:{self.schedule.deal_id}:{as_of}",
            deal_id=self.schedule.deal_id,
            entry_date=as_of,
            description=f"Revenue to {as_of}",
            revenue_by_line=delta,
            deferred_balance=-self.balances()[DEFERRED],
        )
        if entry is not None:
            self.entries.append(entry)
        self.recognised = due

    def check(self, recognisable: Money) -> None:
        for entry in self.entries:
            assert_balanced(entry)
        balances = self.balances()
        zero = Money.zero(self.currency)
        is_billed = not self.billed.is_zero()
        revenue, deferred = -balances[REVENUE], -balances[DEFERRED]
        unbilled = balances[UNBILLED]

        assert money_sum(balances.values(), self.currency) == zero
        assert balances[AR] == (self.invoice.total if is_billed else zero)
        assert -balances[TAX] == (self.invoice.tax if is_billed else zero)
        assert revenue == recognisable
        assert revenue <= self.schedule.total()
        assert deferred >= zero
        assert unbilled >= zero
        assert deferred - unbilled == self.billed - revenue
        assert deferred.is_zero() or unbilled.is_zero()


def issuable(deal: DealSubmission, rules: RuleSet) -> DealSubmission:
    """The deal, invoiced by LL-US when no entity is the default for its currency."""
    if rules.entity_for(deal.currency, None) is None:
        return deal.model_copy(update={"billing_entity": "LL-US"})
    return deal


@given(deals(), st.data())
def test_invoice_then_recognition_keeps_the_books_balanced_and_net(
    rules: RuleSet, deal: DealSubmission, data: st.DataObject
) -> None:
    """Issue the first invoice before the k-th of several increasing recognition dates
    (or after the last), recognising what the schedule allows by each date with a random
    set of milestones delivered. After every posting: each entry balances, AR is the
    invoice total once issued, revenue is what the schedule allows and never above its
    total, deferred revenue and unbilled receivable are never negative nor both non-zero,
    and deferred - unbilled = billed - recognised."""
    event = first_invoice(deal)
    assume(event is not None)
    assume(deal.tax_exempt or rules.tax_rate_for(deal.tax_jurisdiction) is not None)
    assert event is not None
    deal = issuable(deal, rules)
    draft = draft_invoice(deal, event, rules, event.invoice_date)
    books = Books(Invoice(**draft.model_dump(), number="LLUS-000001"), build_schedule(deal))

    milestone_ids = sorted(m.milestone_id for m in deal.milestones)
    delivered = (
        frozenset(data.draw(st.sets(st.sampled_from(milestone_ids))))
        if milestone_ids
        else frozenset[str]()
    )
    offsets = data.draw(
        st.lists(st.integers(-31, deal.term_days() + 62), min_size=1, max_size=6, unique=True)
    )
    dates = [deal.start_date + timedelta(days=n) for n in sorted(offsets)]
    bill_before = data.draw(st.integers(0, len(dates)))

    recognisable = Money.zero(deal.currency)
    for step, as_of in enumerate(dates):
        if step == bill_before:
            books.bill()
            books.check(recognisable)
        books.recognise(as_of, delivered)
        recognisable = books.schedule.recognisable_as_of(as_of, delivered)
        books.check(recognisable)
    if bill_before == len(dates):
        books.bill()
        books.check(recognisable)
