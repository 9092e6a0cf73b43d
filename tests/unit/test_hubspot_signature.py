"""HubSpot webhook signature v3 and the event body parser: pure functions, no server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from starter.hubspot_signature import (
    HubSpotEvent,
    WebhookAuthError,
    closed_won_deal_ids,
    hubspot_request_uri,
    normalize_uri,
    parse_hubspot_events,
    sign_hubspot_v3,
    verify_hubspot_v3,
)

SECRET = "7c1e9a52-4b7d-4f0e-9a33-2d5f8e6b1c04"
PREVIOUS = "0f3b6d28-91aa-4c55-b8e2-6a7d4e9f2b11"
URI = "https://revops.nordlicht-logistik.de/webhooks/hubspot"
NOW_MS = 1_737_711_000_000  # 2025-01-24 09:30 UTC
BODY = json.dumps(
    [
        {
            "eventId": 1827364501,
            "subscriptionId": 2419870,
            "portalId": 144563287,
            "appId": 3021457,
            "occurredAt": NOW_MS - 1500,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": 18934567012,
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "changeSource": "CRM_UI",
        }
    ],
    separators=(",", ":"),
).encode()


def verify(
    *,
    secrets: tuple[str, ...] = (SECRET,),
    uri: str = URI,
    body: bytes = BODY,
    timestamp: str | None = str(NOW_MS),
    signature: str | None = None,
    now_ms: int = NOW_MS,
) -> None:
    if signature is None:
        signature = sign_hubspot_v3(SECRET, "POST", URI, BODY, NOW_MS)
    verify_hubspot_v3(
        secrets=secrets,
        method="POST",
        uri=uri,
        body=body,
        timestamp_header=timestamp,
        signature_header=signature,
        now_ms=now_ms,
    )


def reason(**kwargs: Any) -> str:
    with pytest.raises(WebhookAuthError) as caught:
        verify(**kwargs)
    return caught.value.reason


def test_signature_is_base64_hmac_sha256_of_method_uri_body_timestamp() -> None:
    message = b"POST" + URI.encode() + BODY + str(NOW_MS).encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())

    assert sign_hubspot_v3(SECRET, "POST", URI, BODY, NOW_MS) == expected.decode()


def test_a_correctly_signed_request_is_accepted() -> None:
    verify()


def test_a_request_four_minutes_old_is_still_accepted() -> None:
    verify(now_ms=NOW_MS + 4 * 60 * 1000)


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"18934567012", b"18934567013")

    assert reason(body=tampered) == "signature does not match"


def test_a_signature_made_with_another_secret_is_refused() -> None:
    forged = sign_hubspot_v3("not-the-client-secret", "POST", URI, BODY, NOW_MS)

    assert reason(signature=forged) == "signature does not match"


def test_a_different_uri_is_refused() -> None:
    assert reason(uri=URI + "?portal=1") == "signature does not match"


def test_the_previous_secret_is_accepted_during_rotation() -> None:
    signed_with_previous = sign_hubspot_v3(PREVIOUS, "POST", URI, BODY, NOW_MS)

    verify(secrets=(SECRET, PREVIOUS), signature=signed_with_previous)
    assert reason(secrets=(SECRET,), signature=signed_with_previous) == "signature does not match"


def test_a_timestamp_older_than_five_minutes_is_refused() -> None:
    assert reason(now_ms=NOW_MS + 5 * 60 * 1000 + 1) == "timestamp older than 5 minutes"


def test_a_timestamp_more_than_five_minutes_ahead_is_refused() -> None:
    future = NOW_MS + 5 * 60 * 1000 + 1
    signature = sign_hubspot_v3(SECRET, "POST", URI, BODY, future)

    assert (
        reason(timestamp=str(future), signature=signature)
        == "timestamp more than 5 minutes in the future"
    )


def test_a_replayed_timestamp_header_does_not_match_the_signature() -> None:
    assert reason(timestamp=str(NOW_MS + 1000)) == "signature does not match"


def test_missing_headers_are_named() -> None:
    assert reason(signature="") == "missing X-HubSpot-Signature-v3 header"
    assert reason(timestamp=None) == "missing X-HubSpot-Request-Timestamp header"


def test_a_timestamp_that_is_not_milliseconds_is_refused() -> None:
    assert reason(timestamp="2025-01-24T09:30:00Z").startswith(
        "invalid X-HubSpot-Request-Timestamp header"
    )


def test_no_configured_secret_is_a_server_error_not_an_auth_failure() -> None:
    with pytest.raises(ValueError, match="HUBSPOT_CLIENT_SECRET"):
        verify(secrets=("",))


def test_hubspot_decodes_its_listed_percent_encodings_before_signing() -> None:
    encoded = "https://revops.example.com/hooks/hubspot%3Atenant%2Feu?ref=crm%40v3&x=%28a%29%2A%2C%3B%21%24%27%3F"
    decoded = "https://revops.example.com/hooks/hubspot:tenant/eu?ref=crm@v3&x=(a)*,;!$'?"

    assert normalize_uri(encoded) == decoded
    assert normalize_uri("https://x.example/a%3ab") == "https://x.example/a:b"
    signature = sign_hubspot_v3(SECRET, "POST", decoded, BODY, NOW_MS)
    verify(uri=encoded, signature=signature)


def test_other_percent_encodings_are_left_as_sent() -> None:
    assert normalize_uri("https://x.example/a%20b%26c") == "https://x.example/a%20b%26c"


def test_the_public_uri_is_rebuilt_from_the_base_url_path_and_query() -> None:
    assert (
        hubspot_request_uri("https://revops.example.com/", "/webhooks/hubspot", "a=1")
        == "https://revops.example.com/webhooks/hubspot?a=1"
    )
    assert hubspot_request_uri("https://x.example", "webhooks/hubspot") == (
        "https://x.example/webhooks/hubspot"
    )


def test_closed_won_deal_ids_come_from_dealstage_changes_only() -> None:
    def event(event_id: int, object_id: int, kind: str, name: str, value: str) -> dict[str, object]:
        return {
            "eventId": event_id,
            "subscriptionId": 2419870,
            "portalId": 144563287,
            "appId": 3021457,
            "occurredAt": NOW_MS,
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": object_id,
            "propertyName": name,
            "propertyValue": value,
        }

    body = json.dumps(
        [
            event(1, 101, "deal.propertyChange", "dealstage", "closedwon"),
            event(2, 102, "deal.propertyChange", "dealstage", "contractsent"),
            event(3, 103, "deal.propertyChange", "amount", "closedwon"),
            event(4, 104, "deal.creation", "dealstage", "closedwon"),
            event(5, 101, "deal.propertyChange", "dealstage", "closedwon"),
            event(6, 105, "deal.propertyChange", "dealstage", "84512399"),
        ]
    ).encode()
    events = parse_hubspot_events(body)

    assert closed_won_deal_ids(events) == ["101"]
    assert closed_won_deal_ids(events, {"closedwon", "84512399"}) == ["101", "105"]


def test_an_event_parses_to_named_fields_and_ignores_unknown_ones() -> None:
    raw = json.loads(BODY)[0] | {"isSensitive": False}
    [event] = parse_hubspot_events(json.dumps([raw]).encode())

    assert event == HubSpotEvent(
        event_id=1827364501,
        subscription_id=2419870,
        portal_id=144563287,
        app_id=3021457,
        occurred_at=NOW_MS - 1500,
        subscription_type="deal.propertyChange",
        attempt_number=0,
        object_id=18934567012,
        property_name="dealstage",
        property_value="closedwon",
        change_source="CRM_UI",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[{", "webhook body is not valid JSON"),
        (b'{"eventId": 1}', "webhook body must be a JSON array of events"),
        (BODY.replace(b'"objectId":18934567012', b'"objectId":"deal-7"'), r"event \[0\]: objectId"),
        (BODY.replace(b'"portalId":144563287,', b""), r"event \[0\]: portalId: Field required"),
        (b"[42]", r"event \[0\]: event: Input should be a valid dictionary"),
    ],
)
def test_a_malformed_body_is_refused_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hubspot_events(body)
