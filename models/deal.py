"""The closed-won deal as it arrives at intake (SPEC §1), and its contract lines.

A `DealSubmission` is what a door (file, API, CRM) hands in. Types and formats are checked
here, at parse time: a malformed submission is refused with an error naming each bad field.
Conditional requirements (a PO number when the customer requires one, an exemption
certificate when tax-exempt, totals that add up) are QA gates in `models.qa`, because an
owner can fix them by amending the deal while its workflow waits.

A discount tied to some lines (`discount_applies_to`, ASC 606-10-32-37) is checked here for
what the deal alone decides (each named line exists, shares the fixed price, has an
observable SSP; not every such line is named; evidence is given). Whether the prices fit the
designation is the QA gate `structural.discount_applies_to` (`models.tied_discount`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from models.money import CurrencyCode, Money, money_sum
from models.validation import EmailAddress

Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class BillingFrequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUALLY = "annually"
    MILESTONE = "milestone"
    TIME_AND_MATERIALS = "tm"
    USAGE = "usage"


class PaymentTerms(StrEnum):
    NET_15 = "net_15"
    NET_30 = "net_30"
    NET_45 = "net_45"
    NET_60 = "net_60"
    UPFRONT = "upfront"

    @property
    def days(self) -> int:
        """Days from invoice date to due date (upfront is due on receipt)."""
        return 0 if self is PaymentTerms.UPFRONT else int(self.value.removeprefix("net_"))


class RecognitionType(StrEnum):
    RATABLE = "ratable"
    MILESTONE = "milestone"
    TIME_AND_MATERIALS = "tm"
    PERPETUAL_LICENSE = "perpetual_license"


class ProductType(StrEnum):
    SUBSCRIPTION = "subscription"
    SUPPORT = "support"
    LICENSE = "license"
    SERVICES = "services"
    USAGE = "usage"


class PaymentMethod(StrEnum):
    ACH = "ach"
    WIRE = "wire"
    CHECK = "check"
    CARD = "card"


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailAddress
    phone: str | None = None


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line1: Annotated[str, Field(min_length=1)]
    line2: str | None = None
    city: Annotated[str, Field(min_length=1)]
    region: str | None = Field(default=None, description="State, county or province")
    postal_code: str | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]


class Customer(BaseModel):
    """The customer master record (SPEC §1) as the deal carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: Identifier = Field(description="CRM company id; the system-of-record key")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    legal_entity: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Legal entity that receives the invoice"
    )
    billing_contact: Contact
    billing_address: Address
    tax_registration_number: str | None = Field(default=None, description="VAT/GST number")
    payment_method: PaymentMethod = PaymentMethod.WIRE
    approved_credit_limit: NonNegative | None = Field(
        default=None,
        description="Credit limit vp_finance approved for this customer, in the deal currency; "
        "without one the credit policy's default for the customer's category applies",
    )


class Milestone(BaseModel):
    """A deliverable that is invoiced and recognised when delivered and accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    milestone_id: Identifier
    line_id: Identifier = Field(description="The contract line (obligation) it belongs to")
    description: Annotated[str, Field(min_length=1)]
    due_date: date
    amount: NonNegative


class DealLine(BaseModel):
    """One contract line: a product, its prices and the obligation it creates.

    Prices are per unit for the whole contract term; the line's net total is
    quantity × net_price. `standalone_selling_price` is the per-unit price the product
    sells for alone, the basis of the relative-SSP allocation (SPEC §5).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    line_id: Identifier
    product: Annotated[str, Field(min_length=1, max_length=120)]
    product_type: ProductType
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    list_price: NonNegative = Field(description="Per unit, for the whole term")
    net_price: NonNegative = Field(description="Per unit after discount, for the whole term")
    standalone_selling_price: NonNegative = Field(description="Per unit SSP for the term")
    discount_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)
    discount_expiry: date | None = None
    recognition: RecognitionType | None = Field(
        default=None, description="Obligation type; defaults to the deal's recognition type"
    )
    ssp_highly_variable: bool = Field(
        default=False,
        description="No observable SSP (the product sells at widely varying prices): the "
        "line gets the residual of the price after the other lines' SSPs",
    )
    usage_metric: Identifier | None = Field(
        default=None,
        description="Usage lines: the metric of the usage records it rates (net_price per "
        "unit); without one the line rates every metric no other line names",
    )

    def net_total(self, currency: str) -> Money:
        return Money(amount=self.quantity * self.net_price, currency=currency)

    def list_total(self, currency: str) -> Money:
        return Money(amount=self.quantity * self.list_price, currency=currency)

    def ssp_total(self, currency: str) -> Money:
        return Money(amount=self.quantity * self.standalone_selling_price, currency=currency)


