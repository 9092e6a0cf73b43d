"""Database tables of the system of record (SQLModel). Alembic reads `SQLModel.metadata`.

Only activities and migrations import this module; workflows never do. Guarantees that must
hold whatever code writes the rows (balanced entries, append-only ledger and audit trail,
the audit hash chain, locked periods) are enforced by triggers in the migrations.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

MONEY = Numeric(20, 4)


def _money() -> Any:
    return Field(sa_column=Column(MONEY, nullable=False))


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


def _created() -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class InboxItem(SQLModel, table=True):
    """Every trigger, stored raw before anything else (DESIGN decision 4)."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    source: str = Field(sa_column=Column(Text, nullable=False))
    source_id: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _created()
    content_type: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="received"))
    errors: Any = _json(nullable=True)
    deal_id: str | None = Field(default=None, sa_column=Column(Text))
    workflow_id: str | None = Field(default=None, sa_column=Column(Text))


class ApiKey(SQLModel, table=True):
    """API keys: only the sha256 of the secret is kept."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    role: str = Field(sa_column=Column(Text, nullable=False))
    key_prefix: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    created_at: datetime = _created()
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class CustomerRecord(SQLModel, table=True):
    __tablename__ = "customer"

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    legal_entity: str = Field(sa_column=Column(Text, nullable=False))
    billing_contact: Any = _json()
    billing_address: Any = _json()
    tax_registration_number: str | None = Field(default=None, sa_column=Column(Text))
    payment_method: str = Field(sa_column=Column(Text, nullable=False))
    on_credit_hold: bool = Field(default=False, nullable=False)
    late_payments: int = Field(default=0, nullable=False)
    created_at: datetime = _created()


class ContractRecord(SQLModel, table=True):
    """A booked contract; `deal` keeps the submission it was booked from."""

    __tablename__ = "contract"

    contract_id: str = Field(sa_column=Column(Text, primary_key=True))
    deal_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    customer_id: str = Field(
        sa_column=Column(Text, ForeignKey("customer.customer_id"), nullable=False)
    )
    currency: str = Field(sa_column=Column(Text, nullable=False))
    tcv: Decimal = _money()
    arr: Decimal = _money()
    tcv_usd: Decimal = _money()
    arr_usd: Decimal = _money()
    start_date: date
    end_date: date
    billing_frequency: str = Field(sa_column=Column(Text, nullable=False))
    recognition_type: str = Field(sa_column=Column(Text, nullable=False))
    deal: Any = _json()
    rules_version: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _created()
    status: str = Field(
        default="active", sa_column=Column(Text, nullable=False, server_default="active")
    )
    cancelled_on: date | None = None


class GateResultRecord(SQLModel, table=True):
    __tablename__ = "gate_result"

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    run_no: int = Field(primary_key=True)
    check_id: str = Field(sa_column=Column(Text, primary_key=True))
    layer: str = Field(sa_column=Column(Text, nullable=False))
    passed: bool
    severity: str = Field(sa_column=Column(Text, nullable=False))
    owner_role: str = Field(sa_column=Column(Text, nullable=False))
    messages: Any = _json()
    evidence: Any = _json()
    rules_version: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _created()


class ExceptionCaseRecord(SQLModel, table=True):
    """An exception case as operators list it; the case workflow is its source of truth."""

    __tablename__ = "exception_case"

    case_id: str = Field(sa_column=Column(Text, primary_key=True))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    check_id: str = Field(sa_column=Column(Text, nullable=False))
    owner_role: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    messages: Any = _json()
    opened_at: datetime = _created()
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    resolution: Any = _json(nullable=True)
    rules_version: str = Field(sa_column=Column(Text, nullable=False))
    level: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    sla_deadline: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    breached: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    override_expires_on: date | None = None
    signoff_due: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    signed_off_by: str | None = Field(default=None, sa_column=Column(Text))
    signed_off_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    audit_flagged: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )


class RuleSetRecord(SQLModel, table=True):
    """Every rule set a deal or case ran under, by version (content hash), with its files."""

    __tablename__ = "rule_set"

    version: str = Field(sa_column=Column(Text, primary_key=True))
    policy: Any = _json()
    operating: Any = _json()
    files: Any = _json()
    created_at: datetime = _created()


class GateInputRecord(SQLModel, table=True):
    """What one run of the QA gates saw (deal and customer standing), for `rules replay`."""

    __tablename__ = "gate_input"

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    run_no: int = Field(primary_key=True)
    deal: Any = _json()
    standing: Any = _json()
    rules_version: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _created()


class UsageRecordRow(SQLModel, table=True):
    """A usage record as received, once per (contract, record id); rated into `billed_period`."""

    __tablename__ = "usage_record"
    __table_args__ = (
        Index("ix_usage_record_unbilled", "contract_id", "period",
              postgresql_where=text("billed_period IS NULL")),
    )  # fmt: skip

    contract_id: str = Field(sa_column=Column(Text, primary_key=True))
    record_id: str = Field(sa_column=Column(Text, primary_key=True))
    metric: str = Field(sa_column=Column(Text, nullable=False))
    quantity: Decimal = Field(sa_column=Column(Numeric(26, 6), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    period: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _created()
    billed_period: str | None = Field(default=None, sa_column=Column(Text))
    invoice_number: str | None = Field(default=None, sa_column=Column(Text))


def _recorded() -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class MilestoneDeliveryRecord(SQLModel, table=True):
    """A milestone delivered and accepted: its invoice and recognition follow."""

    __tablename__ = "milestone_delivery"

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    milestone_id: str = Field(sa_column=Column(Text, primary_key=True))
    delivered_on: date
    accepted_on: date
    accepted_by: str = Field(sa_column=Column(Text, nullable=False))
    evidence: Any = _json()
    recorded_at: datetime = _recorded()


class TimeAndMaterialsEntry(SQLModel, table=True):
    """Approved hours or deliverables of a T&M line; invoiced once per period."""

    __tablename__ = "tm_entry"
    __table_args__ = (
        Index("ix_tm_entry_unbilled", "deal_id", "period",
              postgresql_where=text("invoice_number IS NULL")),
    )  # fmt: skip

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    entry_id: str = Field(sa_column=Column(Text, primary_key=True))
    line_id: str = Field(sa_column=Column(Text, nullable=False))
    work_date: date
    period: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(sa_column=Column(Text, nullable=False))
    quantity: Decimal = Field(sa_column=Column(Numeric(20, 4), nullable=False))
    unit_price: Decimal = _money()
    amount: Decimal = _money()
    currency: str = Field(sa_column=Column(Text, nullable=False))
    approved_by: str = Field(sa_column=Column(Text, nullable=False))
    invoice_number: str | None = Field(default=None, sa_column=Column(Text))
    recorded_at: datetime = _recorded()


class ContractAmendmentRecord(SQLModel, table=True):
    """A validated amendment and the recognition-schedule version it produced."""

    __tablename__ = "contract_amendment"

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    amendment_id: str = Field(sa_column=Column(Text, primary_key=True))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    effective_date: date
    treatment: str = Field(sa_column=Column(Text, nullable=False))
    schedule_version: int = Field(nullable=False)
    payload: Any = _json()
    requested_by: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: datetime = _recorded()


class PricingExceptionRecord(SQLModel, table=True):
    """A discount or credit, from creation to expiry (or use)."""

    __tablename__ = "pricing_exception"
    __table_args__ = (
        CheckConstraint("kind IN ('discount', 'credit')", name="pricing_exception_kind_known"),
        CheckConstraint("status IN ('active', 'expired', 'used', 'cancelled')",
                        name="pricing_exception_status_known"),
    )  # fmt: skip

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    exception_id: str = Field(sa_column=Column(Text, primary_key=True))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    line_id: str | None = Field(default=None, sa_column=Column(Text))
    detail: Any = _json()
    starts_on: date
    expires_on: date | None = None
    status: str = Field(sa_column=Column(Text, nullable=False))
    closed_on: date | None = None
    recorded_at: datetime = _recorded()


class InvoiceSequence(SQLModel, table=True):
    """The last number of each issuing entity's series ('invoice', 'credit_note'), taken in
    the invoice's transaction."""

    __tablename__ = "invoice_sequence"

    entity_code: str = Field(sa_column=Column(Text, primary_key=True))
    series: str = Field(sa_column=Column(Text, primary_key=True, server_default="invoice"))
    last_number: int = Field(default=0, nullable=False)


