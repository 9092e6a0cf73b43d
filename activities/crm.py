"""HubSpot CRM: read a closed-won deal and map it to a `DealSubmission` (SPEC §1).

`HubSpotCrm.read_deal` does the I/O (CRM v3 API) and returns the raw records in a
`HubSpotDealBundle`; `to_submission` is the pure mapping, unit-testable without a network. I/O
failures raise `HubSpotTransientError` (retry: 5xx, 429, timeouts, network) or
`HubSpotPermanentError` (do not retry: 404, 401/403, other 4xx). Data that cannot be mapped
raises `HubSpotMappingError` (a ValueError naming the HubSpot record and property); a missing
or malformed field of ours is left to `DealSubmission.model_validate`, which names it.

Mapping (HubSpot property values are strings; empty means unset):

| DealSubmission field            | HubSpot source                                              |
|---------------------------------|-------------------------------------------------------------|
| deal_id                         | deal id                                                     |
| currency                        | deal `deal_currency_code`                                   |
| total_contract_value            | deal `amount`                                               |
| annual_recurring_value          | deal `revops_arr`                                           |
| start_date / end_date           | deal `revops_start_date` / `revops_end_date`                |
| billing_frequency               | deal `revops_billing_frequency` (monthly … usage)           |
| payment_terms                   | deal `revops_payment_terms` (net_15 … upfront)              |
| po_required / po_number         | deal `revops_po_required` (true/false) / `revops_po_number` |
| tax_jurisdiction                | deal `revops_tax_jurisdiction` (DE, US-NY)                  |
| tax_exempt / exemption_cert…    | deal `revops_tax_exempt` / `revops_exemption_certificate`   |
| recognition_type                | deal `revops_recognition_type`                              |
| milestones                      | deal `revops_milestones` (JSON array of Milestone objects)  |
| assigned_ae                     | deal `hubspot_owner_id` (an owner id, no personal data)     |
| commission_plan_id              | deal `revops_commission_plan_id`                            |
| billing_entity                  | deal `revops_billing_entity`                                |
| closed_won_date                 | deal `closedate` (its UTC date)                             |
| customer.customer_id / name     | company id / company `name`                                 |
| customer.legal_entity           | company `revops_legal_entity`                               |
| customer.tax_registration_number| company `revops_tax_registration_number`                    |
| customer.payment_method         | company `revops_payment_method` (default wire)              |
| customer.approved_credit_limit  | company `revops_approved_credit_limit` (deal currency)      |
| deposit_received                | deal `revops_deposit_received` (true/false)                 |
| customer.billing_address        | company `address`, `address2`, `city`, `state`, `zip`,      |
|                                 | `country` (ISO 3166-1 alpha-2, e.g. DE)                     |
| customer.billing_contact        | contact `firstname` + `lastname`, `email`, `phone`          |
| lines[].line_id                 | line item `revops_line_id`, else the line item id           |
| lines[].product                 | line item `name`                                            |
| lines[].product_type            | line item `revops_product_type`                             |
| lines[].quantity                | line item `quantity`                                        |
| lines[].net_price               | line item `amount` / `quantity` * billing periods in term   |
| lines[].list_price              | line item `revops_list_price`, else `price` * periods       |
| lines[].standalone_selling_price| line item `revops_ssp`                                      |
| lines[].discount_percent        | line item `hs_discount_percentage`                          |
| lines[].discount_expiry         | line item `revops_discount_expiry`                          |
| lines[].recognition             | line item `revops_recognition`                              |

Our line prices are per unit for the whole term. HubSpot's `price` and `amount` of a recurring
line item (`recurringbillingfrequency` set) are per billing period, so they are multiplied by
the number of periods in its term `hs_recurring_billing_period` (P12M, quarterly → 4). The
company is the deal's primary company; the billing contact is the contact whose id is in the
deal's `revops_billing_contact_id`, else the first associated contact. Lines are ordered by
`hs_position_on_quote`, then as HubSpot lists them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.deal import DealSubmission
from models.validation import describe_validation_error, problem_lines

JsonObject = dict[str, Any]

DEAL_PROPERTIES = (
    "dealname", "amount", "closedate", "dealstage", "pipeline", "deal_currency_code",
    "hubspot_owner_id", "revops_arr", "revops_start_date", "revops_end_date",
    "revops_billing_frequency", "revops_payment_terms", "revops_po_required", "revops_po_number",
    "revops_tax_jurisdiction", "revops_tax_exempt", "revops_exemption_certificate",
    "revops_recognition_type", "revops_milestones", "revops_commission_plan_id",
    "revops_billing_entity", "revops_billing_contact_id", "revops_deposit_received",
)  # fmt: skip
COMPANY_PROPERTIES = (
    "name", "domain", "address", "address2", "city", "state", "zip", "country",
    "revops_legal_entity", "revops_tax_registration_number", "revops_payment_method",
    "revops_approved_credit_limit",
)  # fmt: skip
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "phone")
LINE_ITEM_PROPERTIES = (
    "name", "quantity", "price", "amount", "hs_discount_percentage", "hs_sku", "hs_product_id",
    "recurringbillingfrequency", "hs_recurring_billing_period", "hs_position_on_quote",
    "revops_line_id", "revops_product_type", "revops_list_price", "revops_ssp",
    "revops_recognition", "revops_discount_expiry",
)  # fmt: skip

# Months per billing period of HubSpot's `recurringbillingfrequency` (weekly ones are refused).
_PERIOD_MONTHS = {
    "monthly": 1, "quarterly": 3, "per_six_months": 6, "annually": 12,
    "per_two_years": 24, "per_three_years": 36, "per_four_years": 48, "per_five_years": 60,
}  # fmt: skip
_TERM = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?$")
_RECORD_ID = re.compile(r"^[0-9]{1,20}$")
_BATCH_SIZE = 100  # HubSpot's limit of inputs per batch read


class HubSpotError(Exception):
    """A HubSpot API call failed."""


class HubSpotTransientError(HubSpotError):
    """Worth retrying: 5xx, 429 (rate limit), timeouts and network errors."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, from a Retry-After header


