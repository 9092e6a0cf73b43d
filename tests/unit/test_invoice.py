"""Contract-aware invoices (SPEC §4): amount, tax, due date, PO, entity and currency all come
from the contract and the rules, never from manual entry.

Unless a test says otherwise the contract is:

    Deal D-1, customer C-100 (Acme Corporation Inc., 1 Main St, Springfield, US; billing
    contact Ada Billing <ap@acme-corp.com>), USD, 2026-01-01 .. 2026-12-31, billed annually
    in advance, net 30, taxed in US-NY.
      SUB  Platform subscription  qty 1  net 120,000.00
    The first invoice bills the whole year on 2026-01-01 and is issued that day.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from models.billing import BillingEvent, first_invoice
from models.deal import (
    Address,
    BillingFrequency,
    Contact,
    DealSubmission,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.invoice import InvoiceDraft, InvoiceNotIssuable, draft_invoice, invoice_number
from models.money import Money
from models.rules import RuleSet
from tests.builders import make_deal, make_line

PERPETUAL = RecognitionType.PERPETUAL_LICENSE
ISSUED = date(2026, 1, 1)


def contract(net: str = "120000", **overrides: Any) -> DealSubmission:
    """The contract of the module docstring, its one line at `net`, with `overrides`."""
    line = make_line("SUB", ProductType.SUBSCRIPTION, net, product="Platform subscription")
    return make_deal([line], **overrides)


def first_event(deal: DealSubmission) -> BillingEvent:
    event = first_invoice(deal)
    assert event is not None
    return event


def invoice(deal: DealSubmission, rules: RuleSet, issued_on: date = ISSUED) -> InvoiceDraft:
    """The deal's first invoice, issued on `issued_on`."""
    return draft_invoice(deal, first_event(deal), rules, issued_on)


def money(amount: str, currency: str = "USD") -> Money:
    return Money.of(amount, currency)


# --- tax ------------------------------------------------------------------------------------


def test_new_york_invoice_adds_8_875_percent_sales_tax(rules: RuleSet) -> None:
    """120,000.00 USD * 8.875% = 10,650.00 USD; total 130,650.00 USD."""
    draft = invoice(contract(), rules)

    assert draft.subtotal == money("120000")
    assert (draft.tax_label, draft.tax_rate_percent) == ("NY sales tax 8.875%", Decimal("8.875"))
    assert draft.tax == money("10650")
    assert draft.total.format() == "130,650.00 USD"
    assert not draft.tax_exempt


def test_uk_invoice_adds_20_percent_vat_in_pounds(rules: RuleSet) -> None:
    """GBP deal taxed in GB: 10,000.00 GBP + VAT 20% 2,000.00 GBP = 12,000.00 GBP."""
    draft = invoice(contract("10000", currency="GBP", tax_jurisdiction="GB"), rules)

    assert (draft.currency, draft.tax_label) == ("GBP", "VAT 20%")
    assert draft.tax == money("2000", "GBP")
    assert draft.total == money("12000", "GBP")


def test_yen_tax_is_rounded_half_up_to_whole_yen(rules: RuleSet) -> None:
    """JPY deal taxed in JP: 12,345 JPY * JCT 10% = 1,234.5 -> 1,235 JPY (half-up, not to
    even); total 13,580 JPY."""
    draft = invoice(contract("12345", currency="JPY", tax_jurisdiction="JP"), rules)

    assert draft.tax == money("1235", "JPY")
    assert draft.total.format() == "13,580 JPY"


def test_usd_tax_is_rounded_half_up_to_the_cent(rules: RuleSet) -> None:
    """12.00 USD * 8.875% = 1.065 -> 1.07 USD (round-half-even would give 1.06)."""
    draft = invoice(contract("12"), rules)

    assert draft.tax == money("1.07")
    assert draft.total == money("13.07")


def test_tax_exempt_invoice_shows_no_tax_and_the_certificate(rules: RuleSet) -> None:
    """Tax exempt with certificate NY-ST-120-2291: no tax, the total is the subtotal and
    the tax line names the certificate."""
    deal = contract(tax_exempt=True, exemption_certificate="NY-ST-120-2291")
    draft = invoice(deal, rules)

    assert draft.tax == money("0")
    assert draft.tax_rate_percent == 0
    assert draft.tax_label == "Tax exempt (certificate NY-ST-120-2291)"
    assert (draft.tax_exempt, draft.exemption_certificate) == (True, "NY-ST-120-2291")
    assert draft.total == money("120000")