class DealSubmission(BaseModel):
    """A closed-won deal as submitted through any intake door (SPEC §1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deal_id: Identifier = Field(description="CRM opportunity id")
    customer: Customer
    currency: CurrencyCode
    total_contract_value: NonNegative = Field(description="TCV, in `currency`")
    annual_recurring_value: NonNegative = Field(description="ARR, in `currency`")
    start_date: date
    end_date: date
    billing_frequency: BillingFrequency
    payment_terms: PaymentTerms
    po_required: bool
    po_number: str | None = None
    tax_jurisdiction: Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")] = Field(
        description="ISO 3166 country, optionally '-subdivision' (US-NY, CA-ON)"
    )
    tax_exempt: bool = False
    exemption_certificate: str | None = None
    recognition_type: RecognitionType
    milestones: list[Milestone] = Field(default_factory=list)
    assigned_ae: Annotated[str, Field(min_length=1)]
    commission_plan_id: Identifier
    lines: Annotated[list[DealLine], Field(min_length=1)]
    billing_entity: Identifier | None = Field(
        default=None, description="Issuing entity code; defaults by currency from the rules"
    )
    closed_won_date: date | None = None
    deposit_received: bool = Field(
        default=False, description="A deposit was taken (the credit policy asks for one)"
    )
    usage_invoice_threshold: NonNegative | None = Field(
        default=None,
        description="Rated usage not yet invoiced that triggers an invoice before the month "
        "ends, in `currency`",
    )
    discount_applies_to: list[Identifier] | None = Field(
        default=None,
        description="Lines the contract's whole discount belongs to (ASC 606-10-32-37, IFRS "
        "15.82): one or more of the lines that share the fixed price, not all of them. The "
        "other lines are allocated their standalone selling prices",
    )
    discount_evidence: Annotated[str, Field(max_length=500)] | None = Field(
        default=None,
        validate_default=True,
        description="Required with `discount_applies_to`: the observable evidence that every "
        "line is regularly sold on its own and the named lines regularly together at "
        "about this discount (32-37 (a) to (c)), e.g. the price list or sales it comes from",
    )

    @field_validator("discount_applies_to")
    @classmethod
    def _discount_lines(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        lines, deal_type = info.data.get("lines"), info.data.get("recognition_type")
        if value is None or lines is None or deal_type is None:
            return value  # a bad `lines` or `recognition_type` is reported on its own
        problems = discount_designation_problems(value, lines, deal_type)
        if problems:
            raise PydanticCustomError("discount_applies_to", "; ".join(problems))
        return value

    @field_validator("discount_evidence")
    @classmethod
    def _discount_evidence(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "discount_applies_to" not in info.data:
            return value  # discount_applies_to failed: its error says why
        named, given = info.data["discount_applies_to"], bool((value or "").strip())
        if named and not given:
            raise PydanticCustomError(
                "discount_evidence",
                "required when discount_applies_to names lines: say what observable evidence "
                "shows the discount belongs to them (ASC 606-10-32-37)",
            )
        if given and not named:
            raise PydanticCustomError(
                "discount_evidence", "only with discount_applies_to (no lines are named)"
            )
        return value

    def tcv(self) -> Money:
        return Money(amount=self.total_contract_value, currency=self.currency)

    def arr(self) -> Money:
        return Money(amount=self.annual_recurring_value, currency=self.currency)

    def lines_total(self) -> Money:
        return money_sum((line.net_total(self.currency) for line in self.lines), self.currency)

    def line_recognition(self, line: DealLine) -> RecognitionType:
        return line.recognition or self.recognition_type

    def term_days(self) -> int:
        """Days in the contract term, start and end inclusive."""
        return (self.end_date - self.start_date).days + 1


def discount_designation_problems(
    names: list[str], lines: list[DealLine], deal_type: RecognitionType
) -> list[str]:
    """Why `names` cannot carry the deal's whole discount (empty when they can).

    A discount is tied only to lines that share the fixed price (T&M keeps its own price as
    variable consideration, 32-40) and that sell on their own at an observable SSP (32-37(a));
    naming every such line is the proportional allocation, so at least one is left out.
    """
    if not names:
        return ["name at least one line, or leave discount_applies_to out"]
    by_id = {line.line_id: line for line in lines}
    problems = [f"{name} is named more than once"
                for name in dict.fromkeys(names) if names.count(name) > 1]  # fmt: skip
    for name in dict.fromkeys(names):
        line = by_id.get(name)
        if line is None:
            problems.append(f"{name} is not a line of this deal ({', '.join(by_id)})")
        elif (line.recognition or deal_type) is RecognitionType.TIME_AND_MATERIALS:
            problems.append(f"{name} is T&M: variable consideration stays with its own line "
                            "(ASC 606-10-32-40)")  # fmt: skip
        elif line.ssp_highly_variable:
            problems.append(f"{name} has no observable SSP (ssp_highly_variable); a discount "
                            "is tied only to lines regularly sold on their own (32-37(a))")  # fmt: skip
    tm = RecognitionType.TIME_AND_MATERIALS
    fixed = [ln.line_id for ln in lines if (ln.recognition or deal_type) is not tm]
    if not problems and set(fixed) <= set(names):
        problems.append(f"names every line that shares the price ({', '.join(fixed)}); leave "
                        "it out and the discount is allocated over all of them in proportion")  # fmt: skip
    return problems
