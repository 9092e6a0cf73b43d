"""Policy as data: the typed form of the YAML files in `rules/`.

The starter validates the YAML into a `RuleSet` and passes it to workflows as input, so a
workflow never reads a file and every decision can name the version (content hash) it used.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.deal import Address, PaymentTerms
from models.money import CurrencyCode
from models.proration import DayCount


class Role(StrEnum):
    """Roles are data: rules name roles, the directory maps people to roles (SPEC Actors)."""

    SALES_OPS = "sales_ops"
    LEGAL = "legal"
    BILLING = "billing"
    FINANCE = "finance"
    VP_REVOPS = "vp_revops"
    VP_FINANCE = "vp_finance"
    CFO = "cfo"
    CRO = "cro"
    VP_CS = "vp_cs"
    ACCOUNT_MANAGER = "account_manager"
    ASSIGNED_AE = "assigned_ae"


Percent = Annotated[Decimal, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QaThresholds(_Strict):
    """Tolerances for the business and anomaly checks (SPEC §2)."""

    max_discount_percent: Percent = Field(description="Discount within approved tolerance")
    arr_tcv_tolerance_percent: Percent = Field(
        description="Allowed gap between ARR × years and the recurring part of TCV"
    )
    history_multiple: Annotated[Decimal, Field(gt=0)] = Field(
        description="A deal above this multiple of the customer's largest prior deal is an anomaly"
    )
    standard_payment_terms: list[PaymentTerms] = Field(
        description="Terms accepted without legal/finance review"
    )


class CreditCategory(_Strict):
    """One row of the credit policy table (SPEC §2)."""

    name: str
    credit_limit_usd: Annotated[Decimal, Field(ge=0)]
    allowed_terms: list[PaymentTerms]
    deposit_required_over_usd: Decimal | None = Field(
        default=None, description="Order value above which a deposit is required"
    )


class CreditPolicy(_Strict):
    enterprise: CreditCategory
    mid_market: CreditCategory
    smb: CreditCategory
    new_customer: CreditCategory
    prior_late_payments: CreditCategory
    enterprise_min_arr_usd: Decimal = Decimal(1_000_000)
    mid_market_min_arr_usd: Decimal = Decimal(100_000)
    usd_rates: dict[CurrencyCode, Decimal] = Field(
        description="Units of USD per unit of each currency, to compare limits set in USD"
    )


class CheckRoute(_Strict):
    """Who owns a failed check, the SLA they have, and the chain that takes over after it."""

    owner_role: Role
    severity: str = "error"
    sla_business_hours: Annotated[Decimal, Field(gt=0, le=10_000)] = Decimal(8)
    escalation: str | None = Field(default=None, description="A chain in escalation.yaml")


class OwnershipEntry(_Strict):
    """Ownership follows the attribute: who owns it and which system is its record."""

    owner_role: Role
    system_of_record: str


class BillingEntity(_Strict):
    """A legal entity of ours that issues invoices, with its own gap-free number series."""

    code: str
    legal_name: str
    address: Address
    remit_to: str = Field(description="Bank or remittance instructions printed on invoices")
    tax_registration_number: str | None = None
    invoice_prefix: Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,12}$")]
    default_for_currencies: list[CurrencyCode] = Field(default_factory=list)


class TaxRate(_Strict):
    rate_percent: Percent
    name: str = Field(description="Label printed on the invoice, e.g. 'VAT 20%'")


class IntegrationPolicy(_Strict):
    """How long an outside system gets before its owning team is given a case (seed 001)."""

    crm_read_attempts: int = Field(ge=1, le=100, description="Tries of a CRM read, then a case")


class ClosePolicy(_Strict):
    """Month-end close (`close.yaml`): the anomaly tolerances and who signs a close off."""

    period_delta_percent: Percent = Field(
        default=Decimal(25),
        description="A contract's revenue in P may move this much against P-1 (in percent)",
    )
    period_delta_floor_usd: Annotated[Decimal, Field(ge=0)] = Field(
        default=Decimal(1000),
        description="... and must also move more than this (in USD, at credit.usd_rates)",
    )
    signoff_roles: list[Role] = Field(
        default=[Role.FINANCE, Role.VP_FINANCE, Role.CFO], min_length=1,
        description="A person holding one of these roles signs the close off",
    )  # fmt: skip
    messages_per_case: int = Field(
        default=20, ge=1, le=200, description="Failures named in a close case, worst first"
    )


class BillingPolicy(_Strict):
    """Contract billing (`billing.yaml`): the proration day count and invoice e-mail retries."""

    proration_day_count: DayCount = Field(
        default=DayCount.ACTUAL,
        description="'actual' (days of the period, the default) or '30/360' for mid-period changes",
    )
    invoice_dispatch_attempts: int = Field(
        default=5, ge=1, le=50, description="Tries of an invoice e-mail, then a case for billing"
    )


class RuleSet(_Strict):
    """Every policy the workflows apply, with the content hash of the files it came from."""

    version: str = Field(description="sha256 of the rule files, first 12 hex digits")
    qa: QaThresholds
    credit: CreditPolicy
    routes: dict[str, CheckRoute] = Field(description="check id → route")
    ownership: dict[str, OwnershipEntry] = Field(description="attribute → owner")
    reason_codes: dict[str, str] = Field(description="code → meaning")
    tax_rates: dict[str, TaxRate] = Field(description="jurisdiction → rate")
    entities: dict[str, BillingEntity]
    integrations: IntegrationPolicy
    close: ClosePolicy = Field(default_factory=ClosePolicy)
    billing: BillingPolicy = Field(default_factory=BillingPolicy)

    @model_validator(mode="after")
    def _entities_cover_currencies(self) -> RuleSet:
        seen: dict[str, str] = {}
        for code, entity in self.entities.items():
            if code != entity.code:
                raise ValueError(f"entities.{code}: code field is {entity.code!r}, must match key")
            for currency in entity.default_for_currencies:
                if currency in seen:
                    raise ValueError(
                        f"entities.{code}: {currency} is already the default of {seen[currency]}"
                    )
                seen[currency] = code
        return self

    def entity_for(self, currency: str, requested: str | None) -> BillingEntity | None:
        """The issuing entity: the one requested, else the default for the currency."""
        if requested is not None:
            return self.entities.get(requested)
        for entity in self.entities.values():
            if currency in entity.default_for_currencies:
                return entity
        return None

    def tax_rate_for(self, jurisdiction: str) -> TaxRate | None:
        """Exact jurisdiction first (US-NY), then its country (US)."""
        return self.tax_rates.get(jurisdiction) or self.tax_rates.get(jurisdiction.split("-")[0])

    def owner_of(self, check_id: str) -> Role:
        route = self.routes.get(check_id)
        return route.owner_role if route else Role.SALES_OPS