@pytest.mark.parametrize(
    ("currency", "jurisdiction", "label", "tax"),
    [
        pytest.param("USD", "US-FL", "US: no sales tax nexus", "0", id="US-FL falls back to US"),
        pytest.param("CAD", "CA-QC", "GST 5%", "500", id="CA-QC falls back to CA"),
        pytest.param("CAD", "CA-ON", "HST 13%", "1300", id="CA-ON has its own rate"),
    ],
)
def test_subdivision_without_its_own_rate_falls_back_to_the_country_rate(
    currency: str, jurisdiction: str, label: str, tax: str, rules: RuleSet
) -> None:
    """10,000.00 on the invoice; tax_rates.yaml has CA-ON and CA, US-NY and US, but no
    CA-QC or US-FL."""
    draft = invoice(contract("10000", currency=currency, tax_jurisdiction=jurisdiction), rules)

    assert (draft.tax_label, draft.tax) == (label, money(tax, currency))


def test_jurisdiction_without_any_rate_is_not_issuable(rules: RuleSet) -> None:
    """Taxed in KW: neither KW nor a parent country has a rate."""
    deal = contract(tax_jurisdiction="KW")

    with pytest.raises(InvoiceNotIssuable) as refused:
        invoice(deal, rules)

    assert str(refused.value) == "deal D-1: no tax rate for KW"


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "due"),
    [
        (PaymentTerms.NET_15, date(2026, 1, 16)),
        (PaymentTerms.NET_30, date(2026, 1, 31)),
        (PaymentTerms.NET_45, date(2026, 2, 15)),
        (PaymentTerms.NET_60, date(2026, 3, 2)),
        (PaymentTerms.UPFRONT, date(2026, 1, 1)),
    ],
)
def test_due_date_is_the_invoice_date_plus_the_payment_terms(
    terms: PaymentTerms, due: date, rules: RuleSet
) -> None:
    """Issued 2026-01-01; upfront is due the same day."""
    draft = invoice(contract(payment_terms=terms), rules)

    assert (draft.invoice_date, draft.due_date, draft.payment_terms) == (ISSUED, due, terms)


def test_invoice_is_dated_the_day_it_is_issued_for_the_planned_period(rules: RuleSet) -> None:
    """The plan calls for 2026-01-01; issued late on 2026-01-05 on net 30: dated 2026-01-05,
    due 2026-02-04, still for service 2026-01-01 .. 2026-12-31."""
    draft = invoice(contract(), rules, issued_on=date(2026, 1, 5))

    assert (draft.invoice_date, draft.due_date) == (date(2026, 1, 5), date(2026, 2, 4))
    assert (draft.period_start, draft.period_end) == (date(2026, 1, 1), date(2026, 12, 31))


# --- PO -------------------------------------------------------------------------------------


def test_customer_po_is_printed_on_the_invoice(rules: RuleSet) -> None:
    draft = invoice(contract(po_required=True, po_number="PO-7781"), rules)

    assert draft.po_number == "PO-7781"


@pytest.mark.parametrize("po_number", [None, "", "  "])
def test_invoice_without_the_required_po_is_not_issuable(
    po_number: str | None, rules: RuleSet
) -> None:
    deal = contract(po_required=True, po_number=po_number)

    with pytest.raises(InvoiceNotIssuable) as refused:
        invoice(deal, rules)

    assert str(refused.value) == "deal D-1: customer requires a PO and none is set"


# --- issuing entity, bill-to, lines ---------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "jurisdiction", "entity", "legal_name"),
    [
        ("USD", "US-NY", "LL-US", "Ledgerline Inc."),
        ("EUR", "DE", "LL-EU", "Ledgerline Europe B.V."),
        ("GBP", "GB", "LL-UK", "Ledgerline UK Ltd"),
        ("INR", "IN", "LL-IN", "Ledgerline Software India Pvt Ltd"),
        ("JPY", "JP", "LL-US", "Ledgerline Inc."),
    ],
)
def test_issuing_entity_is_the_default_for_the_invoice_currency(
    currency: str, jurisdiction: str, entity: str, legal_name: str, rules: RuleSet
) -> None:
    draft = invoice(contract(currency=currency, tax_jurisdiction=jurisdiction), rules)

    assert (draft.entity.code, draft.entity.legal_name) == (entity, legal_name)


