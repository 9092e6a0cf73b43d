"""Input, messages and state of the contract workflow (`contract-<id>`).

The workflow continues as new once per billing period (and once per metered month), carrying
only this state: terms, what each recurring period was billed, and what is still pending.
Schedules, invoices and entries live in the database.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.amendment import Treatment
from models.contract_terms import ContractTerms
from models.deal import DealSubmission, Identifier
from models.money import Money
from models.rules import RuleSet
from models.validation import EmailAddress

MAX_EVENTS = 40


class ContractStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    ENDED = "ended"


class ContractEvent(BaseModel):
    """One thing the contract did, for the `state` query (the last MAX_EVENTS are kept)."""

    at: datetime
    kind: str
    detail: str
    invoice_number: str | None = None


class Credit(BaseModel):
    """A credit granted to the customer, offsetting the invoices of the periods it names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credit_id: Identifier
    amount: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    granted_by: Annotated[str, Field(min_length=1)]
    applies_to_periods: Annotated[list[int], Field(min_length=1)] = Field(
        description="Billing period numbers whose invoices it offsets, in order"
    )


class CreditBalance(BaseModel):
    credit: Credit
    remaining: Money


class MilestoneDelivered(BaseModel):
    """A milestone delivered and accepted by the customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    milestone_id: Identifier
    delivered_on: date
    accepted_on: date
    accepted_by: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Who accepted it on the customer's side, as on the acceptance"
    )
    recorded_by: Annotated[str, Field(min_length=1)] = Field(description="Person id")
    evidence: Annotated[str, Field(max_length=2000)] = Field(
        default="", description="Acceptance reference: a signed certificate, an e-mail id"
    )


class TimeEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: Identifier
    line_id: Identifier
    work_date: date
    description: Annotated[str, Field(min_length=1, max_length=500)]
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] = Field(
        description="Hours, or deliverables"
    )


class TimeApproval(BaseModel):
    """Hours or deliverables of T&M lines, approved; billed at the line's net price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_id: Identifier
    approved_by: Annotated[str, Field(min_length=1)] = Field(description="Person id")
    entries: Annotated[list[TimeEntry], Field(min_length=1, max_length=5000)]


class DiscountException(BaseModel):
    """A discount on a contract line, tracked as a pricing exception until it expires."""

    exception_id: str
    line_id: str
    percent: Decimal
    expires_on: date | None


def discount_exceptions(deal: DealSubmission) -> list[DiscountException]:
    """One pricing exception per discounted line, named `discount-<line id>`."""
    return [DiscountException(exception_id=f"discount-{ln.line_id}", line_id=ln.line_id,
                              percent=ln.discount_percent, expires_on=ln.discount_expiry)
            for ln in deal.lines if ln.discount_percent > 0]  # fmt: skip


def open_discounts(deal: DealSubmission) -> list[tuple[str, date]]:
    """(exception id, expiry) of the discounts the contract workflow closes on their day."""
    return [(d.exception_id, d.expires_on) for d in discount_exceptions(deal) if d.expires_on]


class ContractInput(BaseModel):
    """Everything a run of the contract workflow starts from."""

    contract_id: str
    customer_id: str
    terms: ContractTerms
    rules: RuleSet
    started_by: str = Field(description="The workflow that booked it, e.g. deal-hs-deal-90401")
    first_invoice: tuple[str, str] | None = Field(
        default=None, description="(number, total) of the deal's first invoice, to e-mail"
    )
    billed: dict[str, Money] = Field(
        default_factory=dict, description="'<period>:<line>' → what that period billed"
    )
    next_period: int = Field(default=1, description="The next recurring period to invoice")
    metered_through: str | None = Field(
        default=None, description="Last 'YYYY-MM' whose usage and T&M were invoiced"
    )
    usage_early_invoices: int = 0
    delivered: list[str] = Field(default_factory=list, description="Milestones accepted")
    credits: list[CreditBalance] = Field(default_factory=list)
    open_discounts: list[tuple[str, date]] = Field(
        default_factory=list, description="(exception id, expiry) of discounts still running"
    )
    exceptions_booked: bool = Field(
        default=False,
        description="The deal's book_contract recorded the discounts as pricing exceptions "
        "and the deal started this workflow with its search attributes (False: contracts "
        "started before that, whose first run records them itself)",
    )
    amendments: list[str] = Field(default_factory=list, description="Amendment ids taken")
    schedule_version: int = 1
    undelivered_invoices: list[str] = Field(
        default_factory=list, description="Invoices whose e-mail failed; a case is open"
    )
    resent: dict[str, int] = Field(
        default_factory=dict, description="invoice number → how often it was re-sent"
    )
    events: list[ContractEvent] = Field(default_factory=list)
    cycle: int = 0


class AmendmentResult(BaseModel):
    amendment_id: str
    treatment: Treatment = Field(
        description="separate_contract (25-12), prospective (25-13(a)) or cumulative_catch_up "
        "(25-13(b))"
    )
    schedule_version: int
    schedule_deadline: date = Field(description="5 business days after it was received")
    billing_from_period: int | None
    credit_note: str | None = None


class MilestoneResult(BaseModel):
    milestone_id: str
    invoice_number: str | None
    invoice_total: Money | None
    recognised: Money


class InvoiceResend(BaseModel):
    """Send an invoice whose e-mail bounced again, to a corrected billing contact (which
    also receives the contract's invoices from now on)."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: Annotated[str, Field(min_length=1, max_length=40)]
    email: EmailAddress = Field(description="The corrected billing contact's address")
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="The contact's name; the current one's when left out"
    )
    requested_by: Annotated[str, Field(min_length=1)] = Field(description="Person id")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class InvoiceResendResult(BaseModel):
    invoice_number: str
    resend: int = Field(description="1 for the first re-send of this invoice, and so on")
    message_id: str
    case_withdrawn: str | None = Field(description="The dispatch case closed by it, if open")


class TimeApprovalResult(BaseModel):
    approval_id: str
    entries_recorded: int
    recognised: Money


class ContractState(BaseModel):
    """What the `state` query returns."""

    contract_id: str
    status: ContractStatus
    terms: ContractTerms
    next_period: int
    next_invoice_date: date | None
    metered_through: str | None
    delivered: list[str]
    credits: list[CreditBalance]
    open_discounts: list[tuple[str, date]]
    amendments: list[str]
    schedule_version: int
    on_credit_hold: bool
    undelivered_invoices: list[str]
    events: list[ContractEvent]
    cycle: int


class ContractOutcome(BaseModel):
    contract_id: str
    status: ContractStatus
    periods_billed: int
