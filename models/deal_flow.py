"""Input, state and outcome of the deal workflow (`deal-<crm id>`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from models.case import CaseOutcome
from models.deal import DealSubmission
from models.invoice import Invoice
from models.ledger import Account, JournalEntry
from models.money import Money
from models.qa import GateResult
from models.recognition import RecognitionSchedule
from models.rules import Role, RuleSet


class DealStage(StrEnum):
    READING_CRM = "reading_crm"
    QA = "qa"
    AWAITING_RESOLUTION = "awaiting_resolution"
    BOOKING = "booking"
    INVOICING = "invoicing"
    RECOGNISING = "recognising"
    COMPLETED = "completed"
    REJECTED = "rejected"


class DealInput(BaseModel):
    """Either the parsed deal (file and API doors) or the CRM id to read it from (HubSpot)."""

    deal: DealSubmission | None = None
    crm_deal_id: str | None = None
    source: str = Field(description="'file', 'api' or 'hubspot'")
    inbox_id: int | None = None
    submitted_by: str
    rules: RuleSet
    starts_contract: bool = Field(
        default=False,
        description="Set by `start_deal`: this deal began on code that always starts its "
        "contract workflow, so it needs no `contract-workflow` patch marker (a marker event "
        "and a search-attribute write per deal). Absent, so False, in older histories.",
    )
    stage_with_close: bool = Field(
        default=False,
        description="Set by `start_deal`: this deal began on code that publishes its final "
        "stage in its last workflow task, with its completion, so the server writes the final "
        "search attributes once, in the closed record. Absent, so False, in older histories, "
        "whose final stage was published before the outcome was audited.",
    )


class OpenCase(BaseModel):
    case_id: str
    check_id: str
    owner_role: Role


class DealBalances(BaseModel):
    """The deal's contract balances as the ledger holds them after the last posting."""

    recognised: Money
    deferred_revenue: Money
    unbilled_receivable: Money
    receivable: Money

    @classmethod
    def from_accounts(cls, debit_balances: dict[Account, Money], currency: str) -> DealBalances:
        """From debit-positive account balances (as `models.ledger.account_balances` gives)."""

        def debit(account: Account) -> Money:
            return debit_balances.get(account, Money.zero(currency))

        return cls(
            recognised=-debit(Account.REVENUE),
            deferred_revenue=-debit(Account.DEFERRED_REVENUE),
            unbilled_receivable=debit(Account.UNBILLED_RECEIVABLE),
            receivable=debit(Account.ACCOUNTS_RECEIVABLE),
        )


class DealState(BaseModel):
    """Everything the `state` query returns: where the deal stands and why."""

    deal_id: str
    stage: DealStage
    source: str
    rules_version: str
    started_at: datetime
    finished_at: datetime | None = None
    deal: DealSubmission | None = None
    gate_runs: int = 0
    gates: list[GateResult] = Field(default_factory=list)
    accepted_checks: list[str] = Field(default_factory=list, description="Approved or overridden")
    open_cases: list[OpenCase] = Field(default_factory=list)
    resolutions: list[CaseOutcome] = Field(default_factory=list)
    invoice: Invoice | None = None
    billing_note: str | None = None
    schedule: RecognitionSchedule | None = None
    postings: list[JournalEntry] = Field(default_factory=list)
    balances: DealBalances | None = None
    outcome: str | None = None
    contract_workflow_id: str | None = Field(
        default=None, description="The contract workflow that bills and earns from here on"
    )

    def owner_role(self) -> Role | None:
        return self.open_cases[0].owner_role if self.open_cases else None


class DealOutcome(BaseModel):
    deal_id: str
    stage: DealStage
    invoice_number: str | None
    invoice_total: Money | None
    recognised: Money | None
    deferred_revenue: Money | None
    outcome: str
