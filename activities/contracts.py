"""The contract's writes after booking: deliveries, approved time, metered invoices,
amendments (with their schedule version), pricing exceptions and the contract's status.

Each activity is one transaction under the deal's ledger lock and is idempotent: a retried
attempt finds what the first one wrote (by primary key or idempotency key) and writes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import DbConnection, insert_audit_event, jsonable
from activities.invoicing import IssueInvoiceResult, issue_in_transaction
from activities.ledger import (
    fetch_journal_entry,
    insert_journal_entry,
    ledger_position,
    lock_deal,
)
from activities.records import insert_discount_exceptions
from models.amendment import Amendment, treatment_of
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.billing import BillingEvent, InvoiceLine
from models.calendar_math import month_end, period_label
from models.contract_flow import (
    Credit,
    MilestoneDelivered,
    TimeApproval,
    TimeApprovalResult,
    open_discounts,
)
from models.contract_invoicing import rated_line, usage_lines_by_metric
from models.contract_terms import ContractTerms
from models.deal import Contact, DealSubmission
from models.invoice import Invoice, draft_invoice
from models.ledger import Account, recognition_entry
from models.modification import CreditTooLarge, credited_schedule, modified_schedule
from models.money import Money, minor_units
from models.reallocation import ModificationShortfall
from models.recognition import ScheduleEntry, ScheduleKind
from models.rules import RuleSet


class StartContractInput(BaseModel):
    contract_id: str
    deal: DealSubmission
    rules_version: str


class MilestoneInput(BaseModel):
    contract_id: str
    delivery: MilestoneDelivered
    rules_version: str


class TimeInput(BaseModel):
    contract_id: str
    currency: str
    approval: TimeApproval
    unit_prices: dict[str, Decimal]
    rules_version: str


class MeteredInput(BaseModel):
    """Invoice usage (and T&M) not yet invoiced, through `through_period`; with
    `threshold` set, usage only and only when its rated amount reaches the threshold."""

    contract_id: str
    deal: DealSubmission
    rules: RuleSet
    through_period: str
    issued_on: date
    idempotency_key: str
    threshold: Decimal | None = None


class AmendmentInput(BaseModel):
    contract_id: str
    amendment: Amendment
    before: ContractTerms
    after: ContractTerms
    delivered: list[str]
    schedule_version: int
    rules_version: str


class ExceptionStatusInput(BaseModel):
    contract_id: str
    exception_id: str
    status: str
    closed_on: date
    rules_version: str


class BillingContactInput(BaseModel):
    contract_id: str
    customer_id: str
    contact: Contact
    key: str = Field(description="Idempotency: one change per re-send, e.g. LLUS-000042:resend-1")
    requested_by: str
    reason: str
    rules_version: str


class CreditInput(BaseModel):
    contract_id: str
    credit: Credit
    currency: str
    granted_on: date
    schedule_version: int
    rules_version: str


def _audit(contract_id: str, key: str, action: str, after: dict[str, object],
           rules_version: str, actor: str = SYSTEM_ACTOR) -> AuditEvent:  # fmt: skip
    return AuditEvent(key=f"contract:{contract_id}:{key}", actor=actor, action=action,
                      subject=f"deal:{contract_id}", after=after, rules_version=rules_version)  # fmt: skip


class ContractActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def start_contract_records(self, data: StartContractInput) -> list[tuple[str, date]]:
        """Track each discount as a pricing exception; the ones with an expiry are returned
        so the workflow can close them on the day. Only contracts whose deal was booked
        before `book_contract` recorded the exceptions itself run this."""
        deal = data.deal
        async with self._pool.acquire() as conn, conn.transaction():
            exceptions = await insert_discount_exceptions(conn, deal)
            await insert_audit_event(conn, _audit(data.contract_id, "started", "contract.started",
                {"discounts": exceptions, "start": deal.start_date.isoformat(),
                 "end": deal.end_date.isoformat()}, data.rules_version))  # fmt: skip
        return open_discounts(deal)

    @activity.defn
    async def customer_on_credit_hold(self, customer_id: str) -> bool:
        async with self._pool.acquire() as conn:
            held = await conn.fetchval(
                "SELECT on_credit_hold FROM customer WHERE customer_id = $1", customer_id
            )
        return bool(held)

    @activity.defn
    async def record_billing_contact(self, data: BillingContactInput) -> None:
        """The customer's corrected billing contact, for every invoice from now on. The audit
        event names who changed it and why, never the address (as for every e-mail)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE customer SET billing_contact = $2 WHERE customer_id = $1",
                data.customer_id, jsonable(data.contact),
            )  # fmt: skip
            await insert_audit_event(conn, _audit(data.contract_id,
                f"billing-contact:{data.key}", "customer.billing_contact_changed",
                {"customer_id": data.customer_id, "reason": data.reason},
                data.rules_version, actor=data.requested_by))  # fmt: skip

    @activity.defn
    async def close_pricing_exception(self, data: ExceptionStatusInput) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE pricing_exception SET status = $3, closed_on = $4
                   WHERE deal_id = $1 AND exception_id = $2 AND status = 'active'""",
                data.contract_id, data.exception_id, data.status, data.closed_on,
            )  # fmt: skip
            await insert_audit_event(conn, _audit(data.contract_id,
                f"{data.exception_id}:{data.status}", f"pricing_exception.{data.status}",
                {"exception": data.exception_id, "on": data.closed_on.isoformat()},
                data.rules_version))  # fmt: skip

    @activity.defn
    async def record_credit(self, data: CreditInput) -> None:
        """The credit as a pricing exception, and the schedule version it produces (less
        revenue to come); refused, non-retryably, when it exceeds the revenue to come."""
        c = data.credit
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, data.contract_id)
            current = await _latest_schedule(conn, data.contract_id)
            try:
                entries = credited_schedule(current, Money(amount=c.amount, currency=data.currency),
                                            data.granted_on)  # fmt: skip
            except CreditTooLarge as exc:
                raise ApplicationError(str(exc), type="InvalidContractChange",
                                       non_retryable=True) from exc  # fmt: skip
            await _store_schedule_version(conn, data.contract_id, data.schedule_version, entries)
            await conn.execute(
                """INSERT INTO pricing_exception (deal_id, exception_id, kind, line_id, detail,
                       starts_on, expires_on, status)
                   VALUES ($1, $2, 'credit', NULL, $3, $4, NULL, 'active') ON CONFLICT DO NOTHING""",
                data.contract_id, f"credit-{c.credit_id}",
                {"amount": str(c.amount), "currency": data.currency, "reason": c.reason,
                 "periods": c.applies_to_periods}, data.granted_on,
            )  # fmt: skip
            await insert_audit_event(conn, _audit(data.contract_id, f"credit-{c.credit_id}",
                "credit.granted", {"amount": str(c.amount), "periods": c.applies_to_periods,
                                   "reason": c.reason}, data.rules_version, actor=c.granted_by))  # fmt: skip

    @activity.defn
    async def record_milestone_delivery(self, data: MilestoneInput) -> bool:
        """True when recorded now (False: it was recorded before)."""
        d = data.delivery
        async with self._pool.acquire() as conn, conn.transaction():
            status: str = await conn.execute(
                """INSERT INTO milestone_delivery (deal_id, milestone_id, delivered_on,
                       accepted_on, accepted_by, evidence)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                data.contract_id, d.milestone_id, d.delivered_on, d.accepted_on, d.accepted_by,
                {"evidence": d.evidence, "recorded_by": d.recorded_by},
            )  # fmt: skip
            await insert_audit_event(conn, _audit(data.contract_id, f"milestone:{d.milestone_id}",
                "milestone.accepted", {"milestone": d.milestone_id,
                                       "accepted_on": d.accepted_on.isoformat(),
                                       "accepted_by": d.accepted_by},
                data.rules_version, actor=d.recorded_by))  # fmt: skip
        return status.endswith(" 1")

    @activity.defn
    async def record_time_approval(self, data: TimeInput) -> TimeApprovalResult:
        """Store the approved entries once each and recognise the new ones (revenue as the
        work is approved; billed later, so it sits in unbilled receivable until invoiced)."""
        a, cid, currency = data.approval, data.contract_id, data.currency
        key = f"tm:{cid}:{a.approval_id}"
        prices = [data.unit_prices[e.line_id] for e in a.entries]
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, cid)
            rows = await conn.fetch(
                """INSERT INTO tm_entry (deal_id, entry_id, line_id, work_date, period,
                       description, quantity, unit_price, amount, currency, approved_by)
                   SELECT $1, e.id, e.line, e.day, to_char(e.day, 'YYYY-MM'), e.what, e.qty,
                          e.price, round(e.qty * e.price, $4), $2, $3
                   FROM unnest($5::text[], $6::text[], $7::date[], $8::text[], $9::numeric[],
                               $10::numeric[]) AS e(id, line, day, what, qty, price)
                   ON CONFLICT DO NOTHING RETURNING line_id, amount""",
                cid, currency, a.approved_by, minor_units(currency),
                [e.entry_id for e in a.entries], [e.line_id for e in a.entries],
                [e.work_date for e in a.entries], [e.description for e in a.entries],
                [e.quantity for e in a.entries], prices,
            )  # fmt: skip
            by_line: dict[str, Money] = {}
            for r in rows:
                by_line[r["line_id"]] = by_line.get(r["line_id"], Money.zero(currency)) + Money(
                    amount=r["amount"], currency=currency
                )
            recognised = await self._recognise(conn, cid, currency, key, by_line,
                                               max(e.work_date for e in a.entries),
                                               f"T&M approval {a.approval_id}")  # fmt: skip
            await insert_audit_event(conn, _audit(cid, key, "time.approved",
                {"entries": len(rows), "recognised": str(recognised)}, data.rules_version,
                actor=a.approved_by))  # fmt: skip
        return TimeApprovalResult(approval_id=a.approval_id, entries_recorded=len(rows),
                                  recognised=recognised)  # fmt: skip

    async def _recognise(self, conn: DbConnection, cid: str, currency: str, key: str,
                         by_line: dict[str, Money], on: date, what: str) -> Money:  # fmt: skip
        if await fetch_journal_entry(conn, key) is not None or not by_line:
            return Money.zero(currency)
        position = await ledger_position(conn, cid, currency)
        entry = recognition_entry(
            key=key, deal_id=cid, entry_date=on, description=f"Revenue recognised: {what}",
            revenue_by_line=by_line,
            deferred_balance=-position.accounts.get(Account.DEFERRED_REVENUE, Money.zero(currency)),
        )  # fmt: skip
        if entry is None:
            return Money.zero(currency)
        await insert_journal_entry(conn, entry)
        return Money(amount=sum((m.amount for m in by_line.values()), Decimal(0)),
                     currency=currency)  # fmt: skip

    @activity.defn
    async def invoice_metered(self, data: MeteredInput) -> Invoice | None:
        """One invoice for the usage and approved T&M not yet invoiced through the period
        (usage is recognised as it is invoiced: it was consumed). None when there is none."""
        cid, deal = data.contract_id, data.deal
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, cid)
            existing = await conn.fetchval(
                "SELECT document FROM invoice WHERE idempotency_key = $1", data.idempotency_key
            )
            if existing is not None:
                return Invoice.model_validate(existing)
            if data.threshold is not None and await self._rated_usage(conn, data) < data.threshold:
                return None
            placeholder = f"pending:{data.idempotency_key}"
            usage = await self._take_usage(conn, data, placeholder)
            tm = (
                [] if data.threshold is not None else await self._take_time(conn, data, placeholder)
            )
            if not usage and not tm:
                return None
            result = await self._issue(conn, data, [*usage, *tm])
            number = result.invoice.number
            await conn.execute("UPDATE usage_record SET invoice_number = $2 WHERE contract_id = $1 "
                               "AND invoice_number = $3", cid, number, placeholder)  # fmt: skip
            await conn.execute("UPDATE tm_entry SET invoice_number = $2 WHERE deal_id = $1 "
                               "AND invoice_number = $3", cid, number, placeholder)  # fmt: skip
            usage_by_line: dict[str, Money] = {}
            for line in usage:
                usage_by_line[line.line_id] = usage_by_line.get(
                    line.line_id, Money.zero(deal.currency)) + line.amount  # fmt: skip
            await self._recognise(conn, cid, deal.currency, f"usage:{number}", usage_by_line,
                                  data.issued_on, f"usage invoiced on {number}")  # fmt: skip
            return result.invoice

    async def _usage_sums(self, conn: DbConnection, data: MeteredInput) -> list[asyncpg.Record]:
        return await conn.fetch(
            """SELECT metric, sum(quantity) AS quantity, min(period) AS first, max(period) AS last
               FROM usage_record WHERE contract_id = $1 AND billed_period IS NULL AND period <= $2
               GROUP BY metric ORDER BY metric""",
            data.contract_id, data.through_period,
        )  # fmt: skip

    async def _rated_usage(self, conn: DbConnection, data: MeteredInput) -> Decimal:
        lines = usage_lines_by_metric(data.deal)
        total = Decimal(0)
        for r in await self._usage_sums(conn, data):
            line = lines.get(r["metric"]) or lines.get(None)
            if line is not None:
                total += r["quantity"] * line.net_price
        return total

    async def _take_usage(self, conn: DbConnection, data: MeteredInput,
                          placeholder: str) -> list[InvoiceLine]:  # fmt: skip
        """Mark the rateable usage records as billed on this invoice; their invoice lines."""
        lines = usage_lines_by_metric(data.deal)
        named = [m for m in lines if m is not None]
        rated = [r for r in await self._usage_sums(conn, data)
                 if r["metric"] in named or None in lines]  # fmt: skip
        if not rated:
            return []
        await conn.execute(
            """UPDATE usage_record SET billed_period = $2, invoice_number = $3
               WHERE contract_id = $1 AND billed_period IS NULL AND period <= $4
                 AND metric = ANY($5::text[])""",
            data.contract_id, period_label(data.issued_on) if data.threshold is not None
            else data.through_period, placeholder, data.through_period,
            [r["metric"] for r in rated],
        )  # fmt: skip
        out = []
        for r in rated:
            line = lines.get(r["metric"]) or lines[None]
            span = r["first"] if r["first"] == r["last"] else f"{r['first']} to {r['last']}"
            out.append(rated_line(line, r["metric"], r["quantity"], data.deal.currency,
                                  f"used in {span}"))  # fmt: skip
        return out

    async def _take_time(self, conn: DbConnection, data: MeteredInput,
                         placeholder: str) -> list[InvoiceLine]:  # fmt: skip
        rows = await conn.fetch(
            """UPDATE tm_entry SET invoice_number = $3
               WHERE deal_id = $1 AND invoice_number IS NULL AND period <= $2
               RETURNING line_id, entry_id, work_date, description, quantity, unit_price, amount""",
            data.contract_id, data.through_period, placeholder,
        )  # fmt: skip
        currency = data.deal.currency
        products = {ln.line_id: ln.product for ln in data.deal.lines}
        return [InvoiceLine(
            line_id=r["line_id"], quantity=r["quantity"],
            unit_price=Money(amount=r["unit_price"], currency=currency),
            amount=Money(amount=r["amount"], currency=currency),
            description=f"{products.get(r['line_id'], r['line_id'])}: {r['description']} "
                        f"({r['work_date']}, entry {r['entry_id']})",
            service_start=r["work_date"], service_end=r["work_date"],
        ) for r in sorted(rows, key=lambda r: (r["work_date"], r["entry_id"]))]  # fmt: skip

    async def _issue(self, conn: DbConnection, data: MeteredInput,
                     lines: list[InvoiceLine]) -> IssueInvoiceResult:  # fmt: skip
        end = month_end(date.fromisoformat(f"{data.through_period}-01"))
        starts = [ln.service_start for ln in lines if ln.service_start] or [end.replace(day=1)]
        early = " (usage threshold reached)" if data.threshold is not None else ""
        event = BillingEvent(invoice_date=data.issued_on, period_start=min(starts),
                             period_end=end, lines=lines,
                             reason=f"usage and time through {data.through_period}{early}")  # fmt: skip
        draft = draft_invoice(data.deal, event, data.rules, issued_on=data.issued_on)
        return await issue_in_transaction(conn, draft, data.idempotency_key,
                                          data.rules.version)  # fmt: skip

    @activity.defn
    async def record_amendment(self, data: AmendmentInput) -> None:
        """The amendment, the schedule version it produces and the contract's new terms,
        in one transaction (a retry finds the amendment and writes nothing)."""
        a, cid = data.amendment, data.contract_id
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_deal(conn, cid)
            known = await conn.fetchval("SELECT 1 FROM contract_amendment WHERE deal_id = $1 "
                                        "AND amendment_id = $2", cid, a.amendment_id)  # fmt: skip
            if known:
                return
            current = await _latest_schedule(conn, cid)
            try:
                entries = modified_schedule(current, data.before, data.after, a,
                                            frozenset(data.delivered))  # fmt: skip
            except ModificationShortfall as exc:
                raise ApplicationError(f"amendment {a.amendment_id}: {exc}",
                                       type="InvalidContractChange", non_retryable=True) from exc  # fmt: skip
            treatment = treatment_of(data.before, a).value
            await _store_schedule_version(conn, cid, data.schedule_version, entries)
            await conn.execute(
                """INSERT INTO contract_amendment (deal_id, amendment_id, kind, effective_date,
                       treatment, schedule_version, payload, requested_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                cid, a.amendment_id, a.kind.value, a.effective_date, treatment,
                data.schedule_version, jsonable(a), a.requested_by,
            )  # fmt: skip
            deal = data.after.current
            await conn.execute(
                """UPDATE contract SET deal = $2, tcv = $3, status = $4, cancelled_on = $5
                   WHERE contract_id = $1""",
                cid, jsonable(deal), deal.total_contract_value,
                "cancelled" if data.after.cancelled_on else "active", data.after.cancelled_on,
            )  # fmt: skip
            await insert_audit_event(conn, _audit(cid, f"amendment:{a.amendment_id}",
                "contract.amended", {"kind": a.kind.value, "effective": a.effective_date.isoformat(),
                                     "treatment": treatment,
                                     "schedule_version": data.schedule_version,
                                     "tcv": str(deal.total_contract_value)},
                data.rules_version, actor=a.requested_by))  # fmt: skip

    @activity.defn
    async def finish_contract(self, contract_id: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE contract SET status = 'ended' WHERE contract_id = $1 "
                               "AND status = 'active'", contract_id)  # fmt: skip
            await insert_audit_event(conn, _audit(contract_id, "ended", "contract.ended", {}, ""))


async def _latest_schedule(conn: DbConnection, deal_id: str) -> list[ScheduleEntry]:
    rows = await conn.fetch(
        """SELECT line_id, period, recognition_date, amount, currency, kind, milestone_id,
                  requires_event FROM recognition_schedule
           WHERE deal_id = $1 AND version = (SELECT max(version) FROM recognition_schedule
                                             WHERE deal_id = $1)
           ORDER BY entry_no""",
        deal_id,
    )
    return [ScheduleEntry(line_id=r["line_id"], period=r["period"],
                          recognition_date=r["recognition_date"],
                          amount=Money(amount=r["amount"], currency=r["currency"]),
                          kind=ScheduleKind(r["kind"]), milestone_id=r["milestone_id"],
                          requires_event=r["requires_event"]) for r in rows]  # fmt: skip


async def _store_schedule_version(
    conn: DbConnection, deal_id: str, version: int, es: list[ScheduleEntry]
) -> None:
    await conn.execute(
        """INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
               recognition_date, amount, currency, kind, milestone_id, requires_event)
           SELECT $1, $2, e.* FROM unnest($3::int[], $4::text[], $5::text[], $6::date[],
               $7::numeric[], $8::text[], $9::text[], $10::text[], $11::bool[]) AS e
           ON CONFLICT DO NOTHING""",
        deal_id, version, list(range(1, len(es) + 1)), [e.line_id for e in es],
        [e.period for e in es], [e.recognition_date for e in es],
        [e.amount.amount for e in es], [e.amount.currency for e in es],
        [str(e.kind) for e in es], [e.milestone_id for e in es], [e.requires_event for e in es],
    )  # fmt: skip
