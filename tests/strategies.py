"""Hypothesis strategies for valid domain objects, shared by the property tests.

`deals()` draws a valid `DealSubmission`: a customer with contacts and an address, 1 to 6
lines of any product type with an obligation type that fits it, milestones that sum to their
line's net total, TCV equal to the lines' total, and a term of 1 day to about 3 years in a
currency with 0, 2 or 3 minor digits.
"""

from __future__ import annotations

import string
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from models.calendar_math import add_months
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
from models.money import allocate, money_sum, quantize

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