class HubSpotPermanentError(HubSpotError):
    """Retrying will not help: a 4xx other than 429, or a record HubSpot cannot return."""


class HubSpotNotFoundError(HubSpotPermanentError):
    """404: no such record (or it was deleted)."""


class HubSpotAuthError(HubSpotPermanentError):
    """401/403: the access token is wrong, expired, or lacks a scope."""


class HubSpotMappingError(ValueError):
    """A HubSpot record cannot be read as a deal; the message names record and property."""


class HubSpotDealBundle(BaseModel):
    """The raw CRM v3 records of one deal, as HubSpot returned them (kept for the inbox)."""

    model_config = ConfigDict(frozen=True)

    deal: JsonObject
    company: JsonObject | None
    contact: JsonObject | None
    line_items: list[JsonObject]

    @property
    def deal_stage(self) -> str | None:
        """The deal's `dealstage` when read (it may have left closed-won since the webhook)."""
        return _props(self.deal).get("dealstage")


def hubspot_client(api_base: str, access_token: str, timeout: float = 10.0) -> httpx.AsyncClient:
    """An AsyncClient for `HubSpotCrm`: HUBSPOT_API_BASE and a private-app/OAuth token."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    return httpx.AsyncClient(base_url=api_base, headers=headers, timeout=timeout)


class HubSpotCrm:
    """Reads deals through the HubSpot CRM v3 API with a caller-configured client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def read_deal(self, deal_id: str) -> HubSpotDealBundle:
        """The deal with its primary company, billing contact and line items."""
        deal = await self._get("deals", deal_id, DEAL_PROPERTIES, "companies,contacts,line_items")
        company_id, contact_id = _primary_company_id(deal), _billing_contact_id(deal)
        company = (
            await self._get("companies", company_id, COMPANY_PROPERTIES) if company_id else None
        )
        contact = (
            await self._get("contacts", contact_id, CONTACT_PROPERTIES) if contact_id else None
        )
        line_items = await self._read_line_items(_associated(deal, "line items"))
        return HubSpotDealBundle(deal=deal, company=company, contact=contact, line_items=line_items)

    async def _get(
        self, object_type: str, record_id: str, properties: tuple[str, ...], associations: str = ""
    ) -> JsonObject:
        if not _RECORD_ID.match(record_id):
            raise HubSpotNotFoundError(f"{record_id!r} is not a HubSpot {object_type} id")
        params = {"properties": ",".join(properties), "archived": "false"}
        if associations:
            params["associations"] = associations
        return await self._send("GET", f"/crm/v3/objects/{object_type}/{record_id}", params=params)

    async def _read_line_items(self, ids: list[str]) -> list[JsonObject]:
        found: dict[str, JsonObject] = {}
        for start in range(0, len(ids), _BATCH_SIZE):
            chunk = ids[start : start + _BATCH_SIZE]
            body = {"properties": list(LINE_ITEM_PROPERTIES), "inputs": [{"id": i} for i in chunk]}
            answer = await self._send("POST", "/crm/v3/objects/line_items/batch/read", json=body)
            found.update((str(item["id"]), item) for item in answer.get("results", []))
        missing = [i for i in ids if i not in found]
        if missing:
            raise HubSpotNotFoundError(f"line items not found: {', '.join(missing)}")
        return [found[i] for i in ids]

    async def _send(self, method: str, url: str, **kwargs: Any) -> JsonObject:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.UnsupportedProtocol as error:
            raise HubSpotPermanentError(f"HubSpot API base URL is unusable: {error}") from error
        except httpx.TransportError as error:
            raise HubSpotTransientError(f"{method} {url}: {type(error).__name__}") from error
        if response.is_success:
            try:
                answer = response.json()
            except ValueError as error:
                raise HubSpotTransientError(f"{method} {url}: answer is not JSON") from error
            if not isinstance(answer, dict):
                raise HubSpotPermanentError(f"{method} {url}: answer is not a JSON object")
            return answer
        raise _status_error(method, url, response)


