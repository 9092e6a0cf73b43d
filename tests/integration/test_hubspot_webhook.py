"""The HubSpot door on the real stack: a signed closed-won webhook → the deal workflow reads
the deal from (the fake) HubSpot over HTTP → invoice.

The deal is the sample book's hs-deal-90414 (Straits Harbour Shipping Pte. Ltd., USD, three
years from 2026-12-01, billed annually upfront, taxed in SG), seeded in the fake under fresh
numeric HubSpot ids. Its first invoice, for year one, comes from Ledgerline Inc. (series
LLUS): 119,340.00 USD + GST 9% 10,740.60 USD = 130,080.60 USD.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from models.deal import DealSubmission
from models.deal_flow import DealStage
from starter.hubspot_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_hubspot_v3
from starter.services import Services
from starter.settings import Settings
from tests.fakes.hubspot_server import FakeHubSpotServer, SignedWebhook, signed_closed_won_webhook
from tests.integration.helpers import (
    book_deal,
    unique_numeric_id,
    wait_for_outcome,
    wait_for_state,
    workflow_exists,
    workflow_runs,
)

pytestmark = pytest.mark.integration

BOOK_DEAL = "hs-deal-90414"
SIX_MINUTES_MS = 6 * 60 * 1000


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    assert services.api_url is not None, "the API did not start (port taken?)"
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def secret(stack_settings: Settings) -> str:
    assert stack_settings.hubspot_client_secret is not None
    return stack_settings.hubspot_client_secret.get_secret_value()


def seed_deal(hubspot: FakeHubSpotServer) -> tuple[str, DealSubmission]:
    """A book deal in the fake HubSpot under fresh numeric deal and company ids."""
    deal = DealSubmission.model_validate(
        book_deal(BOOK_DEAL, unique_numeric_id(), customer_id=unique_numeric_id())
    )
    return hubspot.add_deal(deal), deal


def webhook(
    services: Services, secret: str, deal_id: str, event_id: int, timestamp_ms: int | None = None
) -> SignedWebhook:
    """HubSpot's signed closed-won batch for `deal_id`, under its own event id.

    The URI is the one the API rebuilds from the request it receives.
    """
    when = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    uri = f"{services.api_url}/webhooks/hubspot"
    sent = signed_closed_won_webhook(secret=secret, uri=uri, deal_ids=[deal_id], timestamp_ms=when)
    events: list[dict[str, Any]] = json.loads(sent.body)
    events[0]["eventId"] = event_id
    body = json.dumps(events, separators=(",", ":")).encode()
    signature = sign_hubspot_v3(secret, "POST", uri, body, when)
    return SignedWebhook(uri=uri, headers={**sent.headers, SIGNATURE_HEADER: signature}, body=body)


def new_event_id() -> int:
    return 4_000_000_000 + uuid.uuid4().int % 10**12


async def deliver(api: httpx.AsyncClient, request: SignedWebhook) -> httpx.Response:
    return await api.post("/webhooks/hubspot", content=request.body, headers=request.headers)


async def inbox_rows(services: Services, event_id: int) -> list[dict[str, Any]]:
    rows = await services.pool.fetch(
        """SELECT id, status, deal_id, workflow_id, body FROM inbox
           WHERE source = 'hubspot' AND source_id = $1""",
        str(event_id),
    )
    return [dict(row) for row in rows]


def deal_reads(hubspot: FakeHubSpotServer, deal_id: str) -> int:
    return hubspot.requests.count(f"GET /crm/v3/objects/deals/{deal_id}")


async def assert_nothing_started(services: Services, deal_id: str, event_id: int) -> None:
    assert await inbox_rows(services, event_id) == []
    assert (
        await services.pool.fetchval("SELECT count(*) FROM inbox WHERE deal_id = $1", deal_id) == 0
    )
    assert not await workflow_exists(services.client, f"deal-{deal_id}")


async def test_a_signed_closed_won_webhook_reads_the_deal_from_hubspot_and_invoices_it(
    services: Services,
    api: httpx.AsyncClient,
    hubspot_server: FakeHubSpotServer,
    secret: str,
) -> None:
    deal_id, seeded = seed_deal(hubspot_server)
    event_id = new_event_id()

    request = webhook(services, secret, deal_id, event_id)
    response = await deliver(api, request)

    assert response.status_code == 200
    answer = response.json()
    assert answer["received"] == 1
    [started] = answer["deals"]
    assert (started["status"], started["deal_id"], started["workflow_id"]) == (
        "started",
        deal_id,
        f"deal-{deal_id}",
    )
    [row] = await inbox_rows(services, event_id)
    assert (row["id"], row["status"], row["deal_id"], row["workflow_id"]) == (
        started["inbox_id"],
        "started",
        deal_id,
        f"deal-{deal_id}",
    )
    # The authenticated request body itself is kept too, byte for byte, before parsing.
    sent = request.body.decode()
    batch = await services.pool.fetchrow(
        "SELECT status, body FROM inbox WHERE source = 'hubspot-webhook' AND body = $1", sent
    )
    assert batch is not None and batch["status"] == "parsed"
    assert json.loads(row["body"])["objectId"] == int(deal_id)

    outcome = await wait_for_outcome(services.client, f"deal-{deal_id}")
    state = await wait_for_state(services.client, f"deal-{deal_id}", lambda s: True)

    assert outcome.stage is DealStage.COMPLETED
    assert state.source == "hubspot"
    assert state.deal == seeded  # read back over HTTP, mapped to the same deal
    assert deal_reads(hubspot_server, deal_id) == 1
    assert f"GET /crm/v3/objects/companies/{seeded.customer.customer_id}" in hubspot_server.requests
    invoice = state.invoice
    assert invoice is not None
    assert invoice.number.startswith("LLUS-")
    assert invoice.total == invoice.subtotal + invoice.tax
    assert (str(invoice.subtotal), str(invoice.tax), str(invoice.total)) == (
        "119,340.00 USD",
        "10,740.60 USD",
        "130,080.60 USD",
    )
    assert (
        await services.pool.fetchval("SELECT total FROM invoice WHERE deal_id = $1", deal_id)
        == invoice.total.amount
    )


async def test_the_same_event_again_starts_nothing_new(
    services: Services,
    api: httpx.AsyncClient,
    hubspot_server: FakeHubSpotServer,
    secret: str,
) -> None:
    deal_id, _ = seed_deal(hubspot_server)
    event_id = new_event_id()
    first = (await deliver(api, webhook(services, secret, deal_id, event_id))).json()
    await wait_for_outcome(services.client, f"deal-{deal_id}")
    run_id = (await services.client.get_workflow_handle(f"deal-{deal_id}").describe()).run_id

    # HubSpot retries a delivery with the same eventId (a later, freshly signed request).
    again = await deliver(api, webhook(services, secret, deal_id, event_id))

    assert again.status_code == 200
    [duplicate] = again.json()["deals"]
    assert (duplicate["status"], duplicate["workflow_id"]) == ("duplicate", f"deal-{deal_id}")
    assert duplicate["inbox_id"] == first["deals"][0]["inbox_id"]
    assert len(await inbox_rows(services, event_id)) == 1
    assert (
        await services.client.get_workflow_handle(f"deal-{deal_id}").describe()
    ).run_id == run_id
    assert len(await workflow_runs(services.client, f"deal-{deal_id}")) == 1
    assert deal_reads(hubspot_server, deal_id) == 1
    assert (
        await services.pool.fetchval("SELECT count(*) FROM invoice WHERE deal_id = $1", deal_id)
        == 1
    )


def _other_secret(request: SignedWebhook, secret: str) -> SignedWebhook:
    del secret
    stamp = int(request.headers[TIMESTAMP_HEADER])
    forged = sign_hubspot_v3("not-the-app-secret-91c2", "POST", request.uri, request.body, stamp)
    return SignedWebhook(request.uri, {**request.headers, SIGNATURE_HEADER: forged}, request.body)


def _tampered_body(request: SignedWebhook, secret: str) -> SignedWebhook:
    del secret
    body = request.body.replace(b'"attemptNumber":0', b'"attemptNumber":1')
    assert body != request.body
    return SignedWebhook(request.uri, request.headers, body)


def _other_uri(request: SignedWebhook, secret: str) -> SignedWebhook:
    stamp = int(request.headers[TIMESTAMP_HEADER])
    uri = "https://revops.example.com/webhooks/hubspot"
    signature = sign_hubspot_v3(secret, "POST", uri, request.body, stamp)
    return SignedWebhook(
        request.uri, {**request.headers, SIGNATURE_HEADER: signature}, request.body
    )


@pytest.mark.parametrize(
    "spoil", [_other_secret, _tampered_body, _other_uri], ids=["secret", "body", "uri"]
)
async def test_a_bad_signature_is_refused_and_nothing_is_stored_or_started(
    services: Services,
    api: httpx.AsyncClient,
    hubspot_server: FakeHubSpotServer,
    secret: str,
    spoil: Any,
) -> None:
    deal_id, _ = seed_deal(hubspot_server)
    event_id = new_event_id()
    request: SignedWebhook = spoil(webhook(services, secret, deal_id, event_id), secret)

    response = await deliver(api, request)

    assert response.status_code == 401
    assert response.json() == {"detail": "webhook refused: signature does not match"}
    await assert_nothing_started(services, deal_id, event_id)
    assert deal_reads(hubspot_server, deal_id) == 0


async def test_missing_signature_headers_are_refused(
    services: Services, api: httpx.AsyncClient, hubspot_server: FakeHubSpotServer, secret: str
) -> None:
    deal_id, _ = seed_deal(hubspot_server)
    event_id = new_event_id()
    request = webhook(services, secret, deal_id, event_id)
    headers = {k: v for k, v in request.headers.items() if k != SIGNATURE_HEADER}

    response = await api.post("/webhooks/hubspot", content=request.body, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": f"webhook refused: missing {SIGNATURE_HEADER} header"}
    await assert_nothing_started(services, deal_id, event_id)


@pytest.mark.parametrize(
    ("shift_ms", "reason"),
    [
        (-SIX_MINUTES_MS, "timestamp older than 5 minutes"),
        (SIX_MINUTES_MS, "timestamp more than 5 minutes in the future"),
    ],
    ids=["stale", "future"],
)
async def test_a_timestamp_outside_five_minutes_is_refused(
    services: Services,
    api: httpx.AsyncClient,
    hubspot_server: FakeHubSpotServer,
    secret: str,
    shift_ms: int,
    reason: str,
) -> None:
    deal_id, _ = seed_deal(hubspot_server)
    event_id = new_event_id()
    when = int(time.time() * 1000) + shift_ms
    request = webhook(services, secret, deal_id, event_id, timestamp_ms=when)  # validly signed

    response = await deliver(api, request)

    assert response.status_code == 401
    assert response.json() == {"detail": f"webhook refused: {reason}"}
    await assert_nothing_started(services, deal_id, event_id)


async def test_an_event_for_another_stage_starts_nothing(
    services: Services, api: httpx.AsyncClient, hubspot_server: FakeHubSpotServer, secret: str
) -> None:
    deal_id, _ = seed_deal(hubspot_server)
    uri = f"{services.api_url}/webhooks/hubspot"
    request = signed_closed_won_webhook(
        secret=secret,
        uri=uri,
        deal_ids=[deal_id],
        timestamp_ms=int(time.time() * 1000),
        stage="contractsent",
    )

    response = await deliver(api, request)

    assert response.status_code == 200
    assert response.json() == {"received": 1, "deals": []}
    assert not await workflow_exists(services.client, f"deal-{deal_id}")


@pytest.mark.parametrize("status", [503, 429])
async def test_transient_hubspot_failures_are_retried_and_the_deal_completes(
    services: Services,
    api: httpx.AsyncClient,
    hubspot_server: FakeHubSpotServer,
    secret: str,
    status: int,
) -> None:
    deal_id, seeded = seed_deal(hubspot_server)
    hubspot_server.fail_next(2, status=status)

    response = await deliver(api, webhook(services, secret, deal_id, new_event_id()))

    assert response.status_code == 200
    assert response.json()["deals"][0]["status"] == "started"
    outcome = await wait_for_outcome(services.client, f"deal-{deal_id}")
    state = await wait_for_state(services.client, f"deal-{deal_id}", lambda s: True)
    assert outcome.stage is DealStage.COMPLETED
    assert state.deal == seeded
    assert state.invoice is not None and str(state.invoice.total) == "130,080.60 USD"
    # two refused attempts, then one that read the deal through
    assert deal_reads(hubspot_server, deal_id) == 3
