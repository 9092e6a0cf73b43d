"""HubSpotCrm against the fake HubSpot CRM API over real HTTP, and the pure HubSpot mapping.

The sample deal: Nordlicht Logistik GmbH (Hamburg) buys, in EUR, for 2025-02-01..2026-01-31,
billed quarterly, net 30, PO required:

    platform   25 seats x 1,200.00 list, 15% off → 1,020.00 net   = 25,500.00  (subscription)
    onboarding  1 x 9,500.00                                      =  9,500.00  (services, milestones
                                                                     5,700.00 + 3,800.00)
    TCV 35,000.00 EUR, ARR 25,500.00 EUR

In HubSpot the platform line is a quarterly recurring line item: 300.00 per seat per quarter,
255.00 net (P12M → 4 periods), which the mapping turns back into whole-term prices.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from activities.crm import (
    HubSpotAuthError,
    HubSpotCrm,
    HubSpotMappingError,
    HubSpotNotFoundError,
    HubSpotPermanentError,
    HubSpotTransientError,
    deal_submission_from_hubspot,
    hubspot_client,
    to_submission,
)
from models.deal import DealSubmission
from starter.hubspot_signature import closed_won_deal_ids, parse_hubspot_events, verify_hubspot_v3
from tests.fakes.hubspot_server import FakeHubSpotServer, signed_closed_won_webhook

TOKEN = "pat-eu1-5b2f9c1e-8d47-4a36-a1f0-3c9e7d2b6a58"
SAMPLE = DealSubmission.model_validate(
    {
        "deal_id": "18934567012",
        "customer": {
            "customer_id": "9876543210",
            "name": "Nordlicht Logistik",
            "legal_entity": "Nordlicht Logistik GmbH",
            "billing_contact": {
                "name": "Katrin Vogel",
                "email": "katrin.vogel@nordlicht-logistik.de",
                "phone": "+49 40 3012 4455",
            },
            "billing_address": {
                "line1": "Am Sandtorkai 41",
                "line2": "3. OG",
                "city": "Hamburg",
                "region": "Hamburg",
                "postal_code": "20457",
                "country": "DE",
            },
            "tax_registration_number": "DE284719365",
            "payment_method": "wire",
        },
        "currency": "EUR",
        "total_contract_value": "35000.00",
        "annual_recurring_value": "25500.00",
        "start_date": "2025-02-01",
        "end_date": "2026-01-31",
        "billing_frequency": "quarterly",
        "payment_terms": "net_30",
        "po_required": True,
        "po_number": "PO-2025-00417",
        "tax_jurisdiction": "DE",
        "recognition_type": "ratable",
        "milestones": [
            {
                "milestone_id": "ms-kickoff",
                "line_id": "onboarding",
                "description": "Kick-off and data migration plan accepted",
                "due_date": "2025-03-14",
                "amount": "5700.00",
            },
            {
                "milestone_id": "ms-golive",
                "line_id": "onboarding",
                "description": "Go-live of the Hamburg and Bremen warehouses",
                "due_date": "2025-05-30",
                "amount": "3800.00",
            },
        ],
        "assigned_ae": "52048215",
        "commission_plan_id": "AE-EMEA-2025",
        "lines": [
            {
                "line_id": "platform",
                "product": "Nordwind TMS Platform (per seat)",
                "product_type": "subscription",
                "quantity": "25",
                "list_price": "1200.00",
                "net_price": "1020.00",
                "standalone_selling_price": "1100.00",
                "discount_percent": "15",
                "discount_expiry": "2026-01-31",
            },
            {
                "line_id": "onboarding",
                "product": "Onboarding and data migration",
                "product_type": "services",
                "quantity": "1",
                "list_price": "9500.00",
                "net_price": "9500.00",
                "standalone_selling_price": "9500.00",
                "recognition": "milestone",
            },
        ],
        "billing_entity": "nordwind-eu-bv",
        "closed_won_date": "2025-01-24",
    }
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeHubSpotServer]:
    with FakeHubSpotServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def hubspot(server: FakeHubSpotServer) -> FakeHubSpotServer:
    server.reset()
    return server


@pytest.fixture
async def crm(hubspot: FakeHubSpotServer) -> AsyncIterator[HubSpotCrm]:
    async with hubspot_client(hubspot.base_url, TOKEN, timeout=5) as client:
        yield HubSpotCrm(client)


async def test_a_seeded_deal_reads_back_as_the_same_submission(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    deal_id = hubspot.add_deal(SAMPLE)

    bundle = await crm.read_deal(deal_id)

    assert DealSubmission.model_validate(to_submission(bundle)) == SAMPLE
    assert bundle.deal_stage == "closedwon"
    contact_id = (bundle.contact or {}).get("id")
    platform = bundle.line_items[0]["properties"]
    assert (platform["recurringbillingfrequency"], platform["price"]) == ("quarterly", "300.00")
    assert hubspot.requests == [
        "GET /crm/v3/objects/deals/18934567012",
        "GET /crm/v3/objects/companies/9876543210",
        f"GET /crm/v3/objects/contacts/{contact_id}",
        "POST /crm/v3/objects/line_items/batch/read",
    ]


async def test_a_signed_closed_won_webhook_leads_to_the_deal(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    hubspot.add_deal(SAMPLE)
    secret, now_ms = "7c1e9a52-4b7d-4f0e-9a33-2d5f8e6b1c04", 1_737_711_000_000
    uri = "https://revops.example.com/webhooks/hubspot"
    request = signed_closed_won_webhook(
        secret=secret, uri=uri, deal_ids=["18934567012"], timestamp_ms=now_ms
    )

    verify_hubspot_v3(
        secrets=[secret],
        method="POST",
        uri=request.uri,
        body=request.body,
        timestamp_header=request.headers["X-HubSpot-Request-Timestamp"],
        signature_header=request.headers["X-HubSpot-Signature-v3"],
        now_ms=now_ms + 2_000,
    )
    [deal_id] = closed_won_deal_ids(parse_hubspot_events(request.body))
    submission = DealSubmission.model_validate(to_submission(await crm.read_deal(deal_id)))

    assert submission.tcv().format() == "35,000.00 EUR"
    assert submission.lines_total() == submission.tcv()


async def test_the_primary_company_and_the_named_billing_contact_are_chosen(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    deal_id = hubspot.add_deal(SAMPLE)
    reseller = hubspot.add_record("companies", {"name": "Hanse IT Partner", "country": "DE"})
    finance = hubspot.add_record(
        "contacts", {"firstname": "Jens", "lastname": "Brandt", "email": "ap@nordlicht-logistik.de"}
    )
    deal = hubspot.records["deals"][deal_id]
    deal["associations"]["companies"]["results"].insert(
        0, {"id": reseller, "type": "deal_to_company_unlabeled"}
    )
    hubspot.associate(deal_id, "contacts", [finance], "deal_to_contact")
    deal["properties"]["revops_billing_contact_id"] = finance

    submission = DealSubmission.model_validate(to_submission(await crm.read_deal(deal_id)))

    assert submission.customer.legal_entity == "Nordlicht Logistik GmbH"
    assert submission.customer.billing_contact.name == "Jens Brandt"


async def test_an_unknown_deal_is_a_permanent_not_found_error(crm: HubSpotCrm) -> None:
    with pytest.raises(HubSpotNotFoundError, match="404 OBJECT_NOT_FOUND") as caught:
        await crm.read_deal("18934560000")

    assert isinstance(caught.value, HubSpotPermanentError)
    assert "correlationId" in str(caught.value)


async def test_a_503_is_transient_and_the_next_attempt_succeeds(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    deal_id = hubspot.add_deal(SAMPLE)
    hubspot.fail_next(1, status=503)

    with pytest.raises(HubSpotTransientError, match="503"):
        await crm.read_deal(deal_id)
    bundle = await crm.read_deal(deal_id)

    assert DealSubmission.model_validate(to_submission(bundle)) == SAMPLE


async def test_a_rate_limit_is_transient_with_its_retry_after(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    deal_id = hubspot.add_deal(SAMPLE)
    hubspot.fail_next(1, status=429)

    with pytest.raises(HubSpotTransientError, match="429 RATE_LIMITS") as caught:
        await crm.read_deal(deal_id)

    assert caught.value.retry_after == 1.0


async def test_a_wrong_token_is_a_permanent_auth_error(hubspot: FakeHubSpotServer) -> None:
    deal_id = hubspot.add_deal(SAMPLE)

    async with hubspot_client(hubspot.base_url, "pat-eu1-revoked") as client:
        with pytest.raises(HubSpotAuthError, match="401 INVALID_AUTHENTICATION"):
            await HubSpotCrm(client).read_deal(deal_id)


async def test_an_unreachable_hubspot_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    async with hubspot_client(f"http://127.0.0.1:{closed_port}", TOKEN, timeout=2) as client:
        with pytest.raises(HubSpotTransientError, match="ConnectError"):
            await HubSpotCrm(client).read_deal("18934567012")


async def test_a_deleted_line_item_is_a_permanent_error(
    hubspot: FakeHubSpotServer, crm: HubSpotCrm
) -> None:
    deal_id = hubspot.add_deal(SAMPLE)
    deleted = next(iter(hubspot.records["line_items"]))
    del hubspot.records["line_items"][deleted]

    with pytest.raises(HubSpotNotFoundError, match=f"line items not found: {deleted}"):
        await crm.read_deal(deal_id)


async def test_the_fake_server_really_stops() -> None:
    with FakeHubSpotServer(token=TOKEN) as stopped:
        base_url = stopped.base_url

    async with hubspot_client(base_url, TOKEN, timeout=2) as client:
        with pytest.raises(HubSpotTransientError, match="ConnectError"):
            await HubSpotCrm(client).read_deal("18934567012")


# --- the pure mapping, on hand-written HubSpot records -------------------------------------


def record(record_id: str, **properties: str | None) -> dict[str, Any]:
    return {"id": record_id, "properties": properties, "archived": False}


DEAL = record(
    "501",
    amount="26730.00",
    deal_currency_code="EUR",
    closedate="2025-03-31T22:30:00.000Z",
    hubspot_owner_id="52048215",
    revops_arr="26730.00",
    revops_start_date="2025-04-01",
    revops_end_date="2026-03-31",
    revops_billing_frequency="monthly",
    revops_payment_terms="net_30",
    revops_po_required="false",
    revops_tax_jurisdiction="de",
    revops_recognition_type="ratable",
    revops_commission_plan_id="AE-EMEA-2025",
    revops_milestones=None,
)
COMPANY = record(
    "9876543210",
    name="Nordlicht Logistik",
    address="Am Sandtorkai 41",
    city="Hamburg",
    zip="20457",
    country="de",
    revops_legal_entity="Nordlicht Logistik GmbH",
)
CONTACT = record("7301", firstname="Katrin", lastname="Vogel", email="ap@nordlicht-logistik.de")
MONTHLY_SEATS = record(
    "31000000777",
    name="Nordwind TMS Platform (per seat)",
    quantity="25",
    price="99.00",
    hs_discount_percentage="10",
    amount="2227.50",
    recurringbillingfrequency="monthly",
    hs_recurring_billing_period="P12M",
    revops_product_type="subscription",
    revops_ssp="1100.00",
)


def test_a_monthly_recurring_line_becomes_whole_term_unit_prices() -> None:
    """25 seats at 99.00/month, 10% off: 2,227.50 a month → 1,069.20 per seat for 12 months."""
    raw = deal_submission_from_hubspot(DEAL, COMPANY, CONTACT, [MONTHLY_SEATS])
    deal = DealSubmission.model_validate(raw)

    [line] = deal.lines
    assert (line.line_id, line.list_price, line.net_price) == (
        "31000000777",
        Decimal("1188.00"),
        Decimal("1069.20"),
    )
    assert deal.lines_total().format() == "26,730.00 EUR"
    assert (deal.closed_won_date, deal.tax_jurisdiction) == (date(2025, 3, 31), "DE")
    assert deal.customer.billing_address.country == "DE"


def test_a_list_price_property_overrides_the_unit_price() -> None:
    seats = record("31000000778", **MONTHLY_SEATS["properties"], revops_list_price="1250.00")

    raw = deal_submission_from_hubspot(DEAL, COMPANY, CONTACT, [seats])

    assert DealSubmission.model_validate(raw).lines[0].list_price == Decimal("1250.00")


def test_lines_follow_their_position_on_the_quote() -> None:
    second = record("2", **MONTHLY_SEATS["properties"], hs_position_on_quote="1")
    first = record("1", **MONTHLY_SEATS["properties"], hs_position_on_quote="0")

    raw = deal_submission_from_hubspot(DEAL, COMPANY, CONTACT, [second, first])

    assert [line.line_id for line in DealSubmission.model_validate(raw).lines] == ["1", "2"]


@pytest.mark.parametrize(
    ("deal", "line", "message"),
    [
        (
            record("501", **DEAL["properties"] | {"revops_po_required": "yes"}),
            MONTHLY_SEATS,
            "deal 501 property revops_po_required: expected true or false, got 'yes'",
        ),
        (
            record("501", **DEAL["properties"] | {"revops_milestones": "[{'amount': 5}]"}),
            MONTHLY_SEATS,
            "deal 501 property revops_milestones: expected a JSON array",
        ),
        (
            DEAL,
            record("9", **MONTHLY_SEATS["properties"] | {"recurringbillingfrequency": "weekly"}),
            "line item 9 property recurringbillingfrequency: expected a monthly-based",
        ),
        (
            DEAL,
            record(
                "9",
                **MONTHLY_SEATS["properties"]
                | {"recurringbillingfrequency": "quarterly", "hs_recurring_billing_period": "P10M"},
            ),
            "line item 9 property hs_recurring_billing_period: expected whole quarterly periods",
        ),
    ],
)
def test_unmappable_values_name_the_record_and_property(
    deal: dict[str, Any], line: dict[str, Any], message: str
) -> None:
    with pytest.raises(HubSpotMappingError, match=message):
        deal_submission_from_hubspot(deal, COMPANY, CONTACT, [line])


def test_a_missing_custom_property_is_named_by_validation() -> None:
    company = record("9876543210", **COMPANY["properties"] | {"revops_legal_entity": ""})

    with pytest.raises(ValidationError) as caught:
        DealSubmission.model_validate(
            deal_submission_from_hubspot(DEAL, company, CONTACT, [MONTHLY_SEATS])
        )

    assert [error["loc"] for error in caught.value.errors()] == [("customer", "legal_entity")]