class InvoiceRecord(SQLModel, table=True):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("entity_code", "series", "sequence"),
        CheckConstraint("series IN ('invoice', 'credit_note')", name="invoice_series_known"),
    )

    number: str = Field(sa_column=Column(Text, primary_key=True))
    entity_code: str = Field(sa_column=Column(Text, nullable=False))
    series: str = Field(sa_column=Column(Text, nullable=False, server_default="invoice"))
    sequence: int = Field(nullable=False)
    idempotency_key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    deal_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    currency: str = Field(sa_column=Column(Text, nullable=False))
    invoice_date: date
    due_date: date
    po_number: str | None = Field(default=None, sa_column=Column(Text))
    subtotal: Decimal = _money()
    tax: Decimal = _money()
    total: Decimal = _money()
    document: Any = _json()
    created_at: datetime = _created()


class ScheduleEntryRecord(SQLModel, table=True):
    """The recognition schedule of a contract, one row per obligation slice."""

    __tablename__ = "recognition_schedule"

    deal_id: str = Field(sa_column=Column(Text, primary_key=True))
    version: int = Field(primary_key=True)
    entry_no: int = Field(primary_key=True)
    line_id: str = Field(sa_column=Column(Text, nullable=False))
    period: str = Field(sa_column=Column(Text, nullable=False))
    recognition_date: date
    amount: Decimal = _money()
    currency: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    milestone_id: str | None = Field(default=None, sa_column=Column(Text))
    requires_event: bool


