"""Ledger and audit guarantees held by PostgreSQL itself (DESIGN decisions 3, 8 and 9).

Rows are written here with plain SQL, as any code with a connection could, on entries and
events this module creates (keys carry a uuid; the stack is shared for the session). Periods
used for locking are in 1901, far from any date the workflows of other tests post in.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from activities.db import DbConnection, insert_audit_event
from activities.invoicing import InvoicingActivities, IssueInvoiceInput, IssueInvoiceResult
from models.audit import AuditEvent
from models.billing import first_invoice
from models.deal import DealSubmission
from models.invoice import Invoice, InvoiceDraft, draft_invoice
from models.ledger import Account
from starter.services import Services
from tests.integration.helpers import book_deal, unique_deal_id

pytestmark = pytest.mark.integration

AR, DEFERRED, TAX = (
    Account.ACCOUNTS_RECEIVABLE.value,
    Account.DEFERRED_REVENUE.value,
    Account.TAX_PAYABLE.value,
)
LOCKED_PERIOD, OPEN_PERIOD = "1901-01", "1901-02"
# Clean book deals invoiced at signing, one or more per issuing entity (LLEU, LLUK, LLIN, LLUS).
INVOICED_AT_SIGNING = [
    "hs-deal-90401",
    "hs-deal-90406",
    "hs-deal-90409",
    "hs-deal-90414",
    "hs-deal-90419",
]


def new_key(kind: str) -> str:
    return f"it:{kind}:{uuid.uuid4().hex}"


async def insert_entry(
    conn: DbConnection,
    key: str,
    lines: list[tuple[str, str, str, str]],
    *,
    entry_date: date = date(2026, 11, 2),
    period: str | None = None,
) -> int:
    """One journal entry with `lines` of (account, debit, credit, currency); its id."""
    entry_id: int = await conn.fetchval(
        """INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        key,
        entry_date,
        period or f"{entry_date:%Y-%m}",
        f"it-{key[-12:]}",
        "integration test",
    )
    for account, debit, credit, currency in lines:
        await conn.execute(
            """INSERT INTO journal_line (entry_id, account, debit, credit, currency)
               VALUES ($1, $2, $3, $4, $5)""",
            entry_id,
            account,
            Decimal(debit),
            Decimal(credit),
            currency,
        )
    return entry_id


async def entries_with_key(services: Services, key: str) -> int:
    count: int = await services.pool.fetchval(
        "SELECT count(*) FROM journal_entry WHERE key = $1", key
    )
    return count


@pytest.fixture
async def posted(services: Services) -> tuple[str, int]:
    """A balanced, committed entry: 1,190.00 EUR receivable = 1,000.00 deferred + 190.00 tax."""
    key = new_key("posted")
    async with services.pool.acquire() as conn, conn.transaction():
        entry_id = await insert_entry(
            conn,
            key,
            [
                (AR, "1190.00", "0", "EUR"),
                (DEFERRED, "0", "1000.00", "EUR"),
                (TAX, "0", "190.00", "EUR"),
            ],
        )
    return key, entry_id


@pytest.fixture
async def locked_period(services: Services) -> str:
    await services.pool.execute(
        """INSERT INTO accounting_period (period, status, locked_at) VALUES ($1, 'locked', now())
           ON CONFLICT (period) DO UPDATE SET status = 'locked'""",
        LOCKED_PERIOD,
    )
    return LOCKED_PERIOD


# --- every entry balances ------------------------------------------------------------------


async def test_a_balanced_entry_is_posted(services: Services, posted: tuple[str, int]) -> None:
    key, entry_id = posted

    rows = await services.pool.fetch(
        "SELECT sum(debit) AS debits, sum(credit) AS credits FROM journal_line WHERE entry_id = $1",
        entry_id,
    )

    assert await entries_with_key(services, key) == 1
    assert (rows[0]["debits"], rows[0]["credits"]) == (Decimal("1190.00"), Decimal("1190.00"))


async def test_an_unbalanced_entry_is_refused_at_commit(services: Services) -> None:
    key = new_key("unbalanced")
    written = False

    async with services.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            async with conn.transaction():
                await insert_entry(
                    conn, key, [(AR, "1190.00", "0", "EUR"), (DEFERRED, "0", "1000.00", "EUR")]
                )
                written = True  # every statement was accepted: the check waits for commit

    assert written
    assert re.fullmatch(
        r"journal entry \d+ does not balance in EUR: debits - credits = 190\.0+", str(refused.value)
    )
    assert await entries_with_key(services, key) == 0


