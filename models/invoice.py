"""Contract-aware invoices (SPEC §4): every field comes from the contract and the rules.

Tax convention: one rate per invoice, from the deal's jurisdiction; tax is computed on the
invoice subtotal and rounded half-up to the currency's minor unit (a tax-exempt deal carries
no tax and prints its certificate).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from models.billing import BillingEvent, InvoiceLine
from models.deal import Address, Contact, DealSubmission, PaymentTerms
from models.money import Money, money_sum
from models.rules import BillingEntity, RuleSet


class InvoiceDraft(BaseModel):
    """An invoice before it has a number: what the customer's AP team checks."""

    model_config = ConfigDict(frozen=True)

    deal_id: str
    customer_id: str
    entity: BillingEntity
    bill_to_legal_entity: str
    bill_to_address: Address
    bill_to_contact: Contact
    customer_tax_registration: str | None
    currency: str
    po_number: str | None
    payment_terms: PaymentTerms
    invoice_date: date
    due_date: date
    period_start: date
    period_end: date
    reason: str
    lines: list[InvoiceLine]
    subtotal: Money
    tax_label: str
    tax_rate_percent: Decimal
    tax: Money
    total: Money
    tax_exempt: bool
    exemption_certificate: str | None = None

    @property
    def is_credit_note(self) -> bool:
        """A negative total credits the customer: a credit note, with its own number series."""
        return self.total.amount < 0

    @property
    def series(self) -> str:
        return CREDIT_NOTE_SERIES if self.is_credit_note else INVOICE_SERIES


class Invoice(InvoiceDraft):
    """An issued invoice or credit note: numbered gap-free within its entity's series."""

    number: str = Field(
        description="'<entity prefix>-<6-digit sequence>' for an invoice (LLUS-000042), "
        "'<entity prefix>-CN-<6-digit sequence>' for a credit note (LLUS-CN-000003)"
    )


INVOICE_SERIES = "invoice"
CREDIT_NOTE_SERIES = "credit_note"


class InvoiceNotIssuable(ValueError):
    """The contract lacks something an invoice needs (a PO, a tax rate, an entity)."""


def draft_invoice(
    deal: DealSubmission, event: BillingEvent, rules: RuleSet, issued_on: date
) -> InvoiceDraft:
    """The invoice for `event`, dated the day it is issued (in advance of its service period)."""
    invoice_date = issued_on
    entity = rules.entity_for(deal.currency, deal.billing_entity)
    if entity is None:
        named = f"named {deal.billing_entity}" if deal.billing_entity else f"for {deal.currency}"
        raise InvoiceNotIssuable(f"deal {deal.deal_id}: no issuing entity {named}")
    if deal.po_required and not (deal.po_number or "").strip():
        raise InvoiceNotIssuable(f"deal {deal.deal_id}: customer requires a PO and none is set")
    subtotal = money_sum((line.amount for line in event.lines), deal.currency)
    if deal.tax_exempt:
        label, rate = f"Tax exempt (certificate {deal.exemption_certificate})", Decimal(0)
    else:
        tax_rate = rules.tax_rate_for(deal.tax_jurisdiction)
        if tax_rate is None:
            raise InvoiceNotIssuable(
                f"deal {deal.deal_id}: no tax rate for {deal.tax_jurisdiction}"
            )
        label, rate = tax_rate.name, tax_rate.rate_percent
    tax = Money(amount=subtotal.amount * rate / 100, currency=deal.currency)
    c = deal.customer
    return InvoiceDraft(
        deal_id=deal.deal_id,
        customer_id=c.customer_id,
        entity=entity,
        bill_to_legal_entity=c.legal_entity,
        bill_to_address=c.billing_address,
        bill_to_contact=c.billing_contact,
        customer_tax_registration=c.tax_registration_number,
        currency=deal.currency,
        po_number=deal.po_number,
        payment_terms=deal.payment_terms,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=deal.payment_terms.days),
        period_start=event.period_start,
        period_end=event.period_end,
        reason=event.reason,
        lines=event.lines,
        subtotal=subtotal,
        tax_label=label,
        tax_rate_percent=rate,
        tax=tax,
        total=subtotal + tax,
        tax_exempt=deal.tax_exempt,
        exemption_certificate=deal.exemption_certificate,
    )


def invoice_number(prefix: str, sequence: int, series: str = "invoice") -> str:
    """'LLUS-000042': the entity's prefix and its gap-free sequence; a credit note's number
    says so ('LLUS-CN-000003'), from a sequence of its own."""
    marker = "-CN" if series == CREDIT_NOTE_SERIES else ""
    return f"{prefix}{marker}-{sequence:06d}"
