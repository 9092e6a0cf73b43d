"""The HTTP intake on the real stack: POST /deals, GET /deals/<id>, POST /cases/<id>/resolve.

Deals come from the sample book under fresh ids. The clean one, hs-deal-90401 (Northwind
Logistics GmbH, EUR, a 12-month subscription billed annually and upfront, PO 4500187236), is
invoiced in full at signing by Ledgerline Europe B.V. (series LLEU):

    subtotal 129,800.00 EUR + USt 19% 24,662.00 EUR = 154,462.00 EUR

hs-deal-90424 (Permian Basin Energy Services, USD) requires a PO and has none: its
`structural.po_present` check fails and opens a case owned by billing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from models.deal_flow import DealStage
from models.rules import Role
from starter.api_keys import create_api_key
from starter.intake import content_id
from starter.services import Services
from tests.integration.helpers import (
    book_deal,
    unique_deal_id,
    wait_for_case,
    wait_for_outcome,
    wait_for_state,
    workflow_exists,
    workflow_runs,
)

pytestmark = pytest.mark.integration

CLEAN = "hs-deal-90401"
NO_PO = "hs-deal-90424"


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    assert services.api_url is not None, "the API did not start (port taken?)"
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30) as client:
        yield client


async def api_key(services: Services, role: Role, person: str | None = None) -> dict[str, str]:
    """Headers carrying a new key for a new caller acting as `role` (for `person` of the role
    directory when given: case resolutions act as that person)."""
    name = f"{person or 'it-' + role.value}:{uuid.uuid4().hex[:8]}"
    key = await create_api_key(services.pool, name, role)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def sales_ops(services: Services) -> dict[str, str]:
    return await api_key(services, Role.SALES_OPS)


def as_text(deal: dict[str, Any]) -> str:
    return json.dumps(deal, indent=2)


async def post_deal(api: httpx.AsyncClient, body: str, headers: dict[str, str]) -> httpx.Response:
    return await api.post(
        "/deals", content=body, headers={**headers, "Content-Type": "application/json"}
    )


async def inbox_rows(services: Services, body: str) -> list[dict[str, Any]]:
    rows = await services.pool.fetch(
        """SELECT id, source, status, deal_id, workflow_id, errors, body FROM inbox
           WHERE source = 'api' AND source_id = $1""",
        content_id(body),
    )
    return [dict(row) for row in rows]


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer rvk_this-key-was-never-issued-4f1c9a"},
        {"X-API-Key": "rvk_this-key-was-never-issued-4f1c9a"},
        {"Authorization": "Bearer not-even-our-format"},
    ],
    ids=["no key", "unknown bearer key", "unknown x-api-key", "foreign format"],
)
async def test_a_deal_without_a_valid_key_is_refused_and_nothing_is_stored(
    services: Services, api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    body = as_text(book_deal(CLEAN, deal_id))

    response = await post_deal(api, body, headers)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "a valid API key is required (Authorization: Bearer <key>)"
    }
    assert await inbox_rows(services, body) == []
    assert (
        await services.pool.fetchval("SELECT count(*) FROM inbox WHERE deal_id = $1", deal_id) == 0
    )
    assert not await workflow_exists(services.client, f"deal-{deal_id}")


async def test_a_revoked_key_is_refused(services: Services, api: httpx.AsyncClient) -> None:
    headers = await api_key(services, Role.SALES_OPS)
    key = headers["Authorization"].removeprefix("Bearer ")
    await services.pool.execute(
        "UPDATE api_key SET revoked_at = now() WHERE key_prefix = $1 AND revoked_at IS NULL",
        key[:10],
    )
    body = as_text(book_deal(CLEAN, unique_deal_id()))

    response = await post_deal(api, body, headers)

    assert response.status_code == 401
    assert await inbox_rows(services, body) == []


# --- a valid deal ---------------------------------------------------------------------------


async def test_a_valid_deal_is_stored_started_invoiced_and_completed(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    body = as_text(book_deal(CLEAN, deal_id))

    response = await post_deal(api, body, sales_ops)

    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "started"
    assert answer["workflow_id"] == f"deal-{deal_id}"
    assert answer["deal_id"] == deal_id
    assert answer["message"] == f"started workflow deal-{deal_id}"
    [row] = await inbox_rows(services, body)
    assert (row["id"], row["source"], row["status"]) == (answer["inbox_id"], "api", "started")
    assert (row["deal_id"], row["workflow_id"], row["body"]) == (deal_id, f"deal-{deal_id}", body)

    outcome = await wait_for_outcome(services.client, f"deal-{deal_id}")
    state = await wait_for_state(services.client, f"deal-{deal_id}", lambda s: True)

    assert outcome.stage is DealStage.COMPLETED
    assert state.stage is DealStage.COMPLETED
    assert state.source == "api"
    assert state.open_cases == [] and all(gate.passed for gate in state.gates)
    invoice = state.invoice
    assert invoice is not None
    assert invoice.number.startswith(f"{invoice.entity.invoice_prefix}-")
    assert invoice.number.startswith("LLEU-")
    assert invoice.entity.legal_name == "Ledgerline Europe B.V."
    assert invoice.total == invoice.subtotal + invoice.tax
    assert (str(invoice.subtotal), str(invoice.tax), str(invoice.total)) == (
        "129,800.00 EUR",
        "24,662.00 EUR",
        "154,462.00 EUR",
    )
    assert invoice.po_number == "4500187236"
    assert outcome.invoice_number == invoice.number and outcome.invoice_total == invoice.total
    stored = await services.pool.fetchrow(
        "SELECT number, subtotal, tax, total, po_number FROM invoice WHERE deal_id = $1", deal_id
    )
    assert stored is not None
    assert stored["number"] == invoice.number
    assert stored["subtotal"] + stored["tax"] == stored["total"] == invoice.total.amount


async def test_the_same_deal_again_is_a_duplicate_that_starts_nothing(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    deal = book_deal(CLEAN, deal_id)
    body = as_text(deal)
    first = (await post_deal(api, body, sales_ops)).json()
    assert first["status"] == "started"
    await wait_for_outcome(services.client, f"deal-{deal_id}")
    run_id = (await services.client.get_workflow_handle(f"deal-{deal_id}").describe()).run_id

    again = await post_deal(api, body, sales_ops)

    assert again.status_code == 200
    assert again.json() == {
        "status": "duplicate",
        "inbox_id": first["inbox_id"],
        "message": f"duplicate: workflow deal-{deal_id} already handles this deal",
        "deal_id": deal_id,
        "workflow_id": f"deal-{deal_id}",
    }

    # A corrected resubmission of the same deal id is a new submission, but the same deal.
    corrected = as_text({**deal, "po_number": "4500187299"})
    resubmitted = await post_deal(api, corrected, sales_ops)

    assert resubmitted.status_code == 200
    answer = resubmitted.json()
    assert (answer["status"], answer["workflow_id"]) == ("duplicate", f"deal-{deal_id}")
    assert answer["inbox_id"] != first["inbox_id"]
    [row] = await inbox_rows(services, corrected)
    assert (row["status"], row["deal_id"], row["workflow_id"]) == (
        "duplicate",
        deal_id,
        f"deal-{deal_id}",
    )
    assert (
        await services.client.get_workflow_handle(f"deal-{deal_id}").describe()
    ).run_id == run_id
    assert len(await workflow_runs(services.client, f"deal-{deal_id}")) == 1
    state = await wait_for_state(services.client, f"deal-{deal_id}", lambda s: True)
    assert state.invoice is not None and state.invoice.po_number == "4500187236"
    assert (
        await services.pool.fetchval("SELECT count(*) FROM invoice WHERE deal_id = $1", deal_id)
        == 1
    )


async def test_a_redelivery_leaves_the_first_inbox_row_marked_started(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    body = as_text(book_deal(CLEAN, deal_id))
    assert (await post_deal(api, body, sales_ops)).json()["status"] == "started"

    assert (await post_deal(api, body, sales_ops)).json()["status"] == "duplicate"
    await wait_for_outcome(services.client, f"deal-{deal_id}")

    [row] = await inbox_rows(services, body)
    assert (row["status"], row["workflow_id"]) == ("started", f"deal-{deal_id}")


# --- invalid submissions --------------------------------------------------------------------


async def test_malformed_json_is_refused_naming_line_and_column_and_kept(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    body = f'{{\n  "deal_id": "{deal_id}",\n  "currency": ,\n  "po_required": true\n}}'

    response = await post_deal(api, body, sales_ops)

    assert response.status_code == 422
    answer = response.json()
    assert answer["status"] == "invalid"
    assert answer["errors"] == [
        {"field": "line 3, column 15", "rule": "not valid JSON: Expecting value", "input": ""}
    ]
    assert answer["message"] == "invalid: line 3, column 15: not valid JSON: Expecting value"
    [row] = await inbox_rows(services, body)
    assert (row["id"], row["status"], row["body"]) == (answer["inbox_id"], "invalid", body)
    assert row["errors"] == answer["errors"]
    assert not await workflow_exists(services.client, f"deal-{deal_id}")


async def test_bad_fields_are_each_named_with_their_rule_and_the_body_is_kept(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    deal = book_deal(CLEAN, deal_id)
    deal["lines"][0]["quantity"] = "ten"
    deal["customer"]["billing_contact"]["email"] = "not-an-email"
    del deal["currency"]
    body = as_text(deal)

    response = await post_deal(api, body, sales_ops)

    assert response.status_code == 422
    answer = response.json()
    assert (answer["status"], answer["deal_id"]) == ("invalid", deal_id)
    assert "workflow_id" not in answer
    errors = {error["field"]: error for error in answer["errors"]}
    assert set(errors) == {"lines[0].quantity", "customer.billing_contact.email", "currency"}
    assert errors["lines[0].quantity"]["rule"] == "Input should be a valid decimal"
    assert errors["lines[0].quantity"]["input"] == "'ten'"
    assert errors["customer.billing_contact.email"]["rule"].startswith(
        "value is not a valid email address"
    )
    assert errors["customer.billing_contact.email"]["input"] == "'not-an-email'"
    assert errors["currency"]["rule"] == "Field required"
    for field in errors:
        assert field in answer["message"]
    [row] = await inbox_rows(services, body)
    assert (row["id"], row["status"], row["deal_id"]) == (answer["inbox_id"], "invalid", deal_id)
    assert row["body"] == body
    assert row["errors"] == answer["errors"]
    assert row["workflow_id"] is None
    assert not await workflow_exists(services.client, f"deal-{deal_id}")


# --- status ---------------------------------------------------------------------------------


async def test_the_status_shows_stage_invoice_and_amounts_with_their_currency(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    assert (await post_deal(api, as_text(book_deal(CLEAN, deal_id)), sales_ops)).status_code == 202
    await wait_for_outcome(services.client, f"deal-{deal_id}")

    response = await api.get(f"/deals/{deal_id}", headers=sales_ops)

    assert response.status_code == 200
    view = response.json()
    assert (view["deal_id"], view["stage"], view["source"]) == (deal_id, "completed", "api")
    assert view["customer"] == "Northwind Logistics"
    assert (view["tcv"], view["arr"]) == ("129,800.00 EUR", "129,800.00 EUR")
    assert view["gates"]["failed"] == [] and view["open_cases"] == []
    invoice = view["invoice"]
    assert invoice["number"].startswith("LLEU-")
    assert invoice["entity"] == "Ledgerline Europe B.V."
    assert invoice["po_number"] == "4500187236"
    assert invoice["subtotal"] == "129,800.00 EUR"
    assert invoice["tax"] == "24,662.00 EUR (USt 19%)"
    assert invoice["total"] == "154,462.00 EUR"
    assert view["recognition"]["receivable"] == "154,462.00 EUR"
    assert view["outcome"] == "booked, invoiced and posted"
    [billing] = [p for p in view["postings"] if p["key"] == f"invoice:{invoice['number']}"]
    debits = {line["account"]: line["debit"] for line in billing["lines"]}
    assert debits["1100 Accounts receivable"] == "154462.00"


async def test_the_status_of_an_unknown_deal_is_404(
    api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()

    response = await api.get(f"/deals/{deal_id}", headers=sales_ops)

    assert response.status_code == 404
    assert response.json() == {"detail": f"no workflow deal-{deal_id}"}


async def test_the_status_needs_a_key(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/deals/{unique_deal_id()}")

    assert response.status_code == 401


# --- a failed gate and its case -------------------------------------------------------------


async def test_a_missing_po_waits_on_billing_and_an_amendment_completes_the_deal(
    services: Services, api: httpx.AsyncClient, sales_ops: dict[str, str]
) -> None:
    deal_id = unique_deal_id()
    workflow_id = f"deal-{deal_id}"
    case_id = f"case-deal-{deal_id}-structural.po_present"
    assert (await post_deal(api, as_text(book_deal(NO_PO, deal_id)), sales_ops)).status_code == 202

    waiting = await wait_for_state(
        services.client,
        workflow_id,
        lambda s: s.stage is DealStage.AWAITING_RESOLUTION and bool(s.open_cases),
    )

    [case] = waiting.open_cases
    assert (case.case_id, case.check_id, case.owner_role) == (
        case_id,
        "structural.po_present",
        Role.BILLING,
    )
    assert waiting.invoice is None
    view = (await api.get(f"/deals/{deal_id}", headers=sales_ops)).json()
    assert view["stage"] == "awaiting_resolution"
    assert [c["case_id"] for c in view["open_cases"]] == [case_id]

    # The case takes resolutions once it has read its routing and started its SLA clock.
    await wait_for_case(services.client, case_id, lambda c: c.sla_deadline is not None)
    # The wrong role is refused, and says why; the case stays open.
    refused = await api.post(
        f"/cases/{case_id}/resolve",
        json={"action": "amend", "reason_code": "DATA_CORRECTED", "amendments": {"po_number": "X"}},
        headers=sales_ops,
    )
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith("refused: ")
    assert "is not in the role directory" in detail
    priya = await api_key(services, Role.SALES_OPS, person="priya.raman")
    refused = await api.post(
        f"/cases/{case_id}/resolve",
        json={"action": "amend", "reason_code": "DATA_CORRECTED", "amendments": {"po_number": "X"}},
        headers=priya,
    )
    assert refused.status_code == 409
    assert (
        f"priya.raman (sales_ops) does not hold billing, which owns case {case_id} at level 0"
        in refused.json()["detail"]
    )

    billing = await api_key(services, Role.BILLING, person="maria.santos")
    resolved = await api.post(
        f"/cases/{case_id}/resolve",
        json={
            "action": "amend",
            "reason_code": "DATA_CORRECTED",
            "note": "PO received from the customer's procurement team",
            "amendments": {"po_number": "PB-PO-77120"},
        },
        headers=billing,
    )

    assert resolved.status_code == 200
    case_state = resolved.json()
    assert case_state["status"] == "resolved"
    assert case_state["resolution"]["action"] == "amend"
    assert case_state["resolution"]["actor"] == "maria.santos"
    assert case_state["owner_role"] == "billing"
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.COMPLETED
    state = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert state.invoice is not None
    assert state.invoice.po_number == "PB-PO-77120"
    assert state.invoice.number.startswith("LLUS-")
    assert state.invoice.total == state.invoice.subtotal + state.invoice.tax
    assert [(r.check_id, r.status.value) for r in state.resolutions] == [
        ("structural.po_present", "resolved")
    ]
    assert state.accepted_checks == []  # amended, so the check itself passes now
    assert all(gate.passed for gate in state.gates) and state.gate_runs == 2
    stored = await services.pool.fetchval(
        "SELECT po_number FROM invoice WHERE deal_id = $1", deal_id
    )
    assert stored == "PB-PO-77120"
    case_row = await services.pool.fetchrow(
        "SELECT status, owner_role, resolution FROM exception_case WHERE case_id = $1", case_id
    )
    assert case_row is not None
    assert (case_row["status"], case_row["owner_role"]) == ("resolved", "billing")
    assert case_row["resolution"]["amendments"] == {"po_number": "PB-PO-77120"}


async def test_resolving_an_unknown_case_is_404(services: Services, api: httpx.AsyncClient) -> None:
    billing = await api_key(services, Role.BILLING)
    case_id = f"case-deal-{unique_deal_id()}-structural.po_present"

    response = await api.post(
        f"/cases/{case_id}/resolve",
        json={"action": "approve", "reason_code": "CUSTOMER_CONFIRMED"},
        headers=billing,
    )

    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"no open case {case_id}")
