"""The sample book (starter/sample_data/book.json): 30 closed-won deals as finance would see them.

Every deal is a valid `DealSubmission`. Seven deals are meant to fail a QA gate, each for one
cause, as listed in expected_qa.json and the README; the other 23 pass every gate.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from models.calendar_math import add_months
from models.customer import CustomerStanding
from models.deal import (
    BillingFrequency,
    DealSubmission,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.money import Money, allocate, money_sum, quantize
from models.qa import CHECK_IDS, run_gates
from models.rules import RuleSet
from models.terms import recurring_total, term_years
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT

SAMPLE_DIR = PROJECT_ROOT / "starter" / "sample_data"
ONE_DAY = timedelta(days=1)


@cache
def _raw_book() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((SAMPLE_DIR / "book.json").read_text(encoding="utf-8")))


@cache
def _book() -> tuple[DealSubmission, ...]:
    return tuple(DealSubmission.model_validate(raw) for raw in _raw_book())


@cache
def _expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLE_DIR / "expected_qa.json").read_text("utf-8"))
    return data


@cache
def _rules() -> RuleSet:
    return load_rules(PROJECT_ROOT / "rules")


def _expected_failures() -> dict[str, set[str]]:
    return {item["deal_id"]: set(item["checks"]) for item in _expected()["failing"]}


def _clean() -> list[DealSubmission]:
    failing = _expected_failures()
    return [deal for deal in _book() if deal.deal_id not in failing]


def _usd(amount: Decimal, currency: str) -> Decimal:
    return amount * _rules().credit.usd_rates[currency]


def _standing(deal: DealSubmission) -> CustomerStanding:
    """The standing the book implies: earlier deals of the same customer are its history."""
    assert deal.closed_won_date is not None
    prior = [
        other
        for other in _book()
        if other.customer.customer_id == deal.customer.customer_id
        and other.closed_won_date is not None
        and other.closed_won_date < deal.closed_won_date
    ]
    return CustomerStanding(
        customer_id=deal.customer.customer_id,
        prior_orders=len(prior),
        existing_arr_usd=sum(
            (_usd(p.annual_recurring_value, p.currency) for p in prior), Decimal(0)
        ),
        largest_prior_tcv_usd=max(
            (_usd(p.total_contract_value, p.currency) for p in prior), default=Decimal(0)
        ),
    )


def _failed_checks(deal: DealSubmission) -> set[str]:
    return {r.check_id for r in run_gates(deal, _standing(deal), _rules()) if not r.passed}


def _term_months(deal: DealSubmission) -> int:
    months = term_years(deal) * 12
    assert months == months.to_integral_value(), f"{deal.deal_id}: {months} months"
    return int(months)


def _all_recognitions(deal: DealSubmission) -> set[RecognitionType]:
    return {deal.recognition_type} | {deal.line_recognition(line) for line in deal.lines}


# --- the book as a whole ----------------------------------------------------------------------


def test_book_holds_at_least_25_deals_with_unique_ids() -> None:
    ids = [deal.deal_id for deal in _book()]
    assert len(ids) >= 25
    assert len(set(ids)) == len(ids)
    milestone_ids = [m.milestone_id for deal in _book() for m in deal.milestones]
    assert len(set(milestone_ids)) == len(milestone_ids)


def test_every_deal_validates_and_round_trips_as_written() -> None:
    """book.json is written in the model's own JSON form, so nothing is lost or reformatted."""
    for raw, deal in zip(_raw_book(), _book(), strict=True):
        assert deal.model_dump(mode="json", exclude_unset=True) == raw


def test_qa_failures_are_exactly_the_documented_ones() -> None:
    """Scenario: run every QA gate on every deal with the standing the book implies.

    hs-deal-90424 PO missing, 90425 exemption certificate missing, 90426 TCV typo, 90427
    45% discount, 90428 net 60 for a new customer, 90429 ARR keyed as TCV, 90430 milestones
    short of their line. All other deals pass.
    """
    actual = {deal.deal_id: _failed_checks(deal) for deal in _book()}
    failing = {deal_id: checks for deal_id, checks in actual.items() if checks}
    assert failing == _expected_failures()


def test_expected_checks_are_real_check_ids() -> None:
    assert set().union(*_expected_failures().values()) <= set(CHECK_IDS)


