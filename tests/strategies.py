"""Hypothesis strategies for valid domain objects, shared by the property tests.

`deals()` draws a valid `DealSubmission`: a customer with contacts and an address, 1 to 6
lines of any product type with an obligation type that fits it, milestones that sum to their
line's net total, TCV equal to the lines' total, and a term of 1 day to about 3 years in a
currency with 0, 2 or 3 minor digits. `tied_discount_deals()` ties such a deal's discount to
some of its lines (ASC 606-10-32-37); `modifications()` draws a deal, an amendment to it and
the milestones accepted by the amendment's date.
"""

from __future__ import annotations

import string
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from models.amendment import Amendment, AmendmentKind
from models.calendar_math import add_months
from models.contract_terms import is_recurring
from models.deal import (
    Address,
    BillingFrequency,
    Contact,
    Customer,
    DealLine,
    DealSubmission,
    Milestone,
    PaymentMethod,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.money import Money, allocate, minor_units, money_sum, quantize

CURRENCIES = ("USD", "EUR", "GBP", "INR", "JPY", "KRW", "KWD", "BHD")
JURISDICTIONS = ("US-NY", "US-CA", "GB", "DE", "IN", "JP", "KW", "CA-ON")

# Obligation types that fit each product type (a license may be perpetual or a term license).
RECOGNITIONS_BY_PRODUCT: dict[ProductType, tuple[RecognitionType, ...]] = {
    ProductType.SUBSCRIPTION: (RecognitionType.RATABLE,),
    ProductType.SUPPORT: (RecognitionType.RATABLE,),
    ProductType.LICENSE: (RecognitionType.PERPETUAL_LICENSE, RecognitionType.RATABLE),
    ProductType.SERVICES: (RecognitionType.MILESTONE, RecognitionType.TIME_AND_MATERIALS),
    ProductType.USAGE: (RecognitionType.TIME_AND_MATERIALS,),
}

words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
_ALNUM = string.ascii_letters + string.digits
identifiers = st.builds(
    str.__add__, st.sampled_from(_ALNUM), st.text(alphabet=_ALNUM + "_.-", max_size=15)
)


def _digits(prefix: str, size: int) -> st.SearchStrategy[str]:
    return st.integers(10 ** (size - 1), 10**size - 1).map(lambda n: f"{prefix}{n}")


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    local = draw(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10))
    domain = draw(st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=10))
    phone = draw(st.none() | _digits("+", 10))
    return Contact(name=draw(words), email=f"{local}@{domain}.com", phone=phone)


addresses = st.builds(
    Address,
    line1=words,
    city=words,
    region=st.none() | words,
    postal_code=st.none() | _digits("", 5),
    country=st.sampled_from(("US", "GB", "DE", "IN", "JP", "KW")),
)

customers = st.builds(
    Customer,
    customer_id=identifiers,
    name=words,
    legal_entity=words,
    billing_contact=contacts(),
    billing_address=addresses,
    tax_registration_number=st.none() | _digits("GB", 8),
    payment_method=st.sampled_from(PaymentMethod),
)


def _prices(max_value: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=max_value, places=2, allow_nan=False)


@st.composite
def terms(draw: st.DrawFn) -> tuple[date, date]:
    """A start date and an inclusive end date: whole months, or any length up to ~3 years."""
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    if draw(st.booleans()):
        return start, add_months(start, draw(st.integers(1, 36))) - timedelta(days=1)
    return start, start + timedelta(days=draw(st.integers(0, 1100)))


@st.composite
def deal_lines(
    draw: st.DrawFn, line_id: str, product_type: ProductType
) -> tuple[DealLine, RecognitionType]:
    """A line of `product_type` and the obligation type chosen for it (not yet defaulted)."""
    recognition = draw(st.sampled_from(RECOGNITIONS_BY_PRODUCT[product_type]))
    list_price = draw(_prices(200_000))
    discount = draw(st.decimals(min_value=0, max_value=100, places=1))
    net_price = (list_price * (100 - discount) / 100).quantize(Decimal("0.0001"))
    line = DealLine(
        line_id=line_id,
        product=f"{product_type.value} {line_id}",
        product_type=product_type,
        quantity=draw(st.decimals(min_value=Decimal("0.5"), max_value=500, places=1)),
        list_price=list_price,
        net_price=net_price,
        standalone_selling_price=draw(st.just(list_price) | _prices(200_000)),
        discount_percent=discount,
        recognition=recognition,
    )
    return line, recognition