class AccountingPeriod(SQLModel, table=True):
    """A month of the ledger; a locked period accepts no new entries."""

    __tablename__ = "accounting_period"

    period: str = Field(sa_column=Column(Text, primary_key=True))
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="open"))
    locked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class JournalEntryRecord(SQLModel, table=True):
    __tablename__ = "journal_entry"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    entry_date: date
    period: str = Field(sa_column=Column(Text, nullable=False, index=True))
    deal_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    description: str = Field(sa_column=Column(Text, nullable=False))
    workflow_id: str | None = Field(default=None, sa_column=Column(Text))
    run_id: str | None = Field(default=None, sa_column=Column(Text))
    posted_at: datetime = _created()


class JournalLineRecord(SQLModel, table=True):
    __tablename__ = "journal_line"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    entry_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("journal_entry.id"), nullable=False, index=True)
    )
    account: str = Field(sa_column=Column(Text, nullable=False))
    debit: Decimal = _money()
    credit: Decimal = _money()
    currency: str = Field(sa_column=Column(Text, nullable=False))
    line_id: str | None = Field(default=None, sa_column=Column(Text))


class AuditEventRecord(SQLModel, table=True):
    """Append-only, tamper-evident: `hash` covers the row and its predecessor's hash."""

    __tablename__ = "audit_event"

    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(), primary_key=True)
    )
    idempotency_key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    occurred_at: datetime = _created()
    actor: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    subject: str = Field(sa_column=Column(Text, nullable=False, index=True))
    before: Any = _json(nullable=True)
    after: Any = _json(nullable=True)
    reason_code: str | None = Field(default=None, sa_column=Column(Text))
    rules_version: str | None = Field(default=None, sa_column=Column(Text))
    workflow_id: str | None = Field(default=None, sa_column=Column(Text))
    run_id: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str | None = Field(default=None, sa_column=Column(Text))
    hash: str | None = Field(default=None, sa_column=Column(Text))


class NotificationRecord(SQLModel, table=True):
    """A notification (e-mail, optional chat post), once per idempotency key: inserted as
    `sending` before anything is sent, `sent` once the SMTP server accepted it."""

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint("status IN ('sending', 'sent')", name="notification_status_known"),
    )

    idempotency_key: str = Field(sa_column=Column(Text, primary_key=True))
    subject_ref: str = Field(sa_column=Column(Text, nullable=False, index=True))
    recipients: Any = _json()
    subject: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="sending"))
    message_id: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _created()
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    sent_to: Any = _json(nullable=True)
    chat_posted: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )


class CloseReportRecord(SQLModel, table=True):
    """The month-end close report of a period: `draft` after the checks, `final` once the
    period is locked (docs/month-end-close.md)."""

    __tablename__ = "close_report"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'final')", name="close_report_status_known"),
    )

    period: str = Field(sa_column=Column(Text, primary_key=True))
    status: str = Field(sa_column=Column(Text, nullable=False))
    report: Any = _json()
    rules_version: str = Field(sa_column=Column(Text, nullable=False))
    workflow_id: str | None = Field(default=None, sa_column=Column(Text))
    run_id: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = _created()