def test_credit_is_approved_where_a_first_order_extends_more_than_the_default() -> None:
    """Customers on net terms above the new-customer limit carry an approved credit limit,
    and first orders above 10,000 USD on net terms have their deposit; upfront needs neither."""
    approved = [d for d in _book() if d.customer.approved_credit_limit is not None]
    deposits = [d for d in _book() if d.deposit_received]
    assert len(approved) >= 10
    assert len(deposits) >= 10
    for deal in deposits:
        assert deal.payment_terms is not PaymentTerms.UPFRONT, deal.deal_id
    # A limit belongs to the customer master, so it shows on every order of that customer;
    # each customer with one has at least one order on net terms.
    for customer_id in {d.customer.customer_id for d in approved}:
        orders = [d for d in _book() if d.customer.customer_id == customer_id]
        assert any(d.payment_terms is not PaymentTerms.UPFRONT for d in orders), customer_id


def test_readme_documents_every_deal_and_each_expected_failure() -> None:
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in readme.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and re.fullmatch(r" `hs-deal-\d+` ", cells[1]):
            rows[cells[1].strip(" `")] = line
    assert set(rows) == {deal.deal_id for deal in _book()}
    for deal_id, checks in _expected_failures().items():
        for check in checks:
            assert f"`{check}`" in rows[deal_id], f"README row of {deal_id} lacks {check}"
    for deal in _clean():
        assert "FAIL" not in rows[deal.deal_id]


# --- amounts ------------------------------------------------------------------------------------


def test_clean_deals_tcv_equals_the_sum_of_line_totals() -> None:
    for deal in _clean():
        assert deal.lines_total() == deal.tcv(), deal.deal_id


def test_clean_deals_milestones_sum_exactly_to_their_line() -> None:
    milestone_deals = [d for d in _clean() if d.milestones]
    assert len(milestone_deals) >= 4
    for deal in milestone_deals:
        for line in deal.lines:
            mine = [m for m in deal.milestones if m.line_id == line.line_id]
            if deal.line_recognition(line) is RecognitionType.MILESTONE:
                total = money_sum((Money(amount=m.amount, currency=deal.currency) for m in mine),
                                  deal.currency)  # fmt: skip
                assert total == line.net_total(deal.currency), (deal.deal_id, line.line_id)
            else:
                assert not mine, (deal.deal_id, line.line_id)


def test_clean_deals_arr_is_the_recurring_part_of_tcv_per_year_to_the_cent() -> None:
    for deal in _clean():
        expected = quantize(recurring_total(deal).amount / term_years(deal), deal.currency)
        assert deal.annual_recurring_value == expected, deal.deal_id


def test_net_price_is_list_price_less_the_stated_discount_on_every_line() -> None:
    for deal in _book():
        for line in deal.lines:
            assert line.net_price == line.list_price * (100 - line.discount_percent) / 100
            assert line.net_price <= line.list_price


def test_clean_deals_stay_within_the_30_percent_discount_tolerance() -> None:
    discounts = [line.discount_percent for deal in _clean() for line in deal.lines]
    assert max(discounts) == 30, "one deal sits exactly at the ceiling"
    assert sum(1 for d in discounts if d > 0) >= 10


def test_multi_line_deals_need_relative_ssp_allocation() -> None:
    """At least five deals where allocating TCV by SSP gives other amounts than the net prices."""
    differing = []
    for deal in _clean():
        if len(deal.lines) < 2:
            continue
        weights = [line.ssp_total(deal.currency).amount for line in deal.lines]
        allocated = allocate(deal.tcv(), weights)
        if allocated != [line.net_total(deal.currency) for line in deal.lines]:
            differing.append(deal.deal_id)
    assert len(differing) >= 5, differing


# --- dates and terms ----------------------------------------------------------------------------


def test_terms_are_12_to_36_whole_months_starting_in_q4_2026() -> None:
    for deal in _book():
        months = _term_months(deal)
        assert 12 <= months <= 36, deal.deal_id
        assert date(2026, 10, 1) <= deal.start_date <= date(2027, 1, 1), deal.deal_id
        assert deal.end_date == add_months(deal.start_date, months) - ONE_DAY, deal.deal_id
        assert deal.closed_won_date is not None
        assert deal.closed_won_date < deal.start_date, deal.deal_id


def test_discount_expiry_dates_fall_within_the_term() -> None:
    expiries = [
        (deal, line.discount_expiry)
        for deal in _book()
        for line in deal.lines
        if line.discount_expiry is not None
    ]
    assert len(expiries) >= 3
    for deal, expiry in expiries:
        assert deal.start_date < expiry <= deal.end_date, deal.deal_id


# --- coverage -----------------------------------------------------------------------------------


