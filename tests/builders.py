"""Plain builders for deals in tests: a valid deal with only the fields a test cares about.

Amounts are strings or Decimals (never floats), as at intake.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from models.deal import (
    Address,
    BillingFrequency,
    Contact,
    Customer,
    DealLine,
    DealSubmission,
    Milestone,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.money import Money


def usd(amount: str) -> Money:
    """An amount in USD, written as finance writes it: usd("1200.50")."""
    return Money.of(amount, "USD")


def make_customer(customer_id: str = "C-100") -> Customer:
    """A customer with a billing contact and address."""
    return Customer(
        customer_id=customer_id,
        name="Acme Corp",
        legal_entity="Acme Corporation Inc.",
        billing_contact=Contact(name="Ada Billing", email="ap@acme-corp.com"),
        billing_address=Address(line1="1 Main St", city="Springfield", country="US"),
    )


def make_line(
    line_id: str,
    product_type: ProductType,
    net: str | Decimal,
    *,
    ssp: str | Decimal | None = None,
    quantity: str | Decimal = "1",
    recognition: RecognitionType | None = None,
    product: str | None = None,
) -> DealLine:
    """A line whose list price and SSP default to its net price (no discount)."""
    net_price = Decimal(net)
    ssp_price = net_price if ssp is None else Decimal(ssp)
    return DealLine(
        line_id=line_id,
        product=product or f"{product_type.value.title()} {line_id}",
        product_type=product_type,
        quantity=Decimal(quantity),
        list_price=max(net_price, ssp_price),
        net_price=net_price,
        standalone_selling_price=ssp_price,
        recognition=recognition,
    )


def make_milestone(milestone_id: str, line_id: str, due: date, amount: str) -> Milestone:
    return Milestone(
        milestone_id=milestone_id,
        line_id=line_id,
        description=f"Deliverable {milestone_id}",
        due_date=due,
        amount=Decimal(amount),
    )


def make_deal(
    lines: list[DealLine],
    *,
    start: date = date(2026, 1, 1),
    end: date = date(2026, 12, 31),
    currency: str = "USD",
    frequency: BillingFrequency = BillingFrequency.ANNUALLY,
    recognition: RecognitionType = RecognitionType.RATABLE,
    milestones: list[Milestone] | None = None,
    **overrides: Any,
) -> DealSubmission:
    """A valid deal whose TCV is the sum of its lines and whose ARR is TCV per year."""
    tcv = sum((line.quantity * line.net_price for line in lines), Decimal(0))
    fields: dict[str, Any] = {
        "deal_id": "D-1",
        "customer": make_customer(),
        "currency": currency,
        "total_contract_value": tcv,
        "annual_recurring_value": tcv,
        "start_date": start,
        "end_date": end,
        "billing_frequency": frequency,
        "payment_terms": PaymentTerms.NET_30,
        "po_required": False,
        "tax_jurisdiction": "US-NY",
        "recognition_type": recognition,
        "milestones": milestones or [],
        "assigned_ae": "Sam Seller",
        "commission_plan_id": "PLAN-2026",
        "lines": lines,
    }
    fields.update(overrides)
    return DealSubmission(**fields)
