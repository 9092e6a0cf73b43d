"""QA gates (SPEC §2): for every check a deal that passes and a deal that fails, with the
owner from rules/routes.yaml and the message finance reads; then the credit policy.

Unless a test says otherwise, the scenario is the clean deal and the good customer:

    Deal D-1, customer C-100 (Acme Corp), USD, 2026-01-01 .. 2026-12-31, billed annually
    in advance, net 30, no PO required, taxed in US-NY, recognised ratably.
      SUB  Platform subscription  qty 1  list 120,000.00  net 120,000.00  SSP 120,000.00
    TCV 120,000.00 USD, ARR 120,000.00 USD.

    Customer C-100: 4 prior orders, 2,000,000 USD ARR under contract (enterprise), largest
    prior deal 200,000 USD, never paid late, not on credit hold, no open receivables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from models.customer import CustomerStanding, credit_category
from models.deal import (
    BillingFrequency,
    DealLine,
    DealSubmission,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.qa import (
    CHECK_IDS,
    QA_GATES,
    GateContext,
    GateResult,
    Layer,
    credit_exposure_usd,
    run_gates,
)
from models.rules import Role, RuleSet
from tests.builders import make_customer, make_deal, make_line, make_milestone

SUBSCRIPTION = ProductType.SUBSCRIPTION
SERVICES = ProductType.SERVICES
MILESTONE = RecognitionType.MILESTONE


def clean_deal(**overrides: Any) -> DealSubmission:
    """The clean deal of the module docstring, with `overrides` applied."""
    line = make_line("SUB", SUBSCRIPTION, "120000", product="Platform subscription")
    return make_deal([line], **overrides)


def good_customer(**overrides: Any) -> CustomerStanding:
    """The enterprise customer C-100 of the module docstring, with `overrides` applied."""
    fields: dict[str, Any] = {
        "customer_id": "C-100",
        "prior_orders": 4,
        "existing_arr_usd": Decimal(2_000_000),
        "largest_prior_tcv_usd": Decimal(200_000),
    }
    fields.update(overrides)
    return CustomerStanding(**fields)


def mid_market_customer(**overrides: Any) -> CustomerStanding:
    """C-100 with 2 prior orders and no other ARR: with this deal's 120,000 USD ARR it is
    mid-market (100,000 USD credit limit, net 15 / net 30 / upfront)."""
    fields: dict[str, Any] = {"prior_orders": 2, "existing_arr_usd": Decimal(0)}
    fields.update(overrides)
    return good_customer(**fields)


def new_customer() -> CustomerStanding:
    """C-100 placing its first order: 10,000 USD limit, net 15 or upfront, deposit above
    10,000 USD."""
    return CustomerStanding.new("C-100")


def discounted_line(
    line_id: str, list_price: str, percent: str, net: str | None = None
) -> DealLine:
    """A subscription line at `percent` off `list_price`; its net price is exactly that
    unless `net` says otherwise."""
    list_amount, discount = Decimal(list_price), Decimal(percent)
    return DealLine(
        line_id=line_id,
        product="Platform subscription",
        product_type=SUBSCRIPTION,
        quantity=Decimal(1),
        list_price=list_amount,
        net_price=Decimal(net) if net is not None else list_amount * (100 - discount) / 100,
        standalone_selling_price=list_amount,
        discount_percent=discount,
    )


def gate(
    check_id: str, deal: DealSubmission, standing: CustomerStanding, rules: RuleSet
) -> GateResult:
    """The result of one check, as `run_gates` reports it."""
    return next(r for r in run_gates(deal, standing, rules) if r.check_id == check_id)


def assert_failed(result: GateResult, owner: Role, *messages: str) -> None:
    assert (result.passed, result.owner_role, result.messages) == (False, owner, list(messages))


def assert_passed(result: GateResult) -> None:
    assert (result.passed, result.messages) == (True, [])


# --- structural -----------------------------------------------------------------------------


def test_deal_ending_the_day_it_starts_fails_end_after_start(rules: RuleSet) -> None:
    """Start 2026-06-30, end 2026-06-30: the end is not after the start."""
    deal = clean_deal(start=date(2026, 6, 30), end=date(2026, 6, 30))

    assert_failed(
        gate("structural.end_after_start", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Deal D-1 ends 2026-06-30 on or before it starts 2026-06-30",
    )


def test_deal_ending_before_it_starts_fails_end_after_start_on_upfront_terms(
    rules: RuleSet,
) -> None:
    """Start 2026-07-01, end 2026-06-30, paid upfront."""
    deal = clean_deal(
        start=date(2026, 7, 1), end=date(2026, 6, 30), payment_terms=PaymentTerms.UPFRONT
    )

    assert_failed(
        gate("structural.end_after_start", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Deal D-1 ends 2026-06-30 on or before it starts 2026-07-01",
    )


def test_deal_ending_before_it_starts_fails_end_after_start_on_net_terms(rules: RuleSet) -> None:
    """Start 2026-07-01, end 2026-06-30, net 30: QA must report it, not crash."""
    deal = clean_deal(start=date(2026, 7, 1), end=date(2026, 6, 30))

    assert_failed(
        gate("structural.end_after_start", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Deal D-1 ends 2026-06-30 on or before it starts 2026-07-01",
    )


def test_one_year_term_passes_end_after_start(rules: RuleSet) -> None:
    assert_passed(gate("structural.end_after_start", clean_deal(), good_customer(), rules))


def test_unknown_currency_fails_currency_known(rules: RuleSet) -> None:
    """Currency XYZ: three letters, but not an ISO 4217 code."""
    deal = clean_deal(currency="XYZ")

    assert_failed(
        gate("structural.currency_known", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Deal D-1: currency XYZ is not an ISO 4217 code",
    )


def test_iso_currency_without_an_entity_still_passes_currency_known(rules: RuleSet) -> None:
    """SEK is ISO 4217 even though no entity of ours invoices in it."""
    assert_passed(
        gate("structural.currency_known", clean_deal(currency="SEK"), good_customer(), rules)
    )


@pytest.mark.parametrize("po_number", [None, "", "   "])
def test_missing_po_fails_po_present_when_the_customer_requires_one(
    po_number: str | None, rules: RuleSet
) -> None:
    """PO required: yes; PO number: none, empty or blank."""
    deal = clean_deal(po_required=True, po_number=po_number)

    assert_failed(
        gate("structural.po_present", deal, good_customer(), rules),
        Role.BILLING,
        "Customer C-100 requires a PO and deal D-1 has none",
    )


@pytest.mark.parametrize(("required", "po_number"), [(True, "PO-7781"), (False, None)])
def test_po_present_passes_with_a_po_or_when_none_is_required(
    required: bool, po_number: str | None, rules: RuleSet
) -> None:
    deal = clean_deal(po_required=required, po_number=po_number)

    assert_passed(gate("structural.po_present", deal, good_customer(), rules))


def test_tax_exempt_deal_without_certificate_fails_exemption_certificate(rules: RuleSet) -> None:
    """Tax exempt: yes; exemption certificate: none."""
    deal = clean_deal(tax_exempt=True, exemption_certificate=None)

    assert_failed(
        gate("structural.exemption_certificate", deal, good_customer(), rules),
        Role.BILLING,
        "Deal D-1 is tax exempt without an exemption certificate",
    )


def test_tax_exempt_deal_with_certificate_passes_exemption_certificate(rules: RuleSet) -> None:
    deal = clean_deal(tax_exempt=True, exemption_certificate="NY-ST-120-2291")

    assert_passed(gate("structural.exemption_certificate", deal, good_customer(), rules))


def test_lines_short_of_tcv_fail_lines_total_tcv(rules: RuleSet) -> None:
    """Lines total 120,000.00 USD, TCV entered as 125,000.00 USD: 5,000.00 too little."""
    deal = clean_deal(total_contract_value=Decimal("125000"))
    result = gate("structural.lines_total_tcv", deal, good_customer(), rules)

    assert_failed(
        result,
        Role.SALES_OPS,
        "Deal D-1 lines total 120,000.00 USD != TCV 125,000.00 USD (5,000.00 USD too little)",
    )
    assert result.evidence == {"lines_total": "120000.00", "tcv": "125000.00"}


def test_lines_above_tcv_fail_lines_total_tcv(rules: RuleSet) -> None:
    """Lines total 120,000.00 USD, TCV entered as 118,500.00 USD: 1,500.00 too much."""
    deal = clean_deal(total_contract_value=Decimal("118500"))

    assert_failed(
        gate("structural.lines_total_tcv", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Deal D-1 lines total 120,000.00 USD != TCV 118,500.00 USD (1,500.00 USD too much)",
    )


def test_lines_equal_to_tcv_pass_lines_total_tcv(rules: RuleSet) -> None:
    assert_passed(gate("structural.lines_total_tcv", clean_deal(), good_customer(), rules))


def test_net_price_off_its_stated_discount_fails_line_prices(rules: RuleSet) -> None:
    """SUB: list 100,000.00, discount 10%, so net should be 90,000.00; entered 95,000.00."""
    deal = make_deal([discounted_line("SUB", "100000", "10", net="95000")])

    assert_failed(
        gate("structural.line_prices", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Line SUB: net price 95,000.00 USD != list 100000 less 10% = 90,000.00 USD",
    )


def test_net_price_matching_its_discount_passes_line_prices(rules: RuleSet) -> None:
    """SUB: list 100,000.00 less 12.5% = 87,500.00."""
    deal = make_deal([discounted_line("SUB", "100000", "12.5")])

    assert_passed(gate("structural.line_prices", deal, good_customer(), rules))


def milestone_deal(*amounts: str, line_id: str = "IMPL") -> DealSubmission:
    """Deal D-1: IMPL Implementation services 50,000.00 USD recognised on milestones M1, M2,
    ... of `amounts`, due 2026-03-31, 2026-04-30, ...; billed on milestones."""
    milestones = [
        make_milestone(f"M{i}", line_id, date(2026, 2 + i, 28), amount)
        for i, amount in enumerate(amounts, start=1)
    ]
    line = make_line("IMPL", SERVICES, "50000", recognition=MILESTONE, product="Implementation")
    return make_deal(
        [line],
        frequency=BillingFrequency.MILESTONE,
        recognition=MILESTONE,
        milestones=milestones,
    )


def test_milestones_short_of_their_line_fail_milestones_total(rules: RuleSet) -> None:
    """IMPL 50,000.00 USD; milestones M1 20,000.00 + M2 20,000.00 = 40,000.00."""
    deal = milestone_deal("20000", "20000")

    assert_failed(
        gate("structural.milestones_total", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Line IMPL: milestones total 40,000.00 USD != line total 50,000.00 USD (2 milestones)",
    )


def test_milestone_line_without_milestones_fails_milestones_total(rules: RuleSet) -> None:
    deal = milestone_deal()

    assert_failed(
        gate("structural.milestones_total", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Line IMPL: milestones total 0.00 USD != line total 50,000.00 USD (0 milestones)",
    )


def example_34(price_each: str) -> DealSubmission:
    """ASC 606 Example 34's products A, B, C (SSPs 40, 55, 45), each sold for `price_each`,
    the discount tied to B and C ("sold together for 60, A alone for 40")."""
    lines = [make_line(line_id, ProductType.LICENSE, price_each, ssp=ssp,
                       recognition=RecognitionType.PERPETUAL_LICENSE)
             for line_id, ssp in (("A", "40"), ("B", "55"), ("C", "45"))]  # fmt: skip
    return make_deal(lines, discount_applies_to=["B", "C"],
                     discount_evidence="B and C sell together for 60, A alone for 40")  # fmt: skip


def test_discount_tied_to_lines_the_price_leaves_room_for_passes_discount_applies_to(
    rules: RuleSet,
) -> None:
    """Sold for 3 × 33.33 = 99.99: A gets its SSP 40, B and C 59.99 (between 0 and 100)."""
    assert_passed(gate("structural.discount_applies_to", example_34("33.33"), good_customer(),
                       rules))  # fmt: skip


def test_discount_tied_to_lines_the_price_cannot_carry_fails_discount_applies_to(
    rules: RuleSet,
) -> None:
    """Sold for 3 × 50 = 150, more than the SSPs (140): B and C would get 150 − 40 = 110, more
    than their SSPs of 100, so there is no discount on them to tie."""
    assert_failed(
        gate("structural.discount_applies_to", example_34("50"), good_customer(), rules),
        Role.FINANCE,
        "Deal D-1: the discount tied to lines B, C does not fit its prices: B, C would get "
        "110.00 USD, more than their SSPs 100.00 USD: the contract has no discount on them to "
        "tie; fix the prices or the designation (waived, the discount is allocated over all "
        "lines in proportion)",
    )


def test_milestone_naming_a_line_the_deal_lacks_fails_milestones_total(rules: RuleSet) -> None:
    """IMPL 50,000.00 USD has M1 30,000.00 and M2 20,000.00, plus M3 on line L9."""
    deal = milestone_deal("30000", "20000")
    stray = make_milestone("M3", "L9", date(2026, 6, 30), "1000")
    deal = deal.model_copy(update={"milestones": [*deal.milestones, stray]})

    assert_failed(
        gate("structural.milestones_total", deal, good_customer(), rules),
        Role.SALES_OPS,
        "Milestone M3 names line L9, which the deal lacks",
    )


def test_milestones_adding_up_to_their_line_pass_milestones_total(rules: RuleSet) -> None:
    """IMPL 50,000.00 USD; milestones 30,000.00 + 20,000.00."""
    assert_passed(
        gate(
            "structural.milestones_total", milestone_deal("30000", "20000"), good_customer(), rules
        )
    )


def test_jurisdiction_without_a_rate_fails_tax_jurisdiction_known(rules: RuleSet) -> None:
    """Taxed in KW: rules/tax_rates.yaml has no KW."""
    deal = clean_deal(tax_jurisdiction="KW")

    assert_failed(
        gate("structural.tax_jurisdiction_known", deal, good_customer(), rules),
        Role.BILLING,
        "Deal D-1: no tax rate for jurisdiction KW in the rules",
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"tax_jurisdiction": "US-FL"},  # no US-FL row: the US country rate applies
        {"tax_jurisdiction": "KW", "tax_exempt": True, "exemption_certificate": "KW-1"},
    ],
)
def test_known_country_or_exempt_deal_passes_tax_jurisdiction_known(
    overrides: dict[str, Any], rules: RuleSet
) -> None:
    assert_passed(
        gate("structural.tax_jurisdiction_known", clean_deal(**overrides), good_customer(), rules)
    )


def test_currency_no_entity_invoices_in_fails_billing_entity_known(rules: RuleSet) -> None:
    """A SEK deal: no entity has SEK among its default currencies."""
    deal = clean_deal(currency="SEK")

    assert_failed(
        gate("structural.billing_entity_known", deal, good_customer(), rules),
        Role.BILLING,
        "Deal D-1: no issuing entity for SEK",
    )


def test_unknown_requested_entity_fails_billing_entity_known(rules: RuleSet) -> None:
    deal = clean_deal(billing_entity="LL-DE")

    assert_failed(
        gate("structural.billing_entity_known", deal, good_customer(), rules),
        Role.BILLING,
        "Deal D-1: no issuing entity named LL-DE",
    )


@pytest.mark.parametrize("overrides", [{"currency": "CHF"}, {"billing_entity": "LL-UK"}])
def test_default_or_named_entity_passes_billing_entity_known(
    overrides: dict[str, Any], rules: RuleSet
) -> None:
    assert_passed(
        gate("structural.billing_entity_known", clean_deal(**overrides), good_customer(), rules)
    )


# --- business: payment terms and the credit policy ------------------------------------------


def test_net_30_for_a_first_order_fails_payment_terms_policy(rules: RuleSet) -> None:
    """First order of C-100 on net 30; new customers get net 15 or upfront."""
    assert_failed(
        gate("business.payment_terms_policy", clean_deal(), new_customer(), rules),
        Role.FINANCE,
        "Deal D-1: payment terms net_30 not allowed for New customer (first order) "
        "(allowed: net_15, upfront)",
    )


def test_net_15_for_a_first_order_passes_payment_terms_policy(rules: RuleSet) -> None:
    deal = clean_deal(payment_terms=PaymentTerms.NET_15)

    assert_passed(gate("business.payment_terms_policy", deal, new_customer(), rules))


def test_net_45_is_judged_on_arr_converted_to_usd(rules: RuleSet) -> None:
    """C-100 with 2 prior orders, no other ARR, net 45 (enterprise only).
    ARR 950,000 USD is mid-market: refused. ARR 950,000 EUR = 1,026,000 USD (1.08 USD/EUR)
    is enterprise: allowed."""
    standing = mid_market_customer()
    line = make_line("SUB", SUBSCRIPTION, "950000")

    in_usd = make_deal([line], payment_terms=PaymentTerms.NET_45)
    in_eur = make_deal([line], currency="EUR", payment_terms=PaymentTerms.NET_45)

    assert_failed(
        gate("business.payment_terms_policy", in_usd, standing, rules),
        Role.FINANCE,
        "Deal D-1: payment terms net_45 not allowed for Mid-market ($100K-$1M ARR) "
        "(allowed: net_15, net_30, upfront)",
    )
    assert_passed(gate("business.payment_terms_policy", in_eur, standing, rules))


@pytest.mark.parametrize(
    ("standing", "deal_arr_usd", "category"),
    [
        pytest.param(
            good_customer(late_payments=1), "2000000", "prior_late_payments", id="late payer"
        ),
        pytest.param(new_customer(), "2000000", "new_customer", id="first order"),
        pytest.param(mid_market_customer(), "99999.99", "smb", id="smb below 100K"),
        pytest.param(mid_market_customer(), "100000", "mid_market", id="mid-market at 100K"),
        pytest.param(mid_market_customer(), "1000000", "mid_market", id="mid-market at 1M"),
        pytest.param(mid_market_customer(), "1000000.01", "enterprise", id="enterprise above 1M"),
        pytest.param(
            mid_market_customer(existing_arr_usd=Decimal(950_000)),
            "60000",
            "enterprise",
            id="existing ARR counts",
        ),
    ],
)
def test_credit_category_follows_the_policy_table(
    standing: CustomerStanding, deal_arr_usd: str, category: str, rules: RuleSet
) -> None:
    """SPEC §2: prior late payments first, then first orders, then by ARR including this
    deal: enterprise above 1M USD, mid-market 100K to 1M, SMB below 100K."""
    chosen = credit_category(standing, Decimal(deal_arr_usd), rules.credit)

    assert chosen == getattr(rules.credit, category)


def context(deal: DealSubmission, standing: CustomerStanding, rules: RuleSet) -> GateContext:
    return GateContext(deal=deal, standing=standing, rules=rules)


def test_upfront_terms_extend_no_new_credit(rules: RuleSet) -> None:
    """Upfront, open receivables 7,500 USD: exposure is the 7,500 already owed; the
    120,000.00 invoice is paid before service."""
    deal = clean_deal(payment_terms=PaymentTerms.UPFRONT)
    standing = good_customer(open_receivables_usd=Decimal(7500))

    assert credit_exposure_usd(context(deal, standing, rules)) == Decimal(7500)


def test_net_terms_exposure_is_open_receivables_plus_the_largest_invoice(rules: RuleSet) -> None:
    """Quarterly billing, 4 invoices of 30,000.00 USD; open receivables 7,500 USD:
    exposure 7,500 + 30,000 = 37,500 USD."""
    deal = clean_deal(frequency=BillingFrequency.QUARTERLY)
    standing = good_customer(open_receivables_usd=Decimal(7500))

    assert credit_exposure_usd(context(deal, standing, rules)) == Decimal(37500)


def test_net_terms_exposure_is_converted_to_usd(rules: RuleSet) -> None:
    """Annual invoice of 100,000.00 EUR at 1.08 USD/EUR: 108,000 USD."""
    deal = make_deal([make_line("SUB", SUBSCRIPTION, "100000")], currency="EUR")

    assert credit_exposure_usd(context(deal, good_customer(), rules)) == Decimal(108000)


def test_net_terms_exposure_is_unknown_without_a_usd_rate(rules: RuleSet) -> None:
    deal = clean_deal(currency="SEK")

    assert credit_exposure_usd(context(deal, good_customer(), rules)) is None


def test_order_above_the_category_limit_fails_credit_limit(rules: RuleSet) -> None:
    """Mid-market C-100 (limit 100,000 USD), one annual invoice of 120,000.00 USD on net 30,
    no open receivables: 20,000 over."""
    result = gate("business.credit_limit", clean_deal(), mid_market_customer(), rules)

    assert_failed(
        result,
        Role.VP_FINANCE,
        "Customer C-100 exposure 120,000.00 USD exceeds the Mid-market ($100K-$1M ARR) "
        "credit limit 100,000.00 USD (20,000.00 over)",
    )


def test_open_receivables_count_against_the_credit_limit(rules: RuleSet) -> None:
    """Mid-market C-100 (limit 100,000 USD), billed monthly (10,000.00 USD invoices),
    95,000 USD already open: exposure 105,000, 5,000 over."""
    deal = clean_deal(frequency=BillingFrequency.MONTHLY)
    standing = mid_market_customer(open_receivables_usd=Decimal(95000))

    assert_failed(
        gate("business.credit_limit", deal, standing, rules),
        Role.VP_FINANCE,
        "Customer C-100 exposure 105,000.00 USD exceeds the Mid-market ($100K-$1M ARR) "
        "credit limit 100,000.00 USD (5,000.00 over)",
    )


def test_order_within_the_category_limit_passes_credit_limit(rules: RuleSet) -> None:
    """Mid-market C-100, billed monthly: 10,000 + 90,000 open = exactly the 100,000 limit."""
    deal = clean_deal(frequency=BillingFrequency.MONTHLY)
    standing = mid_market_customer(open_receivables_usd=Decimal(90000))

    assert_passed(gate("business.credit_limit", deal, standing, rules))


def test_upfront_order_passes_credit_limit_whatever_its_size(rules: RuleSet) -> None:
    """Mid-market C-100 (limit 100,000 USD), one 120,000.00 USD invoice paid upfront."""
    deal = clean_deal(payment_terms=PaymentTerms.UPFRONT)

    assert_passed(gate("business.credit_limit", deal, mid_market_customer(), rules))


def test_approved_credit_limit_raises_the_category_default(rules: RuleSet) -> None:
    """Mid-market C-100 (category limit 100,000 USD) with 150,000 USD approved by
    vp_finance: the 120,000.00 USD annual invoice fits."""
    deal = clean_deal(
        customer=make_customer().model_copy(update={"approved_credit_limit": Decimal(150000)})
    )

    assert_passed(gate("business.credit_limit", deal, mid_market_customer(), rules))


def test_approved_credit_limit_lowers_the_category_default(rules: RuleSet) -> None:
    """Enterprise C-100 (category limit 500,000 USD) with only 50,000 USD approved:
    the 120,000.00 USD annual invoice is 70,000 over."""
    deal = clean_deal(
        customer=make_customer().model_copy(update={"approved_credit_limit": Decimal(50000)})
    )

    assert_failed(
        gate("business.credit_limit", deal, good_customer(), rules),
        Role.VP_FINANCE,
        "Customer C-100 exposure 120,000.00 USD exceeds the approved customer credit limit "
        "50,000.00 USD (70,000.00 over)",
    )


def test_approved_credit_limit_is_in_the_deal_currency(rules: RuleSet) -> None:
    """Mid-market C-100 (category limit 100,000 USD), GBP deal with one annual invoice of
    100,000.00 GBP = 127,000 USD at 1.27. The approved limit of 100,000 is read in GBP,
    127,000 USD: the invoice fits exactly, where the category limit would refuse it."""
    customer = make_customer().model_copy(update={"approved_credit_limit": Decimal(100000)})
    deal = make_deal([make_line("SUB", SUBSCRIPTION, "100000")], currency="GBP", customer=customer)

    assert_passed(gate("business.credit_limit", deal, mid_market_customer(), rules))


def test_customer_on_credit_hold_fails_credit_hold(rules: RuleSet) -> None:
    standing = good_customer(on_credit_hold=True)

    assert_failed(
        gate("business.credit_hold", clean_deal(), standing, rules),
        Role.BILLING,
        "Customer C-100 is on credit hold",
    )


def test_customer_not_on_hold_passes_credit_hold(rules: RuleSet) -> None:
    assert_passed(gate("business.credit_hold", clean_deal(), good_customer(), rules))


def test_discount_above_tolerance_fails_discount_tolerance(rules: RuleSet) -> None:
    """SUB: list 100,000.00 at 35% off = 65,000.00; the approved tolerance is 30%."""
    deal = make_deal([discounted_line("SUB", "100000", "35")])

    assert_failed(
        gate("business.discount_tolerance", deal, good_customer(), rules),
        Role.VP_REVOPS,
        "Line SUB (Platform subscription) discount 35% exceeds the approved 30%",
    )


def test_discount_at_tolerance_passes_discount_tolerance(rules: RuleSet) -> None:
    deal = make_deal([discounted_line("SUB", "100000", "30")])

    assert_passed(gate("business.discount_tolerance", deal, good_customer(), rules))


def small_deal(net: str, **overrides: Any) -> DealSubmission:
    """Deal D-1: one subscription line of `net` USD for 2026, net 15."""
    overrides.setdefault("payment_terms", PaymentTerms.NET_15)
    return make_deal([make_line("SUB", SUBSCRIPTION, net)], **overrides)


def test_first_order_above_10k_without_deposit_fails_deposit_required(rules: RuleSet) -> None:
    """First order of C-100, 12,000.00 USD on net 15, no deposit taken."""
    assert_failed(
        gate("business.deposit_required", small_deal("12000"), new_customer(), rules),
        Role.FINANCE,
        "Deal D-1 (New customer (first order)): order 12,000.00 USD above 10,000.00 USD needs a deposit "
        "or upfront terms, deal has net_15",
    )


def test_first_order_deposit_threshold_is_in_usd(rules: RuleSet) -> None:
    """First order of 9,500.00 EUR = 10,260 USD at 1.08: above 10,000 USD."""
    deal = small_deal("9500", currency="EUR")

    assert_failed(
        gate("business.deposit_required", deal, new_customer(), rules),
        Role.FINANCE,
        "Deal D-1 (New customer (first order)): order 10,260.00 USD above 10,000.00 USD needs a deposit "
        "or upfront terms, deal has net_15",
    )


def test_late_payer_needs_a_deposit_on_any_order(rules: RuleSet) -> None:
    """C-100 paid late once; 1,000.00 USD on net 15 without deposit."""
    standing = good_customer(late_payments=1)

    assert_failed(
        gate("business.deposit_required", small_deal("1000"), standing, rules),
        Role.FINANCE,
        "Deal D-1 (Customer with prior late payments): order 1,000.00 USD above 0.00 USD needs a deposit "
        "or upfront terms, deal has net_15",
    )


@pytest.mark.parametrize(
    ("deal", "standing"),
    [
        pytest.param(small_deal("10000"), new_customer(), id="first order of exactly 10K"),
        pytest.param(
            small_deal("12000", deposit_received=True), new_customer(), id="deposit taken"
        ),
        pytest.param(
            small_deal("12000", payment_terms=PaymentTerms.UPFRONT), new_customer(), id="upfront"
        ),
        pytest.param(small_deal("50000"), mid_market_customer(), id="smb: deposit optional"),
        pytest.param(clean_deal(), good_customer(), id="enterprise"),
    ],
)
def test_deposit_required_passes_with_deposit_upfront_or_no_requirement(
    deal: DealSubmission, standing: CustomerStanding, rules: RuleSet
) -> None:
    assert_passed(gate("business.deposit_required", deal, standing, rules))


def test_net_60_fails_nonstandard_terms(rules: RuleSet) -> None:
    """Net 60 is not among the standard terms (net 15/30/45, upfront)."""
    deal = clean_deal(payment_terms=PaymentTerms.NET_60)

    assert_failed(
        gate("business.nonstandard_terms", deal, good_customer(), rules),
        Role.LEGAL,
        "Deal D-1: payment terms net_60 are non-standard and need legal/finance review",
    )


@pytest.mark.parametrize("terms", [t for t in PaymentTerms if t is not PaymentTerms.NET_60])
def test_standard_terms_pass_nonstandard_terms(terms: PaymentTerms, rules: RuleSet) -> None:
    assert_passed(
        gate("business.nonstandard_terms", clean_deal(payment_terms=terms), good_customer(), rules)
    )


def test_license_recognised_ratably_fails_recognition_consistency(rules: RuleSet) -> None:
    """LIC: a license line (100,000.00 USD) set to be recognised ratably."""
    line = make_line("LIC", ProductType.LICENSE, "100000", recognition=RecognitionType.RATABLE)

    assert_failed(
        gate("business.recognition_consistency", make_deal([line]), good_customer(), rules),
        Role.FINANCE,
        "Line LIC: license cannot be recognised ratable",
    )


def test_milestone_billing_without_a_milestone_line_fails_recognition_consistency(
    rules: RuleSet,
) -> None:
    """Billed on milestones, but the only line is a ratable subscription."""
    deal = clean_deal(frequency=BillingFrequency.MILESTONE)

    assert_failed(
        gate("business.recognition_consistency", deal, good_customer(), rules),
        Role.FINANCE,
        "Deal D-1 bills by milestone but no line is recognised by milestone",
    )


def test_tm_billing_without_a_tm_line_fails_recognition_consistency(rules: RuleSet) -> None:
    deal = clean_deal(frequency=BillingFrequency.TIME_AND_MATERIALS)

    assert_failed(
        gate("business.recognition_consistency", deal, good_customer(), rules),
        Role.FINANCE,
        "Deal D-1 bills T&M but no line is recognised as T&M",
    )


def test_license_at_delivery_and_milestone_services_pass_recognition_consistency(
    rules: RuleSet,
) -> None:
    """LIC perpetual license 100,000.00; IMPL services 50,000.00 on milestones M1 + M2."""
    deal = milestone_deal("30000", "20000")
    lic = make_line(
        "LIC", ProductType.LICENSE, "100000", recognition=RecognitionType.PERPETUAL_LICENSE
    )
    deal = deal.model_copy(update={"lines": [lic, *deal.lines]})

    assert_passed(gate("business.recognition_consistency", deal, good_customer(), rules))


# --- anomaly --------------------------------------------------------------------------------


def test_arr_far_from_recurring_tcv_fails_arr_vs_tcv(rules: RuleSet) -> None:
    """ARR entered as 100,000.00 USD on a one-year 120,000.00 USD subscription: 16.7% apart,
    the tolerance is 2%. A warning for finance."""
    deal = clean_deal(annual_recurring_value=Decimal(100000))
    result = gate("anomaly.arr_vs_tcv", deal, good_customer(), rules)

    assert_failed(
        result,
        Role.FINANCE,
        "Deal D-1: ARR 100,000.00 USD x 1.00 years = 100,000.00 USD but recurring TCV is "
        "120,000.00 USD (16.7% apart, tolerance 2%)",
    )
    assert result.severity == "warning"


@pytest.mark.parametrize(
    ("arr", "end"),
    [
        pytest.param("118000", date(2026, 12, 31), id="1.7% apart"),
        pytest.param("60000", date(2027, 12, 31), id="two years of 60,000"),
    ],
)
def test_arr_matching_recurring_tcv_per_year_passes_arr_vs_tcv(
    arr: str, end: date, rules: RuleSet
) -> None:
    deal = clean_deal(annual_recurring_value=Decimal(arr), end=end)

    assert_passed(gate("anomaly.arr_vs_tcv", deal, good_customer(), rules))


def test_deal_far_above_the_customers_history_fails_customer_history(rules: RuleSet) -> None:
    """Largest prior deal 20,000 USD; this one 120,000.00 USD = 6.0x (threshold 5x)."""
    standing = good_customer(largest_prior_tcv_usd=Decimal(20000))
    result = gate("anomaly.customer_history", clean_deal(), standing, rules)

    assert_failed(
        result,
        Role.FINANCE,
        "Deal D-1 TCV 120,000.00 USD is 6.0x the customer's largest prior deal 20,000.00 USD "
        "(threshold 5x)",
    )
    assert result.severity == "warning"


@pytest.mark.parametrize(
    "standing",
    [
        pytest.param(good_customer(largest_prior_tcv_usd=Decimal(24000)), id="exactly 5x"),
        pytest.param(new_customer(), id="no history"),
    ],
)
def test_deal_within_history_or_without_history_passes_customer_history(
    standing: CustomerStanding, rules: RuleSet
) -> None:
    assert_passed(gate("anomaly.customer_history", clean_deal(), standing, rules))


# --- every check, and the runner ------------------------------------------------------------

# One failing scenario per check (those above), for the properties every check shares.
Scenario = Callable[[], tuple[DealSubmission, CustomerStanding]]
FAILING: dict[str, Scenario] = {
    "structural.end_after_start": lambda: (
        clean_deal(start=date(2026, 6, 30), end=date(2026, 6, 30)),
        good_customer(),
    ),
    "structural.currency_known": lambda: (clean_deal(currency="XYZ"), good_customer()),
    "structural.po_present": lambda: (clean_deal(po_required=True), good_customer()),
    "structural.exemption_certificate": lambda: (clean_deal(tax_exempt=True), good_customer()),
    "structural.lines_total_tcv": lambda: (
        clean_deal(total_contract_value=Decimal(125000)),
        good_customer(),
    ),
    "structural.line_prices": lambda: (
        make_deal([discounted_line("SUB", "100000", "10", net="95000")]),
        good_customer(),
    ),
    "structural.milestones_total": lambda: (milestone_deal("20000", "20000"), good_customer()),
    "structural.discount_applies_to": lambda: (example_34("10"), good_customer()),
    "structural.tax_jurisdiction_known": lambda: (
        clean_deal(tax_jurisdiction="KW"),
        good_customer(),
    ),
    "structural.billing_entity_known": lambda: (clean_deal(currency="SEK"), good_customer()),
    "business.payment_terms_policy": lambda: (clean_deal(), new_customer()),
    "business.discount_tolerance": lambda: (
        make_deal([discounted_line("SUB", "100000", "35")]),
        good_customer(),
    ),
    "business.credit_limit": lambda: (clean_deal(), mid_market_customer()),
    "business.credit_hold": lambda: (clean_deal(), good_customer(on_credit_hold=True)),
    "business.deposit_required": lambda: (small_deal("12000"), new_customer()),
    "business.nonstandard_terms": lambda: (
        clean_deal(payment_terms=PaymentTerms.NET_60),
        good_customer(),
    ),
    "business.recognition_consistency": lambda: (
        make_deal(
            [make_line("LIC", ProductType.LICENSE, "100000", recognition=RecognitionType.RATABLE)]
        ),
        good_customer(),
    ),
    "anomaly.arr_vs_tcv": lambda: (
        clean_deal(annual_recurring_value=Decimal(100000)),
        good_customer(),
    ),
    "anomaly.customer_history": lambda: (
        clean_deal(),
        good_customer(largest_prior_tcv_usd=Decimal(20000)),
    ),
}

OWNERS: dict[str, Role] = {
    "structural.end_after_start": Role.SALES_OPS,
    "structural.currency_known": Role.SALES_OPS,
    "structural.po_present": Role.BILLING,
    "structural.exemption_certificate": Role.BILLING,
    "structural.lines_total_tcv": Role.SALES_OPS,
    "structural.line_prices": Role.SALES_OPS,
    "structural.milestones_total": Role.SALES_OPS,
    "structural.discount_applies_to": Role.FINANCE,
    "structural.tax_jurisdiction_known": Role.BILLING,
    "structural.billing_entity_known": Role.BILLING,
    "business.payment_terms_policy": Role.FINANCE,
    "business.discount_tolerance": Role.VP_REVOPS,
    "business.credit_limit": Role.VP_FINANCE,
    "business.credit_hold": Role.BILLING,
    "business.deposit_required": Role.FINANCE,
    "business.nonstandard_terms": Role.LEGAL,
    "business.recognition_consistency": Role.FINANCE,
    "anomaly.arr_vs_tcv": Role.FINANCE,
    "anomaly.customer_history": Role.FINANCE,
}


def test_every_check_has_a_failing_scenario_and_an_owner_here() -> None:
    assert list(FAILING) == CHECK_IDS
    assert list(OWNERS) == CHECK_IDS


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_failing_scenario_fails_its_check_routed_to_the_owner_in_routes_yaml(
    check_id: str, rules: RuleSet
) -> None:
    deal, standing = FAILING[check_id]()
    result = gate(check_id, deal, standing, rules)

    assert not result.passed
    assert result.owner_role is OWNERS[check_id]
    assert rules.routes[check_id].owner_role is OWNERS[check_id]
    assert result.messages
    assert result.evidence


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_failure_message_names_the_deal_its_customer_or_its_line(
    check_id: str, rules: RuleSet
) -> None:
    deal, standing = FAILING[check_id]()
    names = {
        f"Deal {deal.deal_id}",
        f"deal {deal.deal_id}",
        f"Customer {deal.customer.customer_id}",
        *(f"Line {line.line_id}" for line in deal.lines),
    }

    for message in gate(check_id, deal, standing, rules).messages:
        assert any(name in message for name in names), message


@pytest.mark.parametrize(
    "frequency", [BillingFrequency.MILESTONE, BillingFrequency.TIME_AND_MATERIALS]
)
def test_billing_frequency_mismatch_message_names_the_deal(
    frequency: BillingFrequency, rules: RuleSet
) -> None:
    """The clean subscription deal billed on milestones, or T&M."""
    result = gate(
        "business.recognition_consistency", clean_deal(frequency=frequency), good_customer(), rules
    )

    assert not result.passed
    assert all("Deal D-1" in message for message in result.messages), result.messages


def test_clean_deal_passes_every_gate(rules: RuleSet) -> None:
    results = run_gates(clean_deal(), good_customer(), rules)

    assert [r.check_id for r in results if not r.passed] == []
    assert all(r.messages == [] and r.evidence == {} for r in results)


def test_run_gates_returns_one_result_per_check_in_order_with_the_rules_version(
    rules: RuleSet,
) -> None:
    """Even a deal failing several checks gets all 18 results, in QA_GATES order, each
    stamped with the version of the rules that judged it."""
    deal = clean_deal(payment_terms=PaymentTerms.NET_60, po_required=True)
    results = run_gates(deal, good_customer(on_credit_hold=True), rules)

    assert [(r.check_id, r.layer) for r in results] == [(c, layer) for c, layer, _ in QA_GATES]
    assert {r.rules_version for r in results} == {rules.version}
    assert [r.check_id for r in results if not r.passed] == [
        "structural.po_present",
        "business.payment_terms_policy",
        "business.credit_hold",
        "business.nonstandard_terms",
    ]
    severities = {r.check_id: r.severity for r in results}
    assert [c for c, s in severities.items() if s == "warning"] == [
        "anomaly.arr_vs_tcv",
        "anomaly.customer_history",
    ]
    assert {r.layer for r in results if r.severity == "warning"} == {Layer.ANOMALY}