def test_clean_deals_cover_every_currency_frequency_and_recognition_type() -> None:
    clean = _clean()
    assert {d.currency for d in clean} >= {"USD", "EUR", "GBP", "INR", "JPY", "AUD", "CAD"}
    assert {d.billing_frequency for d in clean} == set(BillingFrequency)
    assert set().union(*(_all_recognitions(d) for d in clean)) == set(RecognitionType)
    assert {d.recognition_type for d in clean} == set(RecognitionType)


def test_clean_deals_cover_every_tax_jurisdiction_named_in_the_brief() -> None:
    wanted = {"US-NY", "US-TX", "US-CA", "GB", "DE", "FR", "NL", "IN", "JP", "AU", "CA-ON", "SG"}
    assert {d.tax_jurisdiction for d in _clean()} == wanted


def test_every_product_is_sold_with_its_product_type() -> None:
    products = {(line.product, line.product_type) for d in _clean() for line in d.lines}
    assert products == {
        ("Ledgerline Platform", ProductType.SUBSCRIPTION),
        ("Ledgerline Analytics", ProductType.SUBSCRIPTION),
        ("Premium Support", ProductType.SUPPORT),
        ("Ledgerline On-Prem perpetual license", ProductType.LICENSE),
        ("Implementation services", ProductType.SERVICES),
        ("Professional services (T&M)", ProductType.SERVICES),
        ("API usage", ProductType.USAGE),
    }


def test_perpetual_license_deals_come_with_premium_support() -> None:
    licensed = [d for d in _clean() if d.recognition_type is RecognitionType.PERPETUAL_LICENSE]
    assert len(licensed) >= 2
    for deal in licensed:
        types = {line.product_type for line in deal.lines}
        assert {ProductType.LICENSE, ProductType.SUPPORT} <= types, deal.deal_id


def test_po_and_tax_exempt_customers_carry_their_documents() -> None:
    clean = _clean()
    with_po = [d for d in clean if d.po_required]
    assert len(with_po) >= 8
    assert all(d.po_number for d in with_po)
    exempt = [d for d in clean if d.tax_exempt]
    certificates = " ".join(d.exemption_certificate or "" for d in exempt)
    assert len(exempt) >= 3
    assert all(d.exemption_certificate for d in exempt)
    assert "resale" in certificates
    assert "exempt organization" in certificates


def test_two_customers_order_twice_with_the_same_master_record() -> None:
    """Northwind Logistics (EUR) and Harbourside Analytics (AUD) each close a second deal."""
    counts = Counter(d.customer.customer_id for d in _book())
    repeat = {cid for cid, n in counts.items() if n > 1}
    assert repeat == {"hs-co-48213", "hs-co-51877"}
    for cid in repeat:
        records = {d.customer for d in _book() if d.customer.customer_id == cid}
        assert len(records) == 1, cid
    assert len({d.customer.legal_entity for d in _book()}) == len(counts)


def test_first_orders_use_net_15_or_upfront_payment_terms() -> None:
    for deal in _clean():
        if _standing(deal).prior_orders == 0:
            assert deal.payment_terms.value in {"net_15", "upfront"}, deal.deal_id
    later = {d.deal_id: d.payment_terms.value for d in _book() if _standing(d).prior_orders}
    assert later == {"hs-deal-90402": "net_30", "hs-deal-90412": "net_15"}


# --- customer master data -----------------------------------------------------------------------


def test_tax_jurisdiction_matches_the_billing_address() -> None:
    for deal in _book():
        address = deal.customer.billing_address
        country, _, subdivision = deal.tax_jurisdiction.partition("-")
        assert country == address.country, deal.deal_id
        if subdivision:
            assert subdivision == address.region, deal.deal_id


def test_billing_contacts_use_the_customers_own_example_domain() -> None:
    domains: dict[str, str] = {}
    for deal in _book():
        contact = deal.customer.billing_contact
        domain = contact.email.partition("@")[2]
        assert domain.endswith(".example"), deal.deal_id
        assert domains.setdefault(deal.customer.customer_id, domain) == domain
        assert contact.phone and contact.phone.startswith("+"), deal.deal_id
        assert deal.assigned_ae.endswith("@ledgerline.example"), deal.deal_id
    assert len(set(domains.values())) == len(domains), "one domain per customer"


def test_billing_entity_is_left_to_the_currency_default() -> None:
    assert all(deal.billing_entity is None for deal in _book())
    assert all(_rules().entity_for(deal.currency, None) for deal in _book())
