"""Usage records on the real PostgreSQL: stored once per (contract, record id) however often a
batch arrives, conflicts reported, bad records refused with their index and field, through
the API and the CLI."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from models.rules import Role
from models.usage import UsageRecord
from starter.api_keys import create_api_key
from starter.services import Services
from starter.usage_intake import store_usage
from tests.integration.test_cli_submit import revops

pytestmark = pytest.mark.integration


def records(contract: str, count: int, quantity: str = "1.5") -> list[dict[str, str]]:
    return [
        {"record_id": f"evt-{n:05d}", "contract_id": contract, "metric": "api_calls",
         "quantity": quantity, "occurred_at": f"2026-11-{1 + n % 28:02d}T10:00:00+01:00"}
        for n in range(count)
    ]  # fmt: skip


async def test_a_batch_sent_twice_is_stored_once_and_a_changed_record_is_a_conflict(
    services: Services,
) -> None:
    contract = f"usage-{uuid.uuid4().hex[:8]}"
    batch = [UsageRecord.model_validate(r) for r in records(contract, 1_000)]

    first = await store_usage(services.pool, batch, source="test")
    again = await store_usage(services.pool, batch, source="test")
    changed = batch[7].model_copy(update={"quantity": Decimal("99")})
    conflict = await store_usage(services.pool, [changed, *batch[:3]], source="test")

    assert (first.received, first.stored, first.duplicates, first.conflicts) == (1000, 1000, 0, [])
    assert (again.stored, again.duplicates, again.conflicts) == (0, 1000, [])
    assert (conflict.stored, conflict.duplicates) == (0, 3)
    assert conflict.conflicts == [f"{contract}/evt-00007"]
    row = await services.pool.fetchrow(
        "SELECT count(*) AS n, sum(quantity) AS total, min(period) AS first, max(period) AS last "
        "FROM usage_record WHERE contract_id = $1",
        contract,
    )
    assert row is not None
    assert (row["n"], row["total"], row["first"], row["last"]) == (
        1000, Decimal("1500.000000"), "2026-11", "2026-11",
    )  # fmt: skip


async def test_the_api_refuses_a_batch_with_a_bad_record_naming_it_and_stores_nothing(
    services: Services,
) -> None:
    assert services.api_url is not None
    key = await create_api_key(services.pool, f"usage-{uuid.uuid4().hex[:8]}", Role.BILLING)
    contract = f"usage-{uuid.uuid4().hex[:8]}"
    items = records(contract, 3)
    items[1] = {**items[1], "quantity": "-2", "occurred_at": "2026-11-02T10:00:00"}
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as api:  # fmt: skip
        refused = await api.post("/usage", content=json.dumps({"records": items}))
        accepted = await api.post("/usage", content=json.dumps({"records": records(contract, 3)}))

    assert refused.status_code == 422
    [bad] = refused.json()["problems"]
    assert bad["index"] == 1
    assert {p["field"] for p in bad["problems"]} == {"quantity", "occurred_at"}
    assert any("greater than or equal to 0" in p["rule"] for p in bad["problems"])
    assert (accepted.status_code, accepted.json()) == (
        202, {"received": 3, "stored": 3, "duplicates": 0, "conflicts": []},
    )  # fmt: skip
    inbox = await services.pool.fetch(
        "SELECT status FROM inbox WHERE source = 'usage-api' AND body LIKE $1 ORDER BY id",
        f"%{contract}%",
    )
    assert [r["status"] for r in inbox] == ["invalid", "stored"]


async def test_the_cli_ingests_a_csv_file_once(services: Services, tmp_path: Path) -> None:
    contract = f"usage-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "usage.csv"
    rows = records(contract, 250)
    path.write_text(
        "record_id,contract_id,metric,quantity,occurred_at\n"
        + "".join(
            f"{r['record_id']},{r['contract_id']},{r['metric']},{r['quantity']},"
            f"{r['occurred_at']}\n"
            for r in rows
        )
    )
    first = await revops(services, "usage", "ingest", str(path))
    again = await revops(services, "usage", "ingest", str(path))
    broken = tmp_path / "broken.csv"
    broken.write_text(path.read_text().replace(",1.5,2026-11-04", ",lots,2026-11-04", 1))
    refused = await revops(services, "usage", "ingest", str(broken))

    assert first.returncode == 0, first.stdout + first.stderr
    assert "250 records: 250 stored, 0 duplicates, 0 conflicts" in first.stdout
    assert "250 records: 0 stored, 250 duplicates, 0 conflicts" in again.stdout
    assert refused.returncode == 1
    assert f"{broken} line 5: quantity: Input should be a valid decimal" in " ".join(
        refused.stdout.split()
    )
    assert "1 invalid record(s): nothing stored" in refused.stdout