@st.composite
def milestones_for(
    draw: st.DrawFn, line: DealLine, currency: str, start: date, end: date
) -> list[Milestone]:
    """1 to 4 milestones due within the term whose amounts sum to the line's net total."""
    weights = draw(st.lists(st.integers(1, 100), min_size=1, max_size=4))
    parts = allocate(line.net_total(currency), [Decimal(w) for w in weights])
    days = (end - start).days
    return [
        Milestone(
            milestone_id=f"{line.line_id}-M{i}",
            line_id=line.line_id,
            description=f"deliverable {i}",
            due_date=start + timedelta(days=draw(st.integers(0, days))),
            amount=part.amount,
        )
        for i, part in enumerate(parts, start=1)
    ]


def _defaulted(
    line: DealLine, recognition: RecognitionType, deal_type: RecognitionType, leave: bool
) -> DealLine:
    """A line whose obligation type is the deal's may leave it to the deal default."""
    if leave and recognition is deal_type:
        return line.model_copy(update={"recognition": None})
    return line


@st.composite
def deals(
    draw: st.DrawFn, product_types: tuple[ProductType, ...] = tuple(ProductType)
) -> DealSubmission:
    """A valid closed-won deal; `product_types` limits the lines drawn."""
    currency = draw(st.sampled_from(CURRENCIES))
    start, end = draw(terms())
    kinds = draw(st.lists(st.sampled_from(product_types), min_size=1, max_size=6))
    drawn = [draw(deal_lines(f"L{i}", kind)) for i, kind in enumerate(kinds, start=1)]
    deal_type = draw(st.sampled_from(RecognitionType))
    lines = [
        _defaulted(line, recognition, deal_type, draw(st.booleans())) for line, recognition in drawn
    ]
    milestones = [
        milestone
        for line, recognition in drawn
        if recognition is RecognitionType.MILESTONE
        for milestone in draw(milestones_for(line, currency, start, end))
    ]
    return _deal(draw, currency, start, end, deal_type, lines, milestones)


def _deal(
    draw: st.DrawFn,
    currency: str,
    start: date,
    end: date,
    deal_type: RecognitionType,
    lines: list[DealLine],
    milestones: list[Milestone],
) -> DealSubmission:
    tcv = money_sum((line.net_total(currency) for line in lines), currency)
    po_required = draw(st.booleans())
    tax_exempt = draw(st.booleans())
    return DealSubmission(
        deal_id=draw(identifiers),
        customer=draw(customers),
        currency=currency,
        total_contract_value=tcv.amount,
        annual_recurring_value=quantize(tcv.amount * 365 / ((end - start).days + 1), currency),
        start_date=start,
        end_date=end,
        billing_frequency=draw(st.sampled_from(BillingFrequency)),
        payment_terms=draw(st.sampled_from(PaymentTerms)),
        po_required=po_required,
        po_number=draw(identifiers) if po_required else None,
        tax_jurisdiction=draw(st.sampled_from(JURISDICTIONS)),
        tax_exempt=tax_exempt,
        exemption_certificate=draw(identifiers) if tax_exempt else None,
        recognition_type=deal_type,
        milestones=milestones,
        assigned_ae=draw(words),
        commission_plan_id=draw(identifiers),
        lines=lines,
        closed_won_date=start - timedelta(days=draw(st.integers(0, 30))),
    )


