"""A small, stateful fake of the HubSpot CRM v3 API, served over real HTTP for tests.

    with FakeHubSpotServer(token="pat-eu1-test") as hubspot:
        deal_id = hubspot.add_deal(submission)          # seeded from a DealSubmission
        hubspot.fail_next(2)                            # the next two calls answer 503
        client = hubspot_client(hubspot.base_url, "pat-eu1-test")

It serves `GET /crm/v3/objects/{type}/{id}` (deals, companies, contacts, line_items; with
`properties` and `associations`) and `POST /crm/v3/objects/line_items/batch/read`, requires
the bearer token, and answers HubSpot's error JSON. `add_deal` is the reverse of
`activities.crm.to_submission`, so a test can seed the fake from a sample deal.
`signed_closed_won_webhook` builds the request HubSpot sends when a deal becomes closed-won.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.deal import DealSubmission
from starter.hubspot_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_hubspot_v3

JsonObject = dict[str, Any]
_OBJECT_TYPES = ("deals", "companies", "contacts", "line_items")
_TIMESTAMP = "2025-01-24T09:30:00.000Z"
_RECURRING = {"monthly": 1, "quarterly": 3, "annually": 12}  # our frequency → months
_RECURRING_TYPES = {"subscription", "support"}


class FakeHubSpotServer:
    """HubSpot's CRM API in memory, on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, token: str = "pat-na1-fake-token") -> None:
        self.token = token
        self.records: dict[str, dict[str, JsonObject]] = {kind: {} for kind in _OBJECT_TYPES}
        self.requests: list[str] = []  # "GET /crm/v3/objects/deals/1", in order
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(31_000_000_001)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FakeHubSpotServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sock = self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, args=([sock],), daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("fake HubSpot server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError("fake HubSpot server did not stop")
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    # --- state -----------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` API calls answer `status` (503, 500, 429) instead of the data."""
        with self._lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        with self._lock:
            for records in self.records.values():
                records.clear()
            self.requests.clear()
            self._failures.clear()

    def add_record(self, kind: str, properties: Mapping[str, str], record_id: str = "") -> str:
        """Store one record (all property values are strings, as in HubSpot); return its id."""
        record_id = record_id or str(next(self._ids))
        record = {"id": record_id, "properties": dict(properties), "associations": {}}
        with self._lock:
            self.records[kind][record_id] = record
        return record_id

    def associate(self, deal_id: str, kind: str, ids: Iterable[str], type_: str) -> None:
        results = [{"id": i, "type": type_} for i in ids]
        with self._lock:
            associations = self.records["deals"][deal_id]["associations"]
            associations.setdefault(kind, {"results": []})["results"].extend(results)

    def add_deal(
        self, submission: DealSubmission | Mapping[str, Any], stage: str = "closedwon"
    ) -> str:
        """Seed the deal, company, contact and line items a `DealSubmission` came from."""
        sub = DealSubmission.model_validate(submission)
        deal_id = self.add_record("deals", _deal_properties(sub, stage), sub.deal_id)
        company_id = self.add_record(
            "companies", _company_properties(sub), sub.customer.customer_id
        )
        contact_id = self.add_record("contacts", _contact_properties(sub))
        line_ids = [
            self.add_record("line_items", _line_properties(sub, index))
            for index in range(len(sub.lines))
        ]
        self.associate(deal_id, "companies", [company_id], "deal_to_company")
        self.associate(deal_id, "companies", [company_id], "deal_to_company_unlabeled")
        self.associate(deal_id, "contacts", [contact_id], "deal_to_contact")
        self.associate(deal_id, "line items", line_ids, "deal_to_line_item")
        return deal_id

    # --- the API ---------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/crm/v3/objects/line_items/batch/read", self._batch_read, methods=["POST"]),
                Route("/crm/v3/objects/{kind}/{record_id}", self._get_record, methods=["GET"]),
            ]
        )

    def _refusal(self, request: Request) -> JSONResponse | None:
        with self._lock:
            self.requests.append(f"{request.method} {request.url.path}")
            failure = self._failures.pop(0) if self._failures else None
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if failure == 429:
            return _error(
                429, "RATE_LIMITS", "You have reached your secondly limit.", {"Retry-After": "1"}
            )
        if failure is not None:
            return _error(failure, "SERVICE_UNAVAILABLE", "Service temporarily unavailable")
        return None

    async def _get_record(self, request: Request) -> JSONResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        kind, record_id = request.path_params["kind"], request.path_params["record_id"]
        with self._lock:
            record = self.records.get(kind, {}).get(record_id)
            if record is None:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            wanted = _split(request.query_params.getlist("properties"))
            answer = _public(record, wanted)
            kinds = _split(request.query_params.getlist("associations"))
            associations = {
                name: block
                for name, block in record["associations"].items()
                if name.replace(" ", "_") in kinds
            }
        if associations:
            answer["associations"] = json.loads(json.dumps(associations))
        return JSONResponse(answer)

    async def _batch_read(self, request: Request) -> JSONResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        body = await request.json()
        wanted = list(body.get("properties", []))
        ids = [str(entry["id"]) for entry in body.get("inputs", [])]
        with self._lock:
            found = [self.records["line_items"][i] for i in ids if i in self.records["line_items"]]
            results = [_public(record, wanted) for record in found]
        answer: JsonObject = {"status": "COMPLETE", "results": results}
        answer |= {"startedAt": _TIMESTAMP, "completedAt": _TIMESTAMP}
        missing = [i for i in ids if i not in {r["id"] for r in results}]
        if not missing:
            return JSONResponse(answer)
        message = "Could not get some LINE_ITEM objects, they may be deleted or not exist."
        answer["numErrors"] = 1
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": message,
                "context": {"ids": missing},
            }
        ]
        return JSONResponse(answer, status_code=207)


