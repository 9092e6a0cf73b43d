"""In-memory stand-ins for the contract activities, computing with the same pure rules as
the real ones (`activities/contracts.py`, `activities/invoice_dispatch.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    AmendmentInput,
    BillingContactInput,
    CreditInput,
    ExceptionStatusInput,
    MeteredInput,
    MilestoneInput,
    StartContractInput,
    TimeInput,
)
from activities.invoice_dispatch import DispatchInvoiceInput, DispatchInvoiceResult
from models.billing import BillingEvent, InvoiceLine
from models.contract_flow import TimeApprovalResult
from models.contract_invoicing import rated_line, usage_lines_by_metric
from models.deal import DealSubmission
from models.invoice import Invoice, draft_invoice, invoice_number
from models.ledger import JournalEntry, billing_entry, recognition_entry
from models.modification import CreditTooLarge, credited_schedule, modified_schedule
from models.money import Money
from models.reallocation import ModificationShortfall
from models.recognition import ScheduleEntry, build_schedule


@dataclass
class FakeUsage:
    contract_id: str
    record_id: str
    metric: str
    quantity: Decimal
    period: str
    billed_on: str | None = None


class FakeContractSystems:
    """Mixed into `FakeSystems`: it provides `_seen`, `invoices`, `entries`, `sequences`,
    `balances` and `contracts`."""

    invoices: dict[str, Invoice]
    entries: dict[str, JournalEntry]
    sequences: dict[str, int]
    contracts: dict[str, Any]

    def _init_contracts(self) -> None:
        self.pricing_exceptions: dict[str, str] = {}
        self.credit_hold: set[str] = set()
        self.deliveries: dict[str, date] = {}
        self.time_entries: dict[str, tuple[str, Money, bool]] = {}
        self.usage: list[FakeUsage] = []
        self.schedules: dict[str, list[list[ScheduleEntry]]] = {}
        self.amendments: list[AmendmentInput] = []
        self.dispatched: list[str] = []
        self.undeliverable = False  # the invoice's own billing contact bounces
        self.refused_addresses: set[str] = set()  # corrected contacts that bounce too
        self.billing_contacts: dict[str, str] = {}  # customer id → corrected address
        self.finished: list[str] = []

    def _seen(self) -> None:
        raise NotImplementedError

    def balances_of(self, deal_id: str, currency: str) -> Any:
        raise NotImplementedError

    def schedule_of(self, deal: DealSubmission) -> list[ScheduleEntry]:
        versions = self.schedules.setdefault(deal.deal_id, [build_schedule(deal).entries])
        return versions[-1]

    def issue(self, deal: DealSubmission, event: BillingEvent, rules: Any, key: str,
              issued_on: date) -> Invoice:  # fmt: skip
        """Number and post an invoice as `issue_invoice` does."""
        if key in self.invoices:
            return self.invoices[key]
        draft = draft_invoice(deal, event, rules, issued_on=issued_on)
        series = f"{draft.entity.code}:{draft.series}"
        self.sequences[series] += 1
        number = invoice_number(draft.entity.invoice_prefix, self.sequences[series], draft.series)
        invoice = Invoice(**draft.model_dump(), number=number)
        self.invoices[key] = invoice
        b = self.balances_of(deal.deal_id, deal.currency)
        if not invoice.total.is_zero():
            entry = billing_entry(invoice, b.unbilled_receivable, b.deferred_revenue)
            self.entries[entry.key] = entry
        return invoice

    def contract_invoices(self, deal_id: str) -> list[Invoice]:
        return [i for i in self.invoices.values() if i.deal_id == deal_id]  # in issue order

    @activity.defn(name="start_contract_records")
    async def start_contract_records(self, data: StartContractInput) -> list[tuple[str, date]]:
        self._seen()
        out = []
        for line in data.deal.lines:
            if line.discount_percent > 0:
                self.pricing_exceptions[f"discount-{line.line_id}"] = "active"
                if line.discount_expiry:
                    out.append((f"discount-{line.line_id}", line.discount_expiry))
        return out

    @activity.defn(name="customer_on_credit_hold")
    async def customer_on_credit_hold(self, customer_id: str) -> bool:
        self._seen()
        return customer_id in self.credit_hold

    @activity.defn(name="close_pricing_exception")
    async def close_pricing_exception(self, data: ExceptionStatusInput) -> None:
        self._seen()
        self.pricing_exceptions[data.exception_id] = f"{data.status} {data.closed_on}"

    @activity.defn(name="record_credit")
    async def record_credit(self, data: CreditInput) -> None:
        self._seen()
        current = self.schedule_of(self.contracts[data.contract_id].deal)
        credit = Money(amount=data.credit.amount, currency=data.currency)
        try:
            self.schedules[data.contract_id].append(
                credited_schedule(current, credit, data.granted_on)
            )
        except CreditTooLarge as exc:
            raise ApplicationError(
                str(exc), type="InvalidContractChange", non_retryable=True
            ) from exc
        self.pricing_exceptions[f"credit-{data.credit.credit_id}"] = "active"

    @activity.defn(name="record_milestone_delivery")
    async def record_milestone_delivery(self, data: MilestoneInput) -> bool:
        self._seen()
        new = data.delivery.milestone_id not in self.deliveries
        self.deliveries[data.delivery.milestone_id] = data.delivery.accepted_on
        return new

    @activity.defn(name="record_time_approval")
    async def record_time_approval(self, data: TimeInput) -> TimeApprovalResult:
        self._seen()
        by_line: dict[str, Money] = {}
        for e in data.approval.entries:
            if e.entry_id in self.time_entries:
                continue
            amount = Money(amount=e.quantity * data.unit_prices[e.line_id], currency=data.currency)
            self.time_entries[e.entry_id] = (e.line_id, amount, False)
            by_line[e.line_id] = by_line.get(e.line_id, Money.zero(data.currency)) + amount
        b = self.balances_of(data.contract_id, data.currency)
        entry = recognition_entry(
            key=f"tm:{data.contract_id}:{data.approval.approval_id}", deal_id=data.contract_id,
            entry_date=max(e.work_date for e in data.approval.entries), description="T&M",
            revenue_by_line=by_line, deferred_balance=b.deferred_revenue,
        )  # fmt: skip
        if entry is not None:
            self.entries[entry.key] = entry
        total = sum((m.amount for m in by_line.values()), Decimal(0))
        return TimeApprovalResult(approval_id=data.approval.approval_id,
                                  entries_recorded=len(by_line) and len(data.approval.entries),
                                  recognised=Money(amount=total, currency=data.currency))  # fmt: skip

    @activity.defn(name="invoice_metered")
    async def invoice_metered(self, data: MeteredInput) -> Invoice | None:
        self._seen()
        if data.idempotency_key in self.invoices:
            return self.invoices[data.idempotency_key]
        deal, lines = data.deal, usage_lines_by_metric(data.deal)
        unbilled = [u for u in self.usage if u.contract_id == data.contract_id
                    and u.billed_on is None and u.period <= data.through_period]  # fmt: skip
        by_metric: dict[str, Decimal] = {}
        for u in unbilled:
            by_metric[u.metric] = by_metric.get(u.metric, Decimal(0)) + u.quantity
        rated = [rated_line(lines.get(m) or lines[None], m, q, deal.currency, "used")
                 for m, q in sorted(by_metric.items())]  # fmt: skip
        if data.threshold is not None and sum(r.amount.amount for r in rated) < data.threshold:
            return None
        tm: list[InvoiceLine] = []
        if data.threshold is None:
            for entry_id, (line_id, amount, billed) in list(self.time_entries.items()):
                if not billed:
                    tm.append(InvoiceLine(line_id=line_id, description=entry_id,
                                          quantity=Decimal(1), unit_price=amount, amount=amount))  # fmt: skip
                    self.time_entries[entry_id] = (line_id, amount, True)
        if not rated and not tm:
            return None
        for u in unbilled:
            u.billed_on = data.idempotency_key
        event = BillingEvent(invoice_date=data.issued_on, period_start=data.issued_on,
                             period_end=data.issued_on, lines=[*rated, *tm], reason="metered")  # fmt: skip
        invoice = self.issue(deal, event, data.rules, data.idempotency_key, data.issued_on)
        by_line: dict[str, Money] = {}
        for r in rated:
            by_line[r.line_id] = by_line.get(r.line_id, Money.zero(deal.currency)) + r.amount
        b = self.balances_of(deal.deal_id, deal.currency)
        entry = recognition_entry(key=f"usage:{invoice.number}", deal_id=deal.deal_id,
                                  entry_date=data.issued_on, description="usage",
                                  revenue_by_line=by_line, deferred_balance=b.deferred_revenue)  # fmt: skip
        if entry is not None:
            self.entries[entry.key] = entry
        return invoice

    @activity.defn(name="record_amendment")
    async def record_amendment(self, data: AmendmentInput) -> None:
        self._seen()
        if any(a.amendment.amendment_id == data.amendment.amendment_id for a in self.amendments):
            return
        current = self.schedule_of(data.before.versions[0].deal)
        try:
            entries = modified_schedule(current, data.before, data.after, data.amendment,
                                        frozenset(data.delivered))  # fmt: skip
        except ModificationShortfall as exc:
            raise ApplicationError(str(exc), type="InvalidContractChange",
                                   non_retryable=True) from exc  # fmt: skip
        self.schedules[data.contract_id].append(entries)
        self.amendments.append(data)

    @activity.defn(name="finish_contract")
    async def finish_contract(self, contract_id: str) -> None:
        self._seen()
        self.finished.append(contract_id)

    @activity.defn(name="dispatch_invoice")
    async def dispatch_invoice(self, data: DispatchInvoiceInput) -> DispatchInvoiceResult:
        self._seen()
        to = data.send_to.email if data.send_to else None
        if (to is None and self.undeliverable) or to in self.refused_addresses:
            raise ApplicationError("550 5.1.1 mailbox unavailable", type="InvoiceUndeliverable",
                                   non_retryable=True)  # fmt: skip
        self.dispatched.append(data.invoice_number)
        return DispatchInvoiceResult(invoice_number=data.invoice_number, message_id="<m@x>",
                                     attachment=f"{data.invoice_number}.pdf", pdf_sha256="0" * 64,
                                     sent_at=datetime.now(UTC), already_sent=False)  # fmt: skip

    @activity.defn(name="record_billing_contact")
    async def record_billing_contact(self, data: BillingContactInput) -> None:
        self._seen()
        self.billing_contacts[data.customer_id] = str(data.contact.email)

    def contract_activities(self) -> list[Any]:
        return [
            self.start_contract_records, self.customer_on_credit_hold,
            self.close_pricing_exception, self.record_credit, self.record_milestone_delivery,
            self.record_time_approval, self.invoice_metered, self.record_amendment,
            self.finish_contract, self.dispatch_invoice, self.record_billing_contact,
        ]  # fmt: skip
