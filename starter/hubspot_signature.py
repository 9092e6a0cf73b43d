"""HubSpot webhooks: signature v3 verification and the event body parser (DESIGN decision 5).

HubSpot signs each webhook request with the app's client secret:

    X-HubSpot-Signature-v3      = base64(HMAC-SHA256(client secret,
                                         method + URI + body + timestamp))
    X-HubSpot-Request-Timestamp = milliseconds since the epoch, as sent

The URI is the full URL HubSpot called (scheme, host, path and query), with the characters of
`_DECODED` URL-decoded first, as HubSpot's "Validating requests" page documents. A request
whose timestamp is more than five minutes away from now (either way) is refused, so a captured
request cannot be replayed later. Several secrets are accepted, so that a rotation (current +
previous) needs no downtime. Everything here is pure: the caller passes the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Collection, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_SKEW_MS = 5 * 60 * 1000
DEFAULT_CLOSED_WON_STAGES: frozenset[str] = frozenset({"closedwon"})

# Percent-encodings HubSpot decodes in the URI before signing (nothing else is decoded).
_DECODED: dict[str, str] = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
# Hex digits are case-insensitive in percent-encoding (RFC 3986), so %3a is %3A.
_ENCODED = re.compile("|".join(_DECODED), re.IGNORECASE)


class WebhookAuthError(Exception):
    """The request is not proven to come from HubSpot; `reason` says why (answer 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the `_DECODED` percent-encodings replaced by characters."""
    return _ENCODED.sub(lambda match: _DECODED[match.group(0).upper()], uri)


def hubspot_request_uri(public_base_url: str, raw_path: str, query_string: str = "") -> str:
    """The URL the sender used, rebuilt behind a proxy: PUBLIC_BASE_URL + raw path + query."""
    uri = public_base_url.rstrip("/") + "/" + raw_path.lstrip("/")
    return f"{uri}?{query_string}" if query_string else uri


def sign_hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """The X-HubSpot-Signature-v3 value HubSpot sends for this request."""
    message = f"{method.upper()}{normalize_uri(uri)}".encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_hubspot_v3(
    *,
    secrets: Sequence[str],
    method: str,
    uri: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now_ms: int,
) -> None:
    """Return if one of `secrets` signed this request within five minutes of `now_ms`.

    Raises `WebhookAuthError` naming what is wrong, and `ValueError` when no secret is
    configured (a server fault, not the sender's).
    """
    usable = [secret for secret in secrets if secret]
    if not usable:
        raise ValueError("no HubSpot client secret configured (HUBSPOT_CLIENT_SECRET)")
    if not signature_header:
        raise WebhookAuthError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp_header:
        raise WebhookAuthError(f"missing {TIMESTAMP_HEADER} header")
    timestamp_ms = _parse_timestamp(timestamp_header)
    if now_ms - timestamp_ms > MAX_SKEW_MS:
        raise WebhookAuthError("timestamp older than 5 minutes")
    if timestamp_ms - now_ms > MAX_SKEW_MS:
        raise WebhookAuthError("timestamp more than 5 minutes in the future")
    received = signature_header.strip().encode("ascii", errors="replace")
    # Every secret is tried (no early exit), so timing does not reveal which one matched.
    matches = [
        hmac.compare_digest(
            sign_hubspot_v3(secret, method, uri, body, timestamp_ms).encode("ascii"), received
        )
        for secret in usable
    ]
    if not any(matches):
        raise WebhookAuthError("signature does not match")


def _parse_timestamp(header: str) -> int:
    value = header.strip()
    if not value.isascii() or not value.isdigit():
        raise WebhookAuthError(f"invalid {TIMESTAMP_HEADER} header: expected epoch milliseconds")
    return int(value)


class HubSpotEvent(BaseModel):
    """One event of a HubSpot webhook batch (the body is a JSON array of these).

    Only `deal.propertyChange` events of `dealstage` matter to intake; other fields HubSpot
    may add are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    event_id: int = Field(alias="eventId")
    subscription_id: int = Field(alias="subscriptionId")
    portal_id: int = Field(alias="portalId", description="HubSpot account (hub) id")
    app_id: int = Field(alias="appId")
    occurred_at: int = Field(alias="occurredAt", description="Epoch milliseconds")
    subscription_type: str = Field(alias="subscriptionType", examples=["deal.propertyChange"])
    attempt_number: int = Field(alias="attemptNumber", description="0 on the first delivery")
    object_id: int = Field(alias="objectId", description="The CRM record (here: deal) id")
    property_name: str | None = Field(default=None, alias="propertyName")
    property_value: str | None = Field(default=None, alias="propertyValue")
    change_source: str | None = Field(default=None, alias="changeSource")
    source_id: str | None = Field(default=None, alias="sourceId")


def parse_hubspot_events(body: bytes) -> list[HubSpotEvent]:
    """Parse a webhook body; a malformed one raises ValueError naming the bad field."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"webhook body is not valid JSON: {error}") from error
    if not isinstance(raw, list):
        raise ValueError("webhook body must be a JSON array of events")
    events: list[HubSpotEvent] = []
    for index, item in enumerate(raw):
        try:
            events.append(HubSpotEvent.model_validate(item))
        except ValidationError as error:
            raise ValueError(f"event [{index}]: {_describe(error)}") from error
    return events


def closed_won_deal_ids(
    events: Sequence[HubSpotEvent],
    closed_won_stages: Collection[str] = DEFAULT_CLOSED_WON_STAGES,
) -> list[str]:
    """Ids of deals moved into a closed-won stage, once each, in order of first appearance.

    Custom pipelines have numeric stage ids: pass them in `closed_won_stages`.
    """
    ids: dict[str, None] = {}
    for event in events:
        if (
            event.subscription_type == "deal.propertyChange"
            and event.property_name == "dealstage"
            and event.property_value in closed_won_stages
        ):
            ids[str(event.object_id)] = None
    return list(ids)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc']) or 'event'}: {detail['msg']}"
        for detail in error.errors()
    )