async def test_an_entry_must_balance_in_each_currency(services: Services) -> None:
    key = new_key("two-currencies")

    async with services.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match=r"does not balance in (EUR|USD)"):
            async with conn.transaction():
                await insert_entry(
                    conn, key, [(AR, "100.00", "0", "EUR"), (DEFERRED, "0", "100.00", "USD")]
                )

    assert await entries_with_key(services, key) == 0


@pytest.mark.parametrize(
    ("debit", "credit"),
    [("50.00", "50.00"), ("0", "0"), ("-10.00", "0")],
    ids=["both", "zero", "negative"],
)
async def test_a_line_is_one_positive_debit_or_credit(
    services: Services, debit: str, credit: str
) -> None:
    key = new_key("one-side")

    async with services.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="journal_line_one_side"):
            async with conn.transaction():
                await insert_entry(conn, key, [(AR, debit, credit, "EUR")])

    assert await entries_with_key(services, key) == 0


# --- append-only ---------------------------------------------------------------------------


async def execute_as_owner(services: Services, statement: str, *args: object) -> str:
    """Run `statement` as the tables' owner (the login role, not the restricted application
    role it acts as): the append-only triggers refuse even the owner."""
    async with services.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE NONE")
        result: str = await conn.execute(statement, *args)
        return result


@pytest.mark.parametrize(
    ("statement", "table", "operation"),
    [
        ("UPDATE journal_line SET debit = debit + 1 WHERE entry_id = $1", "journal_line", "UPDATE"),
        ("DELETE FROM journal_line WHERE entry_id = $1", "journal_line", "DELETE"),
        (
            "UPDATE journal_entry SET description = 'edited' WHERE id = $1",
            "journal_entry",
            "UPDATE",
        ),
        ("DELETE FROM journal_entry WHERE id = $1", "journal_entry", "DELETE"),
    ],
    ids=["update line", "delete line", "update entry", "delete entry"],
)
async def test_posted_entries_cannot_be_changed_or_deleted(
    services: Services, posted: tuple[str, int], statement: str, table: str, operation: str
) -> None:
    key, entry_id = posted

    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        await execute_as_owner(services, statement, entry_id)

    assert str(refused.value) == (
        f"{table} is append-only: {operation} refused (post a correcting entry instead)"
    )
    lines = await services.pool.fetch(
        "SELECT account, debit, credit FROM journal_line WHERE entry_id = $1 ORDER BY id", entry_id
    )
    assert [(r["account"], r["debit"], r["credit"]) for r in lines] == [
        (AR, Decimal("1190.00"), Decimal(0)),
        (DEFERRED, Decimal(0), Decimal("1000.00")),
        (TAX, Decimal(0), Decimal("190.00")),
    ]
    assert (
        await services.pool.fetchval("SELECT description FROM journal_entry WHERE key = $1", key)
        == "integration test"
    )


async def test_audit_events_cannot_be_changed_or_deleted(services: Services) -> None:
    key = new_key("audit")
    async with services.pool.acquire() as conn:
        await insert_audit_event(
            conn,
            AuditEvent(
                key=key,
                actor="it-billing",
                action="invoice.voided",
                subject="deal:it",
                reason_code="DATA_CORRECTED",
            ),
        )

    for statement, operation in [
        ("UPDATE audit_event SET actor = 'someone-else' WHERE idempotency_key = $1", "UPDATE"),
        ("DELETE FROM audit_event WHERE idempotency_key = $1", "DELETE"),
    ]:
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError,
            match=f"audit_event is append-only: {operation} refused",
        ):
            await execute_as_owner(services, statement, key)

    row = await services.pool.fetchrow(
        "SELECT actor FROM audit_event WHERE idempotency_key = $1", key
    )
    assert row is not None and row["actor"] == "it-billing"


@pytest.mark.parametrize("table", ["journal_line", "journal_entry", "audit_event"])
async def test_the_ledger_and_audit_tables_cannot_be_truncated(
    services: Services, posted: tuple[str, int], table: str
) -> None:
    del posted  # there is something to lose
    before = await services.pool.fetchval(f"SELECT count(*) FROM {table}")

    async with services.pool.acquire() as conn:
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match=f"{table} is append-only: TRUNCATE refused"
        ):
            async with conn.transaction():  # rolled back whatever happens
                await conn.execute("SET LOCAL ROLE NONE")  # even the tables' owner
                await conn.execute(f"TRUNCATE {table} CASCADE")

    assert await services.pool.fetchval(f"SELECT count(*) FROM {table}") >= before > 0