def test_billing_entity_named_on_the_contract_wins_over_the_currency_default(
    rules: RuleSet,
) -> None:
    """A USD contract that names LL-UK as the billing entity."""
    draft = invoice(contract(billing_entity="LL-UK"), rules)

    assert (draft.entity.code, draft.entity.invoice_prefix, draft.currency) == (
        "LL-UK",
        "LLUK",
        "USD",
    )


def test_currency_without_an_issuing_entity_is_not_issuable(rules: RuleSet) -> None:
    """A SEK contract: no entity of ours has SEK among its default currencies."""
    with pytest.raises(InvoiceNotIssuable) as refused:
        invoice(contract(currency="SEK"), rules)

    assert str(refused.value) == "deal D-1: no issuing entity for SEK"


def test_unknown_billing_entity_on_the_contract_is_named_when_refused(rules: RuleSet) -> None:
    """A USD contract naming billing entity LL-DE, which entities.yaml lacks."""
    with pytest.raises(InvoiceNotIssuable) as refused:
        invoice(contract(billing_entity="LL-DE"), rules)

    assert str(refused.value) == "deal D-1: no issuing entity named LL-DE"


def test_invoice_is_addressed_to_the_customers_legal_entity(rules: RuleSet) -> None:
    deal = contract()
    deal = deal.model_copy(
        update={
            "customer": deal.customer.model_copy(update={"tax_registration_number": "EIN 12-3"})
        }
    )
    draft = invoice(deal, rules)

    assert (draft.deal_id, draft.customer_id) == ("D-1", "C-100")
    assert draft.bill_to_legal_entity == "Acme Corporation Inc."
    assert draft.bill_to_address == Address(line1="1 Main St", city="Springfield", country="US")
    assert draft.bill_to_contact == Contact(name="Ada Billing", email="ap@acme-corp.com")
    assert draft.customer_tax_registration == "EIN 12-3"


def test_invoice_carries_the_lines_period_and_reason_of_its_billing_event(
    rules: RuleSet,
) -> None:
    """Billed quarterly: the first invoice is 30,000.00 USD for 2026-01-01 .. 2026-03-31,
    'subscription period 1 of 4'; tax 2,662.50; total 32,662.50."""
    draft = invoice(contract(frequency=BillingFrequency.QUARTERLY), rules)

    assert [(line.line_id, line.amount) for line in draft.lines] == [("SUB", money("30000"))]
    assert (draft.period_start, draft.period_end) == (date(2026, 1, 1), date(2026, 3, 31))
    assert draft.reason == "subscription period 1 of 4"
    assert (draft.subtotal, draft.tax, draft.total) == (
        money("30000"),
        money("2662.50"),
        money("32662.50"),
    )


def test_license_and_subscription_billed_together_are_taxed_on_their_sum(
    rules: RuleSet,
) -> None:
    """LIC perpetual license 50,000.00 and SUB 120,000.00 annual, both invoiced on
    2026-01-01: subtotal 170,000.00, NY tax 15,087.50, total 185,087.50."""
    lic = make_line("LIC", ProductType.LICENSE, "50000", recognition=PERPETUAL)
    sub = make_line("SUB", ProductType.SUBSCRIPTION, "120000")
    draft = invoice(make_deal([lic, sub]), rules)

    assert [line.line_id for line in draft.lines] == ["LIC", "SUB"]
    assert (draft.subtotal, draft.tax, draft.total) == (
        money("170000"),
        money("15087.50"),
        money("185087.50"),
    )


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "sequence", "number"),
    [("LLUS", 42, "LLUS-000042"), ("LLEU", 1, "LLEU-000001"), ("LLIN", 999999, "LLIN-999999")],
)
def test_invoice_number_is_the_entity_prefix_and_a_six_digit_sequence(
    prefix: str, sequence: int, number: str
) -> None:
    assert invoice_number(prefix, sequence) == number