def _status_error(method: str, url: str, response: httpx.Response) -> HubSpotError:
    status = response.status_code
    message = f"{method} {url} → {status} {_error_detail(response)}"
    if status == 429 or status >= 500:
        return HubSpotTransientError(message, _retry_after(response))
    if status == 404:
        return HubSpotNotFoundError(message)
    if status in (401, 403):
        return HubSpotAuthError(message)
    return HubSpotPermanentError(message)


def _error_detail(response: httpx.Response) -> str:
    """HubSpot's error JSON: category, message and the correlationId its support asks for."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    parts = [str(body.get(key)) for key in ("category", "message") if body.get(key)]
    if body.get("correlationId"):
        parts.append(f"(correlationId {body['correlationId']})")
    return " ".join(parts) or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _associated(deal: JsonObject, kind: str, first_type: str = "") -> list[str]:
    """Ids of associated records once each, those of association type `first_type` first."""
    associations = deal.get("associations") or {}
    # HubSpot names the line items block "line items"; accept "line_items" too.
    block = associations.get(kind) or associations.get(kind.replace(" ", "_")) or {}
    if (block.get("paging") or {}).get("next"):
        raise HubSpotPermanentError(f"deal {deal.get('id')} has more {kind} than one page")
    results = [a for a in block.get("results", []) if a.get("id")]
    preferred = [a for a in results if a.get("type") == first_type]
    return list(dict.fromkeys(str(a["id"]) for a in preferred + results))


def _primary_company_id(deal: JsonObject) -> str | None:
    """The primary company: its association type is `deal_to_company`."""
    return next(iter(_associated(deal, "companies", "deal_to_company")), None)


def _billing_contact_id(deal: JsonObject) -> str | None:
    """The contact named in `revops_billing_contact_id`, else the first associated one."""
    chosen = _props(deal).get("revops_billing_contact_id")
    return chosen or next(iter(_associated(deal, "contacts")), None)


# --- the pure mapping ---------------------------------------------------------------------


def to_submission(bundle: HubSpotDealBundle) -> dict[str, object]:
    """The bundle as a dict for `DealSubmission.model_validate` (see the module's table)."""
    deal_id = bundle.deal.get("id")
    if bundle.company is None:
        raise HubSpotMappingError(f"deal {deal_id} has no associated company")
    if bundle.contact is None:
        raise HubSpotMappingError(f"deal {deal_id} has no associated contact")
    return deal_submission_from_hubspot(
        bundle.deal, bundle.company, bundle.contact, bundle.line_items
    )


def deal_submission_from_hubspot(
    deal: Mapping[str, Any],
    company: Mapping[str, Any],
    contact: Mapping[str, Any],
    line_items: list[JsonObject],
) -> dict[str, object]:
    """Map the raw records; unset properties are left out so that validation names them."""
    d = _Record("deal", deal)
    return _compact(
        {
            "deal_id": d.id,
            "customer": _customer(_Record("company", company), _Record("contact", contact)),
            "currency": d.get("deal_currency_code"),
            "total_contract_value": d.get("amount"),
            "annual_recurring_value": d.get("revops_arr"),
            "start_date": d.date("revops_start_date"),
            "end_date": d.date("revops_end_date"),
            "billing_frequency": d.get("revops_billing_frequency"),
            "payment_terms": d.get("revops_payment_terms"),
            "po_required": d.boolean("revops_po_required"),
            "po_number": d.get("revops_po_number"),
            "tax_jurisdiction": _upper(d.get("revops_tax_jurisdiction")),
            "tax_exempt": d.boolean("revops_tax_exempt"),
            "exemption_certificate": d.get("revops_exemption_certificate"),
            "recognition_type": d.get("revops_recognition_type"),
            "milestones": d.json_list("revops_milestones"),
            "assigned_ae": d.get("hubspot_owner_id"),
            "commission_plan_id": d.get("revops_commission_plan_id"),
            "lines": [_line(_Record("line item", item)) for item in _by_position(line_items)],
            "billing_entity": d.get("revops_billing_entity"),
            "closed_won_date": d.date("closedate"),
            "deposit_received": d.boolean("revops_deposit_received"),
        }
    )


def _customer(company: _Record, contact: _Record) -> dict[str, object]:
    name = " ".join(filter(None, (contact.get("firstname"), contact.get("lastname"))))
    address = {
        "line1": company.get("address"),
        "line2": company.get("address2"),
        "city": company.get("city"),
        "region": company.get("state"),
        "postal_code": company.get("zip"),
        "country": _upper(company.get("country")),
    }
    billing_contact = {
        "name": name or None,
        "email": contact.get("email"),
        "phone": contact.get("phone"),
    }
    return _compact(
        {
            "customer_id": company.id,
            "name": company.get("name"),
            "legal_entity": company.get("revops_legal_entity"),
            "billing_contact": _compact(billing_contact),
            "billing_address": _compact(address),
            "tax_registration_number": company.get("revops_tax_registration_number"),
            "payment_method": company.get("revops_payment_method"),
            "approved_credit_limit": company.decimal("revops_approved_credit_limit"),
        }
    )


def _line(item: _Record) -> dict[str, object]:
    periods = _billing_periods(item)
    quantity = item.decimal("quantity")
    net_total = item.decimal("amount")
    price = item.decimal("price")
    list_price = item.get("revops_list_price")
    if list_price is None and price is not None:
        list_price = str(price * periods)
    net_price = None
    if quantity is not None and quantity != 0 and net_total is not None:
        net_price = str(net_total / quantity * periods)
    return _compact(
        {
            "line_id": item.get("revops_line_id") or item.id,
            "product": item.get("name"),
            "product_type": item.get("revops_product_type"),
            "quantity": item.get("quantity"),
            "list_price": list_price,
            "net_price": net_price,
            "standalone_selling_price": item.get("revops_ssp"),
            "discount_percent": item.get("hs_discount_percentage"),
            "discount_expiry": item.date("revops_discount_expiry"),
            "recognition": item.get("revops_recognition"),
        }
    )


def _billing_periods(item: _Record) -> int:
    """1 for a one-time line; for a recurring one, its billing periods in its term."""
    frequency = item.get("recurringbillingfrequency")
    if frequency is None:
        return 1
    if frequency not in _PERIOD_MONTHS:
        raise item.error("recurringbillingfrequency", frequency, "a monthly-based frequency")
    term = item.get("hs_recurring_billing_period")
    match = _TERM.match(term or "")
    if term is None or match is None or not any(match.groups()):
        raise item.error("hs_recurring_billing_period", term, "a term such as P12M")
    months = int(match.group(1) or 0) * 12 + int(match.group(2) or 0)
    periods, rest = divmod(months, _PERIOD_MONTHS[frequency])
    if rest or not periods:
        raise item.error("hs_recurring_billing_period", term, f"whole {frequency} periods")
    return periods


def _by_position(line_items: list[JsonObject]) -> list[JsonObject]:
    def position(item: JsonObject) -> float:
        value = _props(item).get("hs_position_on_quote")
        try:
            return float(value) if value is not None else float("inf")
        except ValueError:
            return float("inf")

    return sorted(line_items, key=position)  # stable: HubSpot's order among equals


class _Record:
    """Typed reads of one HubSpot record's string properties, with errors naming them."""

    def __init__(self, kind: str, raw: Mapping[str, Any]) -> None:
        self.kind = kind
        self.id = str(raw.get("id") or "")
        if not isinstance(raw.get("properties"), dict):
            raise HubSpotMappingError(f"{kind} {self.id or '?'} has no properties object")
        self._props = _props(raw)

    def error(self, name: str, value: str | None, expected: str) -> HubSpotMappingError:
        return HubSpotMappingError(
            f"{self.kind} {self.id} property {name}: expected {expected}, got {value!r}"
        )

    def get(self, name: str) -> str | None:
        return self._props.get(name)

    def decimal(self, name: str) -> Decimal | None:
        value = self.get(name)
        try:
            return None if value is None else Decimal(value)
        except InvalidOperation:
            raise self.error(name, value, "a number") from None

    def boolean(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise self.error(name, value, "true or false")
        return value.lower() == "true"

    def date(self, name: str) -> str | None:
        """ISO date of a HubSpot date (2025-01-31), datetime (…T10:00:00Z) or epoch ms."""
        value = self.get(name)
        if value is None:
            return None
        try:
            if value.isdigit():
                return datetime.fromtimestamp(int(value) / 1000, UTC).date().isoformat()
            if len(value) == 10:
                return date.fromisoformat(value).isoformat()
            moment = datetime.fromisoformat(value)
            return (
                (moment if moment.tzinfo else moment.replace(tzinfo=UTC))
                .astimezone(UTC)
                .date()
                .isoformat()
            )
        except ValueError:
            raise self.error(name, value, "a date") from None

    def json_list(self, name: str) -> list[Any] | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            parsed = json.loads(value, parse_float=str)  # keep amounts exact for Decimal
        except json.JSONDecodeError as error:
            raise self.error(name, value[:80], f"a JSON array ({error.msg})") from None
        if not isinstance(parsed, list):
            raise self.error(name, value[:80], "a JSON array")
        return parsed


def _props(record: Mapping[str, Any]) -> dict[str, str]:
    """Set properties only: HubSpot sends unset ones as null or ""."""
    raw = record.get("properties") or {}
    return {k: str(v).strip() for k, v in raw.items() if v is not None and str(v).strip()}


def _compact(values: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


class ReadCrmDealInput(BaseModel):
    crm_deal_id: str


class ReadCrmDealResult(BaseModel):
    """The deal read from the CRM, or why it could not be used (each bad field named)."""

    deal: DealSubmission | None = None
    errors: list[str] = []


class CrmActivities:
    """The CRM as the workflows see it: transient faults retry, bad data is reported."""

    def __init__(self, crm: HubSpotCrm) -> None:
        self._crm = crm

    @activity.defn
    async def read_crm_deal(self, data: ReadCrmDealInput) -> ReadCrmDealResult:
        try:
            bundle = await self._crm.read_deal(data.crm_deal_id)
            return ReadCrmDealResult(deal=DealSubmission.model_validate(to_submission(bundle)))
        except HubSpotTransientError:
            raise  # Temporal retries with backoff
        except HubSpotPermanentError as exc:
            raise ApplicationError(str(exc), type="CrmPermanentError", non_retryable=True) from exc
        except HubSpotMappingError as exc:
            return ReadCrmDealResult(errors=[str(exc)])
        except ValidationError as exc:
            return ReadCrmDealResult(errors=problem_lines(describe_validation_error(exc)))