async def test_the_application_role_is_refused_by_privilege_before_any_trigger(
    services: Services, posted: tuple[str, int]
) -> None:
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError, match="permission denied for table journal_line"
    ):
        await services.pool.execute("DELETE FROM journal_line WHERE entry_id = $1", posted[1])


async def test_the_application_role_holds_no_update_or_delete_privilege(services: Services) -> None:
    rows = await services.pool.fetch(
        """SELECT t.relname,
                  has_table_privilege(current_user, t.oid, 'UPDATE') AS can_update,
                  has_table_privilege(current_user, t.oid, 'DELETE') AS can_delete,
                  pg_get_userbyid(t.relowner) = current_user AS owns
           FROM pg_class t
           WHERE t.relname IN ('journal_line', 'journal_entry', 'audit_event')
           ORDER BY t.relname"""
    )

    assert [(r["relname"], r["can_update"], r["can_delete"], r["owns"]) for r in rows] == [
        ("audit_event", False, False, False),
        ("journal_entry", False, False, False),
        ("journal_line", False, False, False),
    ]


# --- locked periods ------------------------------------------------------------------------


async def test_an_entry_in_a_locked_period_is_refused(
    services: Services, locked_period: str
) -> None:
    key = new_key("locked")

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        async with services.pool.acquire() as conn, conn.transaction():
            await insert_entry(
                conn,
                key,
                [(AR, "10.00", "0", "EUR"), (DEFERRED, "0", "10.00", "EUR")],
                entry_date=date(1901, 1, 15),
            )

    assert str(refused.value) == (
        f"accounting period {locked_period} is locked: post the correction in an open period"
    )
    assert await entries_with_key(services, key) == 0

    # The correction goes into an open period.
    await services.pool.execute(
        "INSERT INTO accounting_period (period) VALUES ($1) ON CONFLICT DO NOTHING", OPEN_PERIOD
    )
    async with services.pool.acquire() as conn, conn.transaction():
        await insert_entry(
            conn,
            key,
            [(AR, "10.00", "0", "EUR"), (DEFERRED, "0", "10.00", "EUR")],
            entry_date=date(1901, 2, 1),
        )
    assert await entries_with_key(services, key) == 1


async def test_an_entry_dated_in_a_locked_period_is_refused_whatever_its_period_label(
    services: Services, locked_period: str
) -> None:
    key = new_key("mislabelled")

    with pytest.raises(asyncpg.PostgresError):
        async with services.pool.acquire() as conn, conn.transaction():
            await insert_entry(
                conn,
                key,
                [(AR, "10.00", "0", "EUR"), (DEFERRED, "0", "10.00", "EUR")],
                entry_date=date(1901, 1, 20),
                period=OPEN_PERIOD,
            )

    assert locked_period == LOCKED_PERIOD
    assert await entries_with_key(services, key) == 0


# --- the audit hash chain ------------------------------------------------------------------


async def _chain(services: Services) -> list[asyncpg.Record]:
    return await services.pool.fetch(
        """SELECT seq, idempotency_key, prev_hash, hash, audit_event_digest(a) AS digest,
                  lag(hash) OVER (ORDER BY seq) AS previous
           FROM audit_event a ORDER BY seq"""
    )


async def test_audit_events_form_a_hash_chain_also_when_written_concurrently(
    services: Services,
) -> None:
    keys = [new_key("chain") for _ in range(12)]

    async def write(key: str) -> None:
        async with services.pool.acquire() as conn, conn.transaction():
            event = AuditEvent(
                key=key,
                actor="it-finance",
                action="period.reviewed",
                subject=f"period:{LOCKED_PERIOD}",
                after={"note": key, "amount": "12.50"},
                rules_version=services.rules.version,
            )
            assert await insert_audit_event(conn, event)

    await asyncio.gather(*(write(key) for key in keys))

    chain = await _chain(services)
    assert {row["idempotency_key"] for row in chain} >= set(keys)
    assert chain[0]["prev_hash"] is None  # the first event has no predecessor
    broken = [
        row["seq"]
        for row in chain
        if row["prev_hash"] != row["previous"] or row["hash"] != row["digest"]
    ]
    assert broken == []
    assert len({row["hash"] for row in chain}) == len(chain)
    assert all(len(row["hash"]) == 64 for row in chain)