def _public(record: JsonObject, wanted: list[str]) -> JsonObject:
    """A record as HubSpot shows it: the requested properties (null when unset)."""
    stored: dict[str, str] = record["properties"]
    properties = {name: stored.get(name) for name in wanted} if wanted else dict(stored)
    properties["hs_object_id"] = record["id"]
    return {
        "id": record["id"],
        "properties": properties,
        "createdAt": _TIMESTAMP,
        "updatedAt": _TIMESTAMP,
        "archived": False,
    }


def _error(
    status: int, category: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _split(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


# --- the reverse mapping: DealSubmission → HubSpot records ----------------------------------


def _deal_properties(sub: DealSubmission, stage: str) -> dict[str, str]:
    milestones = [m.model_dump(mode="json") for m in sub.milestones]
    properties = {
        "dealname": f"{sub.customer.name} {sub.start_date.year}",
        "amount": str(sub.total_contract_value),
        "closedate": f"{sub.closed_won_date}T00:00:00Z" if sub.closed_won_date else "",
        "dealstage": stage,
        "pipeline": "default",
        "deal_currency_code": sub.currency,
        "hubspot_owner_id": sub.assigned_ae,
        "revops_arr": str(sub.annual_recurring_value),
        "revops_start_date": sub.start_date.isoformat(),
        "revops_end_date": sub.end_date.isoformat(),
        "revops_billing_frequency": sub.billing_frequency.value,
        "revops_payment_terms": sub.payment_terms.value,
        "revops_po_required": _bool(sub.po_required),
        "revops_po_number": sub.po_number or "",
        "revops_tax_jurisdiction": sub.tax_jurisdiction,
        "revops_tax_exempt": _bool(sub.tax_exempt),
        "revops_exemption_certificate": sub.exemption_certificate or "",
        "revops_recognition_type": sub.recognition_type.value,
        "revops_milestones": json.dumps(milestones) if milestones else "",
        "revops_commission_plan_id": sub.commission_plan_id,
        "revops_billing_entity": sub.billing_entity or "",
        "revops_deposit_received": _bool(sub.deposit_received),
    }
    return {name: value for name, value in properties.items() if value}


def _company_properties(sub: DealSubmission) -> dict[str, str]:
    customer, address = sub.customer, sub.customer.billing_address
    properties = {
        "name": customer.name,
        "domain": customer.billing_contact.email.rsplit("@", 1)[-1],
        "address": address.line1,
        "address2": address.line2 or "",
        "city": address.city,
        "state": address.region or "",
        "zip": address.postal_code or "",
        "country": address.country,
        "revops_legal_entity": customer.legal_entity,
        "revops_tax_registration_number": customer.tax_registration_number or "",
        "revops_payment_method": customer.payment_method.value,
        "revops_approved_credit_limit": str(customer.approved_credit_limit or ""),
    }
    return {name: value for name, value in properties.items() if value}


def _contact_properties(sub: DealSubmission) -> dict[str, str]:
    contact = sub.customer.billing_contact
    first, _, last = contact.name.rpartition(" ")
    properties = {
        "firstname": first or last,
        "lastname": last if first else "",
        "email": contact.email,
    }
    properties["phone"] = contact.phone or ""
    return {name: value for name, value in properties.items() if value}


def _line_properties(sub: DealSubmission, index: int) -> dict[str, str]:
    """A HubSpot line item; a recurring one when its per-period prices come out exact."""
    line = sub.lines[index]
    properties = {
        "name": line.product,
        "quantity": str(line.quantity),
        "price": str(line.list_price),
        "amount": str(line.quantity * line.net_price),
        "hs_discount_percentage": str(line.discount_percent) if line.discount_percent else "",
        "hs_position_on_quote": str(index),
        "revops_line_id": line.line_id,
        "revops_product_type": line.product_type.value,
        "revops_ssp": str(line.standalone_selling_price),
        "revops_recognition": line.recognition.value if line.recognition else "",
        "revops_discount_expiry": line.discount_expiry.isoformat() if line.discount_expiry else "",
    }
    frequency, term = sub.billing_frequency.value, _term_months(sub.start_date, sub.end_date)
    months = _RECURRING.get(frequency)
    if line.product_type.value in _RECURRING_TYPES and months and term and term % months == 0:
        periods = Decimal(term // months)
        price, amount = line.list_price / periods, line.quantity * line.net_price / periods
        if (
            price * periods == line.list_price
            and amount * periods == line.quantity * line.net_price
        ):
            properties |= {
                "price": str(price),
                "amount": str(amount),
                "recurringbillingfrequency": frequency,
                "hs_recurring_billing_period": f"P{term}M",
                "hs_recurring_billing_start_date": sub.start_date.isoformat(),
            }
    return {name: value for name, value in properties.items() if value}


def _term_months(start: date, end: date) -> int | None:
    """Whole months from start to end inclusive (2025-02-01..2026-01-31 → 12), else None."""
    after = end + timedelta(days=1)
    if after.day != start.day:
        return None
    months = (after.year - start.year) * 12 + after.month - start.month
    return months if months > 0 else None


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- webhooks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook request as HubSpot sends it: POST to `uri` with these headers and body."""

    uri: str
    headers: dict[str, str]
    body: bytes


def signed_closed_won_webhook(
    *,
    secret: str,
    uri: str,
    deal_ids: Iterable[str],
    timestamp_ms: int,
    stage: str = "closedwon",
    portal_id: int = 144_563_287,
    app_id: int = 3_021_457,
) -> SignedWebhook:
    """The signed batch HubSpot sends when each of `deal_ids` moves to `stage`."""
    events = [
        {
            "eventId": 1_827_364_500 + number,
            "subscriptionId": 2_419_870,
            "portalId": portal_id,
            "appId": app_id,
            "occurredAt": timestamp_ms - 1_500,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal_id),
            "propertyName": "dealstage",
            "propertyValue": stage,
            "changeSource": "CRM_UI",
            "sourceId": "userId:52048215",
        }
        for number, deal_id in enumerate(deal_ids)
    ]
    body = json.dumps(events, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_hubspot_v3(secret, "POST", uri, body, timestamp_ms),
        TIMESTAMP_HEADER: str(timestamp_ms),
        "X-HubSpot-Signature-Version": "v3",
    }
    return SignedWebhook(uri=uri, headers=headers, body=body)
