"""What the system of record knows about a customer before a new deal: its credit standing."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from models.rules import CreditCategory, CreditPolicy


class CustomerStanding(BaseModel):
    """A customer's history as the system of record holds it (all amounts in USD)."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    prior_orders: int = Field(default=0, description="Deals already booked (excluding this one)")
    existing_arr_usd: Decimal = Field(default=Decimal(0), description="ARR already under contract")
    largest_prior_tcv_usd: Decimal = Decimal(0)
    late_payments: int = Field(default=0, description="Invoices ever paid after their due date")
    on_credit_hold: bool = False
    open_receivables_usd: Decimal = Decimal(0)

    @classmethod
    def new(cls, customer_id: str) -> CustomerStanding:
        return cls(customer_id=customer_id)


def credit_category(
    standing: CustomerStanding, deal_arr_usd: Decimal, policy: CreditPolicy
) -> CreditCategory:
    """The credit-policy row that applies (SPEC §2): late payers and first orders first,
    then by the customer's ARR including this deal."""
    if standing.late_payments > 0:
        return policy.prior_late_payments
    if standing.prior_orders == 0:
        return policy.new_customer
    arr = standing.existing_arr_usd + deal_arr_usd
    if arr > policy.enterprise_min_arr_usd:
        return policy.enterprise
    if arr >= policy.mid_market_min_arr_usd:
        return policy.mid_market
    return policy.smb