async def test_the_chain_is_set_by_the_database_and_reveals_an_edit(services: Services) -> None:
    key = new_key("forged")
    await services.pool.execute(
        """INSERT INTO audit_event (seq, idempotency_key, actor, action, subject, prev_hash, hash)
           VALUES (1, $1, 'it-mallory', 'invoice.voided', 'deal:it', 'forged-prev', 'forged')""",
        key,
    )

    row = await services.pool.fetchrow(
        """SELECT seq, prev_hash, hash, audit_event_digest(a) AS digest,
                  (SELECT hash FROM audit_event p WHERE p.seq < a.seq ORDER BY seq DESC LIMIT 1)
                      AS previous,
                  audit_event_digest(jsonb_populate_record(a, '{"actor": "it-alice"}'::jsonb))
                      AS edited
           FROM audit_event a WHERE idempotency_key = $1""",
        key,
    )

    assert row is not None
    assert row["seq"] != 1 and row["prev_hash"] == row["previous"] != "forged-prev"
    assert row["hash"] == row["digest"] != "forged"
    assert row["edited"] != row["hash"]  # another actor would not match the stored hash


# --- invoices: gap-free numbers, issued once ------------------------------------------------


def first_invoice_draft(
    services: Services, book_id: str, *, issued_on: date | None = None
) -> InvoiceDraft:
    deal = DealSubmission.model_validate(book_deal(book_id, unique_deal_id()))
    event = first_invoice(deal)
    assert event is not None, f"{book_id} is invoiced at signing"
    return draft_invoice(deal, event, services.rules, issued_on=issued_on or date(2026, 11, 23))


def issue_input(services: Services, draft: InvoiceDraft) -> IssueInvoiceInput:
    return IssueInvoiceInput(
        draft=draft,
        idempotency_key=f"deal:{draft.deal_id}:first-invoice",
        rules_version=services.rules.version,
    )


async def numbering_by_entity(
    services: Services, series: str = "invoice"
) -> dict[str, tuple[list[int], int]]:
    """Per entity: the sequences of every stored document of `series`, and its last number."""
    rows = await services.pool.fetch(
        """SELECT s.entity_code, s.last_number,
                  coalesce(array_agg(i.sequence ORDER BY i.sequence)
                           FILTER (WHERE i.sequence IS NOT NULL), '{}') AS sequences
           FROM invoice_sequence s
           LEFT JOIN invoice i ON i.entity_code = s.entity_code AND i.series = s.series
           WHERE s.series = $1 GROUP BY s.entity_code, s.last_number""",
        series,
    )
    return {r["entity_code"]: (list(r["sequences"]), r["last_number"]) for r in rows}


async def test_concurrent_issuance_numbers_every_entity_without_gaps_or_duplicates(
    services: Services,
) -> None:
    drafts = [first_invoice_draft(services, INVOICED_AT_SIGNING[n % 5]) for n in range(20)]
    invoicing = InvoicingActivities(services.pool)

    results: list[IssueInvoiceResult] = await asyncio.gather(
        *(invoicing.issue_invoice(issue_input(services, draft)) for draft in drafts)
    )

    numbers = [result.invoice.number for result in results]
    assert all(result.issued_now for result in results)
    assert len(set(numbers)) == 20
    for draft, result in zip(drafts, results, strict=True):
        assert result.invoice.deal_id == draft.deal_id
        assert result.invoice.number.startswith(f"{draft.entity.invoice_prefix}-")
        assert result.invoice.total == draft.total == draft.subtotal + draft.tax
        assert result.entry is not None
        assert result.entry.key == f"invoice:{result.invoice.number}"
    assert {n.split("-")[0] for n in numbers} == {"LLEU", "LLUK", "LLIN", "LLUS"}
    for entity, (sequences, last_number) in (await numbering_by_entity(services)).items():
        assert sequences == list(range(1, last_number + 1)), f"{entity}: gap or duplicate"
    stored = await services.pool.fetch(
        """SELECT i.number, i.total, count(DISTINCT e.id) AS entries,
                  sum(l.debit) AS debits, sum(l.credit) AS credits
           FROM invoice i JOIN journal_entry e ON e.key = 'invoice:' || i.number
           JOIN journal_line l ON l.entry_id = e.id
           WHERE i.number = ANY($1::text[]) GROUP BY i.number, i.total""",
        numbers,
    )
    assert len(stored) == 20
    assert all(r["entries"] == 1 and r["debits"] == r["credits"] == r["total"] for r in stored)


def credit_note_for(invoice: Invoice) -> InvoiceDraft:
    """A credit note taking the whole invoice back (as a cancellation before service would)."""
    lines = [ln.model_copy(update={"amount": -ln.amount, "unit_price": -ln.unit_price})
             for ln in invoice.lines]  # fmt: skip
    return InvoiceDraft.model_validate(invoice.model_dump(exclude={"number"}) | {
        "lines": lines, "subtotal": -invoice.subtotal, "tax": -invoice.tax,
        "total": -invoice.total, "reason": f"credit note for {invoice.number}: cancelled"})  # fmt: skip


