"""gRPC compression to the Temporal frontend: off over loopback, gzip elsewhere, unless set."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pydantic
import pytest
from temporalio.client import Client, GrpcCompression

import worker as worker_module
from starter.settings import Settings


@pytest.mark.parametrize(
    ("address", "gzip"),
    [
        (None, False),  # the embedded dev server on 127.0.0.1
        ("127.0.0.1:7233", False),
        ("localhost:7233", False),
        ("[::1]:7233", False),
        ("::1", False),
        ("temporal-frontend.revops.svc:7233", True),
        ("10.0.4.12:7233", True),
        ("[2001:db8::7]:7233", True),
        ("acme.a2b3c.tmprl.cloud:7233", True),
    ],
)
def test_auto_compresses_only_to_a_frontend_on_another_machine(
    monkeypatch: pytest.MonkeyPatch, address: str | None, gzip: bool
) -> None:
    if address is not None:
        monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    assert Settings().temporal_grpc_compression == "auto"
    assert Settings().temporal_gzip is gzip


@pytest.mark.parametrize(("value", "address", "gzip"), [
    ("gzip", "127.0.0.1:7233", True), ("none", "temporal.example.com:7233", False),
])  # fmt: skip
def test_an_explicit_setting_wins_over_the_address(
    monkeypatch: pytest.MonkeyPatch, value: str, address: str, gzip: bool
) -> None:
    monkeypatch.setenv("TEMPORAL_GRPC_COMPRESSION", value)
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    assert Settings().temporal_gzip is gzip


def test_an_unknown_compression_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_GRPC_COMPRESSION", "zstd")
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings()
    assert "temporal_grpc_compression" in str(refused.value)
    assert "'auto', 'gzip' or 'none'" in str(refused.value)


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:7233", GrpcCompression.NONE), ("temporal.example.com:7233", GrpcCompression.GZIP),
])  # fmt: skip
async def test_the_client_connects_with_the_chosen_compression(
    monkeypatch: pytest.MonkeyPatch, address: str, expected: GrpcCompression
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    captured: dict[str, Any] = {}

    async def connect(target: str, **options: Any) -> None:
        captured.update(options, target=target)

    with patch.object(Client, "connect", connect):
        await worker_module.connect_client(Settings())
    assert captured["target"] == address
    assert captured["grpc_compression"] == expected
