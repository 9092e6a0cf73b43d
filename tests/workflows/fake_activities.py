"""In-memory stand-ins for the outside systems, registered under the real activity names.

They keep what a workflow test asserts on (invoices, entries, cases) and compute amounts
with the same pure rules as the real activities.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.cases import CaseEventInput, OpenCaseInput, OverrideEventInput
from activities.crm import ReadCrmDealInput, ReadCrmDealResult
from activities.invoicing import IssueInvoiceInput, IssueInvoiceResult
from activities.ledger import PostRecognitionInput, PostRecognitionResult
from activities.notifications import NotificationInput, NotificationResult
from activities.records import (
    DATA_MISMATCH,
    BookContractInput,
    BookContractResult,
    LoadStandingInput,
    RecordGatesInput,
    RecordOutcomeInput,
)
from models.contract_flow import discount_exceptions
from models.customer import CustomerStanding
from models.deal import DealSubmission
from models.deal_flow import DealBalances
from models.invoice import Invoice, invoice_number
from models.ledger import JournalEntry, account_balances, billing_entry, recognition_entry
from models.money import Money
from models.routing import CaseRouting, OperatingRules
from starter.rules_loader import load_rule_book
from starter.settings import PROJECT_ROOT
from tests.workflows.fake_contract_activities import FakeContractSystems

# The shipped operating rules (directory, calendars, escalation chains), loaded once.
OPERATING: OperatingRules = load_rule_book(PROJECT_ROOT / "rules").operating


class FakeSystems(FakeContractSystems):
    def __init__(self) -> None:
        self._init_contracts()
        self.standings: dict[str, CustomerStanding] = {}
        self.crm_deals: dict[str, DealSubmission] = {}
        self.gate_runs: list[RecordGatesInput] = []
        self.contracts: dict[str, BookContractInput] = {}
        self.operating = OPERATING
        self.case_events: list[CaseEventInput] = []
        self.override_events: list[OverrideEventInput] = []
        self.notifications: list[NotificationInput] = []
        self.smtp_down = False
        self.workflow_ids: set[str] = set()  # every workflow that called a fake
        self.invoices: dict[str, Invoice] = {}
        self.entries: dict[str, JournalEntry] = {}
        self.sequences: dict[str, int] = defaultdict(int)
        self.crm_failures = 0
        self.outcomes: list[RecordOutcomeInput] = []

    def _seen(self) -> None:
        self.workflow_ids.add(activity.info().workflow_id or "")

    def balances(self, deal_id: str, currency: str) -> DealBalances:
        mine = [e for e in self.entries.values() if e.deal_id == deal_id]
        return DealBalances.from_accounts(account_balances(mine, currency), currency)

    def balances_of(self, deal_id: str, currency: str) -> DealBalances:
        return self.balances(deal_id, currency)

    @activity.defn(name="load_customer_standing")
    async def load_customer_standing(self, data: LoadStandingInput) -> CustomerStanding:
        self._seen()
        return self.standings.get(data.customer_id, CustomerStanding.new(data.customer_id))

    @activity.defn(name="record_gate_results")
    async def record_gate_results(self, data: RecordGatesInput) -> None:
        self._seen()
        self.gate_runs.append(data)

    @activity.defn(name="record_outcome")
    async def record_outcome(self, data: RecordOutcomeInput) -> None:
        self._seen()
        self.outcomes.append(data)

    @activity.defn(name="book_contract")
    async def book_contract(self, data: BookContractInput) -> BookContractResult:
        self._seen()
        booked = self.contracts.get(data.deal.deal_id)
        if booked is not None and booked.deal.tcv() != data.deal.tcv():
            raise ApplicationError(
                f"contract {data.deal.deal_id} is already booked with other terms: "
                f"tcv booked {booked.deal.tcv().amount}, now {data.deal.tcv().amount}",
                {"tcv": {"booked": str(booked.deal.tcv().amount),
                         "incoming": str(data.deal.tcv().amount)}},
                type=DATA_MISMATCH, non_retryable=True,
            )  # fmt: skip
        self.contracts[data.deal.deal_id] = data
        for found in discount_exceptions(data.deal):
            self.pricing_exceptions.setdefault(found.exception_id, "active")
        return BookContractResult(contract_id=data.deal.deal_id, customer_created=True,
                                  exceptions_booked=True)  # fmt: skip

    @activity.defn(name="open_case")
    async def open_case(self, data: OpenCaseInput) -> CaseRouting:
        self._seen()
        return self.operating.routing_for(data.check_id)

    @activity.defn(name="record_case_event")
    async def record_case_event(self, data: CaseEventInput) -> None:
        self._seen()
        self.case_events.append(data)

    @activity.defn(name="record_override_event")
    async def record_override_event(self, data: OverrideEventInput) -> None:
        self._seen()
        self.override_events.append(data)

    @activity.defn(name="send_notification")
    async def send_notification(self, data: NotificationInput) -> NotificationResult:
        self._seen()
        if self.smtp_down:
            raise ConnectionRefusedError("SMTP server 127.0.0.1:25 refused the connection")
        if all(n.idempotency_key != data.idempotency_key for n in self.notifications):
            self.notifications.append(data)
        return NotificationResult(sent_to=[r.person for r in data.recipients], chat_posted=False,
                                  already_sent=False)  # fmt: skip

    def sent_to(self, person: str) -> list[NotificationInput]:
        return [n for n in self.notifications if person in {r.person for r in n.recipients}]

    @activity.defn(name="issue_invoice")
    async def issue_invoice(self, data: IssueInvoiceInput) -> IssueInvoiceResult:
        self._seen()
        existing = next((i for k, i in self.invoices.items() if k == data.idempotency_key), None)
        if existing is None:
            self.sequences[f"{data.draft.entity.code}:{data.draft.series}"] += 1
            number = invoice_number(
                data.draft.entity.invoice_prefix,
                self.sequences[f"{data.draft.entity.code}:{data.draft.series}"],
                data.draft.series,
            )
            existing = Invoice(**data.draft.model_dump(), number=number)
            self.invoices[data.idempotency_key] = existing
            b = self.balances(existing.deal_id, existing.currency)
            if not existing.total.is_zero():
                entry = billing_entry(existing, b.unbilled_receivable, b.deferred_revenue)
                self.entries[entry.key] = entry
        return IssueInvoiceResult(
            invoice=existing, entry=self.entries.get(f"invoice:{existing.number}"), issued_now=True,
            balances=self.balances(existing.deal_id, existing.currency),
        )  # fmt: skip

    @activity.defn(name="post_recognition")
    async def post_recognition(self, data: PostRecognitionInput) -> PostRecognitionResult:
        self._seen()
        deal = self.contracts[data.deal_id].deal
        delivered = frozenset(data.delivered_milestones)
        due: dict[str, Any] = {}
        for e in self.schedule_of(deal):  # the latest version, as due_by_line reads it
            if (not e.requires_event and e.recognition_date <= data.as_of) or (
                e.milestone_id in delivered
            ):
                due[e.line_id] = due[e.line_id] + e.amount if e.line_id in due else e.amount
        done = self.revenue_by_line(deal.deal_id, deal.currency)
        by_line = {k: v - done[k] if k in done else v for k, v in due.items()}
        key = f"recognition:{deal.deal_id}:{data.as_of}"
        key += f":{data.occasion}" if data.occasion else ""
        entry = self.entries.get(key) or recognition_entry(
            key=key, deal_id=deal.deal_id, entry_date=data.as_of,
            description="recognised", revenue_by_line={k: v for k, v in by_line.items() if v.amount > 0},
            deferred_balance=self.balances(deal.deal_id, deal.currency).deferred_revenue,
        )  # fmt: skip
        if entry is not None:
            self.entries[entry.key] = entry
        return PostRecognitionResult(entry=entry,
                                     balances=self.balances(deal.deal_id, deal.currency))  # fmt: skip

    def revenue_by_line(self, deal_id: str, currency: str) -> dict[str, Any]:
        """Revenue recognised so far per contract line."""
        out: dict[str, Any] = {}
        for entry in (e for e in self.entries.values() if e.deal_id == deal_id):
            for line in entry.lines:
                if line.account.value == "4000 Revenue" and line.line_id:
                    delta = Money(amount=line.credit - line.debit, currency=currency)
                    out[line.line_id] = out[line.line_id] + delta if line.line_id in out else delta
        return out

    @activity.defn(name="read_crm_deal")
    async def read_crm_deal(self, data: ReadCrmDealInput) -> ReadCrmDealResult:
        self._seen()
        if self.crm_failures > 0:
            self.crm_failures -= 1
            raise RuntimeError("HubSpot answered 503")
        deal = self.crm_deals.get(data.crm_deal_id)
        if deal is None:
            return ReadCrmDealResult(deal=None, errors=[f"deal {data.crm_deal_id} not found"])
        return ReadCrmDealResult(deal=deal)

    def all(self) -> list[Any]:
        return [
            self.load_customer_standing, self.record_gate_results, self.book_contract,
            self.open_case, self.record_case_event, self.record_override_event,
            self.send_notification,
            self.record_outcome, self.issue_invoice, self.post_recognition, self.read_crm_deal,
            *self.contract_activities(),
        ]  # fmt: skip