async def test_credit_notes_are_numbered_in_their_own_gap_free_series(services: Services) -> None:
    """Four invoices, then their four credit notes at once: each entity's credit notes count
    1, 2, ... as LLxx-CN-nnnnnn, and the invoice series goes on where it was."""
    invoicing = InvoicingActivities(services.pool)
    drafts = [first_invoice_draft(services, "hs-deal-90406") for _ in range(2)]
    drafts += [first_invoice_draft(services, "hs-deal-90401") for _ in range(2)]
    invoices = [(await invoicing.issue_invoice(issue_input(services, d))).invoice for d in drafts]
    before = await numbering_by_entity(services, "credit_note")

    credited = await asyncio.gather(*(
        invoicing.issue_invoice(IssueInvoiceInput(
            draft=credit_note_for(inv), idempotency_key=f"deal:{inv.deal_id}:credit-note",
            rules_version=services.rules.version))
        for inv in invoices))  # fmt: skip

    notes = [c.invoice for c in credited]
    for invoice, note in zip(invoices, notes, strict=True):
        prefix = invoice.number.rsplit("-", 1)[0]
        assert note.number.startswith(f"{prefix}-CN-"), note.number
        assert note.is_credit_note and note.total == -invoice.total
    after = await numbering_by_entity(services, "credit_note")
    for entity, (sequences, last_number) in after.items():
        assert sequences == list(range(1, last_number + 1)), f"{entity}: gap or duplicate"
    counted = {e: after[e][1] - before.get(e, ([], 0))[1] for e in after}
    assert counted == {"LL-UK": 2, "LL-EU": 2}
    for entity, (sequences, last_number) in (await numbering_by_entity(services)).items():
        assert sequences == list(range(1, last_number + 1)), f"{entity}: gap or duplicate"
    stored = await services.pool.fetch(
        "SELECT number, series FROM invoice WHERE number = ANY($1::text[])",
        [n.number for n in notes],
    )
    assert {r["series"] for r in stored} == {"credit_note"}


async def test_an_invoice_that_cannot_be_posted_consumes_no_number(
    services: Services, locked_period: str
) -> None:
    invoicing = InvoicingActivities(services.pool)
    refused = first_invoice_draft(services, "hs-deal-90406", issued_on=date(1901, 1, 10))
    before = (await numbering_by_entity(services)).get("LL-UK", ([], 0))[1]

    with pytest.raises(
        asyncpg.CheckViolationError, match=f"accounting period {locked_period} is locked"
    ):
        await invoicing.issue_invoice(issue_input(services, refused))
    issued = await invoicing.issue_invoice(
        issue_input(services, first_invoice_draft(services, "hs-deal-90406"))
    )

    assert issued.invoice.number == f"LLUK-{before + 1:06d}"
    assert (
        await services.pool.fetchval(
            "SELECT count(*) FROM invoice WHERE deal_id = $1", refused.deal_id
        )
        == 0
    )
    sequences, last_number = (await numbering_by_entity(services))["LL-UK"]
    assert sequences == list(range(1, last_number + 1))


async def test_the_same_idempotency_key_issues_one_invoice_and_one_entry(
    services: Services,
) -> None:
    invoicing = InvoicingActivities(services.pool)
    data = issue_input(services, first_invoice_draft(services, "hs-deal-90401"))

    first = await invoicing.issue_invoice(data)
    again = await invoicing.issue_invoice(data)
    racing = await asyncio.gather(*(invoicing.issue_invoice(data) for _ in range(3)))

    assert (first.issued_now, again.issued_now) == (True, False)
    assert not any(result.issued_now for result in racing)
    assert {r.invoice.number for r in [first, again, *racing]} == {first.invoice.number}
    assert again.invoice == first.invoice and again.entry == first.entry
    assert str(first.invoice.total) == "154,462.00 EUR"
    deal_id, number = data.draft.deal_id, first.invoice.number
    counts = await services.pool.fetchrow(
        """SELECT (SELECT count(*) FROM invoice WHERE deal_id = $1) AS invoices,
                  (SELECT count(*) FROM journal_entry WHERE deal_id = $1) AS entries,
                  (SELECT count(*) FROM audit_event WHERE idempotency_key = $2) AS audits""",
        deal_id,
        f"invoice:{number}:issued",
    )
    assert counts is not None
    assert (counts["invoices"], counts["entries"], counts["audits"]) == (1, 1, 1)
    assert again.balances.receivable == first.invoice.total