def _minor(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def _ssp_per_unit(draw: st.DrawFn, lines: list[DealLine], total: Decimal,
                  currency: str) -> dict[str, Decimal]:  # fmt: skip
    """Per-unit SSPs that make the lines' SSP totals sum to `total` exactly."""
    if not lines:
        return {}
    weights = [Decimal(draw(st.integers(1, 100))) for _ in lines]
    parts = allocate(Money(amount=total, currency=currency), weights)
    return {ln.line_id: part.amount / ln.quantity for ln, part in zip(lines, parts, strict=True)}


@st.composite
def tied_discount_deals(draw: st.DrawFn, fitting: bool = False) -> DealSubmission:
    """A deal from `deals()` whose discount is tied to some (not all) of its two or more
    lines that share the fixed price, one other such line perhaps flagged
    `ssp_highly_variable`. With `fitting`, the SSPs are redrawn so the designation fits the
    price (`models.tied_discount`): without a highly variable line, the other lines' SSPs
    come to at most the price and the named lines' SSPs to at least the rest; with one,
    something is left for it after the others' SSPs and the named lines' contract prices.
    """
    deal = draw(deals())
    extra = [draw(deal_lines(f"X{i}", ProductType.SUBSCRIPTION))[0]
             for i in range(max(0, 2 - len(_fixed(deal))))]  # fmt: skip
    if extra:
        lines = [*deal.lines, *extra]
        tcv = money_sum((ln.net_total(deal.currency) for ln in lines), deal.currency)
        deal = deal.model_copy(update={"lines": lines, "total_contract_value": tcv.amount})
    fixed = _fixed(deal)
    named_ids = draw(st.lists(st.sampled_from([ln.line_id for ln in fixed]), min_size=1,
                              max_size=len(fixed) - 1, unique=True))  # fmt: skip
    outside = [ln for ln in fixed if ln.line_id not in named_ids]
    flagged = outside[-1].line_id if draw(st.booleans()) else None
    lines = [ln.model_copy(update={"ssp_highly_variable": ln.line_id == flagged})
             for ln in deal.lines]  # fmt: skip
    if fitting:
        lines = _fitting_ssps(draw, deal, lines, named_ids, flagged)
    return DealSubmission.model_validate({
        **deal.model_dump(), "lines": [ln.model_dump() for ln in lines],
        "discount_applies_to": named_ids,
        "discount_evidence": "price list 2026 and the last 12 months of bundle sales",
    })  # fmt: skip


def _fixed(deal: DealSubmission) -> list[DealLine]:
    return [ln for ln in deal.lines
            if deal.line_recognition(ln) is not RecognitionType.TIME_AND_MATERIALS]  # fmt: skip


def _fitting_ssps(draw: st.DrawFn, deal: DealSubmission, lines: list[DealLine],
                  named_ids: list[str], flagged: str | None) -> list[DealLine]:  # fmt: skip
    currency, unit = deal.currency, _minor(deal.currency)
    fixed = _fixed(deal.model_copy(update={"lines": lines}))
    price = sum((ln.net_total(currency).amount for ln in fixed), Decimal(0))
    named = [ln for ln in fixed if ln.line_id in named_ids]
    observed = [ln for ln in fixed if ln.line_id not in named_ids and ln.line_id != flagged]
    named_price = sum((ln.net_total(currency).amount for ln in named), Decimal(0))
    room = price - named_price if flagged else price
    if flagged and room < unit:
        lines = [ln.model_copy(update={"ssp_highly_variable": False}) for ln in lines]
        return _fitting_ssps(draw, deal, lines, named_ids, None)
    share = Decimal(draw(st.integers(0, 90))) / 100 if observed else Decimal(0)
    # Cut down to the minor unit: with a flagged line, something stays left for it.
    outside_total = (room * share / unit).to_integral_value(rounding="ROUND_FLOOR") * unit
    extra = Decimal(1) + Decimal(draw(st.integers(0, 50))) / 100
    named_total = quantize((named_price if flagged else price - outside_total) * extra, currency)
    ssps = {**_ssp_per_unit(draw, observed, outside_total, currency),
            **_ssp_per_unit(draw, named, named_total, currency)}  # fmt: skip
    return [ln.model_copy(update={"standalone_selling_price": ssps[ln.line_id]})
            if ln.line_id in ssps else ln for ln in lines]  # fmt: skip


@st.composite
def modifications(
    draw: st.DrawFn,
) -> tuple[DealSubmission, Amendment, frozenset[str]]:
    """A deal from `deals()` with at least one recurring line, an amendment that
    `amendment_problems` accepts on a day of its term (a seat change or price uplift of a
    recurring line, an upsold module or added deliverables, priced at their SSP or not),
    and the milestones accepted by then (any of those due before the amendment's date)."""
    deal = draw(deals(product_types=(ProductType.SUBSCRIPTION, ProductType.SUPPORT,
                                     ProductType.LICENSE, ProductType.SERVICES)))  # fmt: skip
    recurring = [ln for ln in deal.lines if is_recurring(deal, ln)]
    if not recurring:
        extra = draw(deal_lines("R1", ProductType.SUBSCRIPTION))[0]
        deal = deal.model_copy(update={"lines": [*deal.lines, extra]})
        recurring = [extra]
    days = (deal.end_date - deal.start_date).days
    on = deal.start_date + timedelta(days=draw(st.integers(0, days)))
    kind = draw(st.sampled_from([AmendmentKind.SEAT_CHANGE, AmendmentKind.PRICE_UPLIFT,
                                 AmendmentKind.MODULE_UPSELL, AmendmentKind.ADD_DELIVERABLES]))  # fmt: skip
    line = draw(st.sampled_from(recurring))
    fields: dict[str, object] = {}
    if kind is AmendmentKind.SEAT_CHANGE:
        quantity = draw(st.decimals(min_value=Decimal("0.5"), max_value=800, places=1))
        fields = {"line_id": line.line_id,
                  "new_quantity": quantity + 1 if quantity == line.quantity else quantity}  # fmt: skip
    elif kind is AmendmentKind.PRICE_UPLIFT:
        fields = {"line_id": line.line_id,
                  "uplift_percent": Decimal(draw(st.integers(-90, 199)) or 200)}  # fmt: skip
    else:
        fields = draw(_added_line(deal, kind, on))
    amendment = Amendment(amendment_id="A-1", kind=kind, effective_date=on,
                          requested_by="priya.raman", reason="customer request", **fields)  # fmt: skip
    due = [m.milestone_id for m in deal.milestones if m.due_date < on]
    delivered = frozenset(draw(st.lists(st.sampled_from(due), unique=True)) if due else [])
    return deal, amendment, delivered


@st.composite
def _added_line(draw: st.DrawFn, deal: DealSubmission, kind: AmendmentKind,
                on: date) -> dict[str, object]:  # fmt: skip
    """A new subscription module, or a new milestone line and its milestones, whose price
    is its SSP half of the time."""
    deliverables = kind is AmendmentKind.ADD_DELIVERABLES
    product = ProductType.SERVICES if deliverables else ProductType.SUBSCRIPTION
    recognition = RecognitionType.MILESTONE if deliverables else RecognitionType.RATABLE
    net = draw(_prices(200_000))
    ssp = net if draw(st.booleans()) else draw(_prices(200_000))
    line = DealLine(line_id="NEW", product=f"added {product.value}", product_type=product,
                    quantity=draw(st.decimals(min_value=1, max_value=50, places=0)),
                    list_price=max(net, ssp), net_price=net, standalone_selling_price=ssp,
                    recognition=recognition)  # fmt: skip
    if not deliverables:
        return {"new_line": line}
    weights = draw(st.lists(st.integers(1, 100), min_size=1, max_size=3))
    parts = allocate(line.net_total(deal.currency), [Decimal(w) for w in weights])
    span = (deal.end_date - on).days
    milestones = [Milestone(milestone_id=f"NEW-M{i}", line_id="NEW", description=f"lot {i}",
                            due_date=on + timedelta(days=draw(st.integers(0, span))),
                            amount=part.amount)
                  for i, part in enumerate(parts, start=1)]  # fmt: skip
    return {"new_line": line, "milestones": milestones}
