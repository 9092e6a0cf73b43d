"""The contract workflow on the real stack: a deal's contract takes over after the first
invoice; a milestone accepted through the API is invoiced, e-mailed and recognised at once;
usage crossing its threshold is invoiced early; refused changes say which field and why."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from models.rules import Role
from starter.services import Services
from tests.integration.helpers import book_deal, unique_deal_id, wait_for_outcome
from tests.integration.test_api_intake import api_key

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    assert services.api_url is not None
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30) as client:
        yield client


async def submit(api: httpx.AsyncClient, headers: dict[str, str], deal: dict[str, Any]) -> None:
    response = await api.post("/deals", content=json.dumps(deal),
                              headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 202, response.text


async def until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def test_a_milestone_accepted_through_the_api_is_invoiced_mailed_and_earned(
    services: Services, api: httpx.AsyncClient
) -> None:
    deal_id = unique_deal_id()
    deal = book_deal("hs-deal-90418", deal_id)  # 108,000 GBP of services on four milestones
    await submit(api, await api_key(services, Role.SALES_OPS), deal)
    outcome = await wait_for_outcome(services.client, f"deal-{deal_id}")
    assert outcome.stage.value == "completed"

    today = datetime.now(UTC).date().isoformat()
    headers = await api_key(services, Role.ASSIGNED_AE, "jonas.becker")
    body = {"milestone_id": "90418-M1", "delivered_on": today, "accepted_on": today,
            "accepted_by": "Helen Marsh, Head of Finance Systems", "evidence": "ACC-2026-118"}  # fmt: skip

    async def delivered() -> httpx.Response | None:
        r = await api.post(f"/contracts/{deal_id}/milestones", json=body, headers=headers)
        return r if r.status_code != 404 else None  # the contract workflow is starting

    response = await until(delivered)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["recognised"] == {"amount": "21600.00", "currency": "GBP"}
    number = result["invoice_number"]

    pool = services.pool
    row = await pool.fetchrow("SELECT subtotal, idempotency_key, po_number FROM invoice "
                              "WHERE number = $1", number)  # fmt: skip
    assert row is not None
    assert row["subtotal"] == Decimal("21600.0000")
    assert row["idempotency_key"] == f"contract:{deal_id}:milestone:90418-M1"
    assert row["po_number"] == "AMA/PO/558812"
    accepted = await pool.fetchrow("SELECT accepted_by, evidence FROM milestone_delivery "
                                   "WHERE deal_id = $1", deal_id)  # fmt: skip
    assert accepted is not None
    assert accepted["evidence"] == {"evidence": "ACC-2026-118", "recorded_by": "jonas.becker"}
    revenue = await pool.fetchval(
        """SELECT sum(l.credit - l.debit) FROM journal_line l JOIN journal_entry e
           ON e.id = l.entry_id WHERE e.deal_id = $1 AND l.account = '4000 Revenue'""", deal_id)  # fmt: skip
    assert revenue == Decimal("21600.0000")
    sent = await until(lambda: pool.fetchval(
        "SELECT status FROM notification WHERE idempotency_key = $1",
        f"invoice:{number}:dispatch"))  # fmt: skip
    assert sent == "sent"

    again = await api.post(f"/contracts/{deal_id}/milestones", json=body, headers=headers)
    assert again.status_code == 409
    assert "milestone_id: 90418-M1 was already accepted" in again.json()["detail"]

    bad = await api.post(f"/contracts/{deal_id}/amendments", headers=headers, json={
        "amendment_id": "A-1", "kind": "seat_change", "effective_date": today,
        "reason": "more seats", "line_id": "L1", "new_quantity": "3"})  # fmt: skip
    assert bad.status_code == 409
    assert "line_id: L1 is not a recurring line" in bad.json()["detail"]

    resend = f"/contracts/{deal_id}/invoices/{number}/resend"
    not_bounced = await api.post(resend, headers=headers, json={
        "email": "ap@example.com", "reason": "new AP mailbox"})  # fmt: skip
    assert not_bounced.status_code == 409
    assert f"invoice_number: {number} is not an undelivered invoice" in not_bounced.json()["detail"]
    malformed = await api.post(resend, headers=headers, json={"email": "not-an-address"})
    assert malformed.status_code == 422
    assert {p["field"] for p in malformed.json()["detail"]} == {"email", "reason"}


async def test_usage_past_its_threshold_is_invoiced_early_and_recognised(
    services: Services, api: httpx.AsyncClient
) -> None:
    deal_id = unique_deal_id()
    deal = book_deal("hs-deal-90423", deal_id)  # API usage at 0.36 GBP per call
    deal["usage_invoice_threshold"] = "300.00"
    await submit(api, await api_key(services, Role.SALES_OPS), deal)
    await wait_for_outcome(services.client, f"deal-{deal_id}")
    headers = await api_key(services, Role.SALES_OPS)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()

    async def contract_running() -> bool:
        r = await api.get(f"/contracts/{deal_id}", headers=headers)
        return r.status_code == 200

    await until(contract_running)
    records = [{"record_id": f"r{i}", "contract_id": deal_id, "metric": "api_calls",
                "quantity": "100", "occurred_at": now} for i in range(10)]  # fmt: skip
    stored = await api.post("/usage", json={"records": records}, headers=headers)
    assert stored.status_code == 202, stored.text

    pool = services.pool
    number = await until(lambda: pool.fetchval(
        "SELECT number FROM invoice WHERE idempotency_key = $1",
        f"contract:{deal_id}:usage-early:1"))  # fmt: skip
    invoice = await pool.fetchrow("SELECT subtotal, document FROM invoice WHERE number = $1",
                                  number)  # fmt: skip
    assert invoice is not None
    assert invoice["subtotal"] == Decimal("360.0000")  # 1,000 calls × 0.36
    assert "1000 api_calls" in invoice["document"]["lines"][0]["description"]
    billed = await pool.fetch("SELECT DISTINCT invoice_number FROM usage_record "
                              "WHERE contract_id = $1", deal_id)  # fmt: skip
    assert [r["invoice_number"] for r in billed] == [number]
    revenue = await pool.fetchval(
        """SELECT sum(l.credit - l.debit) FROM journal_line l JOIN journal_entry e
           ON e.id = l.entry_id WHERE e.deal_id = $1 AND l.account = '4000 Revenue'""", deal_id)  # fmt: skip
    assert revenue == Decimal("360.0000")
