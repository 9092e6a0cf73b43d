"""QA gates (SPEC §2): structural, business and anomaly checks run before any write.

Each check is a pure function `check(ctx) -> list[Violation]` with a stable id; `run_gates`
runs them all and returns one `GateResult` per check, passed or not, so every result can be
stored and shown. Messages name the entity and both numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.billing import billing_plan
from models.contract_terms import booked_consideration
from models.customer import CustomerStanding, credit_category
from models.deal import DealSubmission, PaymentTerms, ProductType, RecognitionType
from models.money import ISO_4217_CODES, Money, money_sum
from models.rules import Role, RuleSet
from models.terms import recurring_total, term_years
from models.tied_discount import tied_discount_problem


class Layer(StrEnum):
    STRUCTURAL = "structural"
    BUSINESS = "business"
    ANOMALY = "anomaly"


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)

    message: str
    evidence: dict[str, str] = Field(default_factory=dict)


class GateResult(BaseModel):
    """The outcome of one check on one deal, stored and shown to finance."""

    model_config = ConfigDict(frozen=True)

    check_id: str
    layer: Layer
    passed: bool
    severity: str
    owner_role: Role
    messages: list[str] = Field(default_factory=list)
    evidence: dict[str, str] = Field(default_factory=dict)
    rules_version: str


@dataclass(frozen=True)
class GateContext:
    deal: DealSubmission
    standing: CustomerStanding
    rules: RuleSet

    def usd(self, amount: Money) -> Decimal | None:
        rate = self.rules.credit.usd_rates.get(amount.currency)
        return None if rate is None else amount.amount * rate


Check = Callable[[GateContext], list[Violation]]


def _v(message: str, **evidence: object) -> list[Violation]:
    return [Violation(message=message, evidence={k: str(v) for k, v in evidence.items()})]


# --- structural -----------------------------------------------------------------------------


def check_end_after_start(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    if d.end_date > d.start_date:
        return []
    return _v(f"Deal {d.deal_id} ends {d.end_date} on or before it starts {d.start_date}",
              start_date=d.start_date, end_date=d.end_date)  # fmt: skip


def check_currency_known(ctx: GateContext) -> list[Violation]:
    if ctx.deal.currency in ISO_4217_CODES:
        return []
    return _v(
        f"Deal {ctx.deal.deal_id}: currency {ctx.deal.currency} is not an ISO 4217 code",
        currency=ctx.deal.currency,
    )


def check_po_present(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    if not d.po_required or (d.po_number or "").strip():
        return []
    return _v(f"Customer {d.customer.customer_id} requires a PO and deal {d.deal_id} has none",
              po_required=True, po_number=d.po_number)  # fmt: skip


def check_exemption_certificate(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    if not d.tax_exempt or (d.exemption_certificate or "").strip():
        return []
    return _v(f"Deal {d.deal_id} is tax exempt without an exemption certificate",
              tax_exempt=True)  # fmt: skip


def check_lines_total_tcv(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    # A discount that expires inside the term bills list price after it: that is in the TCV.
    lines = money_sum((booked_consideration(d, line) for line in d.lines), d.currency)
    tcv = d.tcv()
    if lines == tcv:
        return []
    gap = lines - tcv
    direction = "too much" if gap.amount > 0 else "too little"
    return _v(f"Deal {d.deal_id} lines total {lines} != TCV {tcv} "
              f"({Money(amount=abs(gap.amount), currency=d.currency)} {direction})",
              lines_total=lines.amount, tcv=tcv.amount)  # fmt: skip


def check_line_prices(ctx: GateContext) -> list[Violation]:
    """Net price = list price less the stated discount (to the cent), and never above list."""
    d, out = ctx.deal, []
    for line in d.lines:
        expected = Money(
            amount=line.list_price * (100 - line.discount_percent) / 100, currency=d.currency
        )
        net = Money(amount=line.net_price, currency=d.currency)
        if net != expected:
            out += _v(f"Line {line.line_id}: net price {net} != list {line.list_price} "
                      f"less {line.discount_percent}% = {expected}",
                      line_id=line.line_id, net_price=net.amount, expected=expected.amount)  # fmt: skip
    return out


def check_milestones_total(ctx: GateContext) -> list[Violation]:
    d, out = ctx.deal, []
    for line in d.lines:
        if d.line_recognition(line) is not RecognitionType.MILESTONE:
            continue
        mine = [m for m in d.milestones if m.line_id == line.line_id]
        total = money_sum((Money(amount=m.amount, currency=d.currency) for m in mine), d.currency)
        if not mine or total != line.net_total(d.currency):
            out += _v(f"Line {line.line_id}: milestones total {total} != line total "
                      f"{line.net_total(d.currency)} ({len(mine)} milestones)",
                      line_id=line.line_id, milestones_total=total.amount,
                      line_total=line.net_total(d.currency).amount)  # fmt: skip
    known = {line.line_id for line in d.lines}
    for m in d.milestones:
        if m.line_id not in known:
            out += _v(f"Milestone {m.milestone_id} names line {m.line_id}, which the deal lacks",
                      milestone_id=m.milestone_id)  # fmt: skip
    return out


def check_discount_applies_to(ctx: GateContext) -> list[Violation]:
    """A discount tied to some lines (ASC 606-10-32-37) must fit the prices: the named lines
    get between nothing and their SSPs once the others have theirs (`models.tied_discount`)."""
    d = ctx.deal
    problem = tied_discount_problem(d)
    if problem is None:
        return []
    named = ", ".join(d.discount_applies_to or [])
    return _v(f"Deal {d.deal_id}: the discount tied to lines {named} does not fit its prices: "
              f"{problem}; fix the prices or the designation (waived, the discount is "
              "allocated over all lines in proportion)",
              discount_applies_to=named)  # fmt: skip


def check_tax_jurisdiction_known(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    if d.tax_exempt or ctx.rules.tax_rate_for(d.tax_jurisdiction) is not None:
        return []
    return _v(f"Deal {d.deal_id}: no tax rate for jurisdiction {d.tax_jurisdiction} in the rules",
              tax_jurisdiction=d.tax_jurisdiction)  # fmt: skip


def check_billing_entity_known(ctx: GateContext) -> list[Violation]:
    d = ctx.deal
    if ctx.rules.entity_for(d.currency, d.billing_entity) is not None:
        return []
    named = f"named {d.billing_entity}" if d.billing_entity else f"for {d.currency}"
    return _v(f"Deal {d.deal_id}: no issuing entity {named}",
              currency=d.currency, billing_entity=d.billing_entity)  # fmt: skip


# --- business -------------------------------------------------------------------------------


def _category_name(ctx: GateContext) -> tuple[str, list[str], Decimal, Decimal | None]:
    arr_usd = ctx.usd(ctx.deal.arr()) or Decimal(0)
    cat = credit_category(ctx.standing, arr_usd, ctx.rules.credit)
    return (
        cat.name,
        [t.value for t in cat.allowed_terms],
        cat.credit_limit_usd,
        cat.deposit_required_over_usd,
    )


def check_payment_terms_policy(ctx: GateContext) -> list[Violation]:
    name, allowed, _, _ = _category_name(ctx)
    terms = ctx.deal.payment_terms.value
    if terms in allowed:
        return []
    return _v(f"Deal {ctx.deal.deal_id}: payment terms {terms} not allowed for {name} (allowed: {', '.join(allowed)})",
              payment_terms=terms, category=name, allowed=",".join(allowed))  # fmt: skip


def check_discount_tolerance(ctx: GateContext) -> list[Violation]:
    limit, out = ctx.rules.qa.max_discount_percent, []
    for line in ctx.deal.lines:
        if line.discount_percent > limit:
            out += _v(f"Line {line.line_id} ({line.product}) discount {line.discount_percent}% "
                      f"exceeds the approved {limit}%",
                      line_id=line.line_id, discount_percent=line.discount_percent, limit=limit)  # fmt: skip
    return out


def credit_exposure_usd(ctx: GateContext) -> Decimal | None:
    """Credit the order extends: what the customer owes already plus its largest invoice
    (on net terms about one invoice is unpaid at a time). Upfront terms extend none."""
    if ctx.deal.payment_terms is PaymentTerms.UPFRONT or ctx.deal.end_date <= ctx.deal.start_date:
        # No credit extended upfront; a term that ends before it starts has no billing plan
        # (structural.end_after_start reports it).
        return ctx.standing.open_receivables_usd
    invoices = [event.total() for event in billing_plan(ctx.deal)]
    largest = max(invoices, key=lambda m: m.amount, default=ctx.deal.tcv())
    largest_usd = ctx.usd(largest)
    return None if largest_usd is None else largest_usd + ctx.standing.open_receivables_usd


def check_credit_limit(ctx: GateContext) -> list[Violation]:
    name, _, limit, _ = _category_name(ctx)
    approved = ctx.deal.customer.approved_credit_limit
    if approved is not None:
        approved_usd = ctx.usd(Money(amount=approved, currency=ctx.deal.currency))
        if approved_usd is not None:
            name, limit = "approved customer", approved_usd
    exposure = credit_exposure_usd(ctx)
    if exposure is None:
        return _v(f"No USD rate for {ctx.deal.currency} to check the credit limit",
                  currency=ctx.deal.currency)  # fmt: skip
    if exposure <= limit:
        return []
    return _v(f"Customer {ctx.deal.customer.customer_id} exposure {exposure:,.2f} USD exceeds "
              f"the {name} credit limit {limit:,.2f} USD ({exposure - limit:,.2f} over)",
              exposure_usd=f"{exposure:.2f}", limit_usd=limit, category=name)  # fmt: skip


def check_credit_hold(ctx: GateContext) -> list[Violation]:
    if not ctx.standing.on_credit_hold:
        return []
    return _v(f"Customer {ctx.deal.customer.customer_id} is on credit hold", on_credit_hold=True)


def check_deposit_required(ctx: GateContext) -> list[Violation]:
    name, _, _, over = _category_name(ctx)
    tcv_usd = ctx.usd(ctx.deal.tcv())
    if over is None or tcv_usd is None or tcv_usd <= over:
        return []
    if ctx.deal.payment_terms is PaymentTerms.UPFRONT or ctx.deal.deposit_received:
        return []
    return _v(f"Deal {ctx.deal.deal_id} ({name}): order {tcv_usd:,.2f} USD above {over:,.2f} USD needs a deposit "
              f"or upfront terms, deal has {ctx.deal.payment_terms.value}",
              tcv_usd=f"{tcv_usd:.2f}", threshold_usd=over)  # fmt: skip


def check_nonstandard_terms(ctx: GateContext) -> list[Violation]:
    terms = ctx.deal.payment_terms
    if terms in ctx.rules.qa.standard_payment_terms:
        return []
    return _v(f"Deal {ctx.deal.deal_id}: payment terms {terms.value} are non-standard and need legal/finance review",
              payment_terms=terms.value)  # fmt: skip


# Recognition each product type may carry.
_RECOGNITION_BY_PRODUCT: dict[ProductType, set[RecognitionType]] = {
    ProductType.SUBSCRIPTION: {RecognitionType.RATABLE},
    ProductType.SUPPORT: {RecognitionType.RATABLE},
    ProductType.LICENSE: {RecognitionType.PERPETUAL_LICENSE},
    ProductType.SERVICES: {RecognitionType.MILESTONE, RecognitionType.TIME_AND_MATERIALS},
    ProductType.USAGE: {RecognitionType.TIME_AND_MATERIALS},
}


def check_recognition_consistency(ctx: GateContext) -> list[Violation]:
    d, out = ctx.deal, []
    for line in d.lines:
        rec = d.line_recognition(line)
        if rec not in _RECOGNITION_BY_PRODUCT[line.product_type]:
            out += _v(f"Line {line.line_id}: {line.product_type.value} cannot be recognised "
                      f"{rec.value}", line_id=line.line_id, recognition=rec.value)  # fmt: skip
    kinds = {d.line_recognition(line) for line in d.lines}
    freq = d.billing_frequency.value
    if freq == "milestone" and RecognitionType.MILESTONE not in kinds:
        out += _v(
            f"Deal {d.deal_id} bills by milestone but no line is recognised by milestone",
            billing=freq,
        )
    if freq == "tm" and RecognitionType.TIME_AND_MATERIALS not in kinds:
        out += _v(f"Deal {d.deal_id} bills T&M but no line is recognised as T&M", billing=freq)
    return out


# --- anomaly --------------------------------------------------------------------------------


def check_arr_vs_tcv(ctx: GateContext) -> list[Violation]:
    """ARR × term years should match the recurring part of TCV within the tolerance."""
    d = ctx.deal
    recurring = recurring_total(d)
    years = term_years(d)
    if recurring.is_zero() or years <= 0:
        return []
    implied = Money(amount=d.annual_recurring_value * years, currency=d.currency)
    gap = abs(implied.amount - recurring.amount) / recurring.amount * 100
    if gap <= ctx.rules.qa.arr_tcv_tolerance_percent:
        return []
    return _v(f"Deal {d.deal_id}: ARR {d.arr()} x {years:.2f} years = {implied} but recurring TCV is {recurring} "
              f"({gap:.1f}% apart, tolerance {ctx.rules.qa.arr_tcv_tolerance_percent}%)",
              arr=d.annual_recurring_value, years=f"{years:.4f}", recurring_tcv=recurring.amount)  # fmt: skip


def check_customer_history(ctx: GateContext) -> list[Violation]:
    prior = ctx.standing.largest_prior_tcv_usd
    tcv_usd = ctx.usd(ctx.deal.tcv())
    if prior <= 0 or tcv_usd is None:
        return []
    multiple = ctx.rules.qa.history_multiple
    if tcv_usd <= prior * multiple:
        return []
    return _v(f"Deal {ctx.deal.deal_id} TCV {tcv_usd:,.2f} USD is {tcv_usd / prior:.1f}x the customer's largest "
              f"prior deal {prior:,.2f} USD (threshold {multiple}x)",
              tcv_usd=f"{tcv_usd:.2f}", largest_prior_usd=prior)  # fmt: skip


QA_GATES: list[tuple[str, Layer, Check]] = [
    ("structural.end_after_start", Layer.STRUCTURAL, check_end_after_start),
    ("structural.currency_known", Layer.STRUCTURAL, check_currency_known),
    ("structural.po_present", Layer.STRUCTURAL, check_po_present),
    ("structural.exemption_certificate", Layer.STRUCTURAL, check_exemption_certificate),
    ("structural.lines_total_tcv", Layer.STRUCTURAL, check_lines_total_tcv),
    ("structural.line_prices", Layer.STRUCTURAL, check_line_prices),
    ("structural.milestones_total", Layer.STRUCTURAL, check_milestones_total),
    ("structural.discount_applies_to", Layer.STRUCTURAL, check_discount_applies_to),
    ("structural.tax_jurisdiction_known", Layer.STRUCTURAL, check_tax_jurisdiction_known),
    ("structural.billing_entity_known", Layer.STRUCTURAL, check_billing_entity_known),
    ("business.payment_terms_policy", Layer.BUSINESS, check_payment_terms_policy),
    ("business.discount_tolerance", Layer.BUSINESS, check_discount_tolerance),
    ("business.credit_limit", Layer.BUSINESS, check_credit_limit),
    ("business.credit_hold", Layer.BUSINESS, check_credit_hold),
    ("business.deposit_required", Layer.BUSINESS, check_deposit_required),
    ("business.nonstandard_terms", Layer.BUSINESS, check_nonstandard_terms),
    ("business.recognition_consistency", Layer.BUSINESS, check_recognition_consistency),
    ("anomaly.arr_vs_tcv", Layer.ANOMALY, check_arr_vs_tcv),
    ("anomaly.customer_history", Layer.ANOMALY, check_customer_history),
]

CHECK_IDS: list[str] = [check_id for check_id, _, _ in QA_GATES]


def run_gates(deal: DealSubmission, standing: CustomerStanding, rules: RuleSet) -> list[GateResult]:
    """Run every QA gate; one result per check, in a stable order."""
    ctx = GateContext(deal=deal, standing=standing, rules=rules)
    results = []
    for check_id, layer, check in QA_GATES:
        violations = check(ctx)
        route = rules.routes.get(check_id)
        evidence: dict[str, str] = {}
        for v in violations:
            evidence.update(v.evidence)
        results.append(
            GateResult(
                check_id=check_id,
                layer=layer,
                passed=not violations,
                severity=route.severity if route else "error",
                owner_role=rules.owner_of(check_id),
                messages=[v.message for v in violations],
                evidence=evidence,
                rules_version=rules.version,
            )
        )
    return results
