"""`revops deal submit FILE` against the running stack, as an operator would type it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from starter.demo import BOOK
from starter.services import Services
from starter.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


async def revops(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process; awaited in a thread so this process's worker keeps
    answering (a query on a closed workflow is answered by a worker)."""
    return await asyncio.to_thread(_revops, services, *args)


def _revops(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": services.settings.effective_temporal_address,
        "DATABASE_URL": services.settings.effective_database_url,
        "TASK_QUEUE": services.settings.task_queue,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def book_deal() -> dict[str, Any]:
    """The book's first deal as a new customer's first order."""
    deal: dict[str, Any] = json.loads(BOOK.read_text())[0]
    deal["deal_id"] = f"cli-{uuid.uuid4().hex[:8]}"
    deal["customer"]["customer_id"] = f"cli-co-{uuid.uuid4().hex[:8]}"
    return deal


async def test_a_json_file_starts_the_deal_and_a_second_submit_is_a_duplicate(
    services: Services, tmp_path: Path
) -> None:
    deal = book_deal()
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(deal))
    first = await revops(services, "deal", "submit", str(path))
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"started workflow deal-{deal['deal_id']}" in first.stdout
    again = await revops(services, "deal", "submit", str(path))
    assert again.returncode == 0
    assert f"duplicate: workflow deal-{deal['deal_id']} already handles this deal" in again.stdout


async def test_a_malformed_csv_row_names_row_and_column_exits_non_zero_and_stays_in_the_inbox(
    services: Services, tmp_path: Path
) -> None:
    from starter.csv_intake import deals_to_csv

    deal = book_deal()
    rows = list(csv.reader(io.StringIO(deals_to_csv([deal]))))
    rows[1][rows[0].index("quantity")] = "ten"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = tmp_path / "deals.csv"
    path.write_text(out.getvalue())
    result = await revops(services, "deal", "submit", str(path))
    assert result.returncode == 1
    assert "row 2, column quantity: 'ten' is not a number" in result.stdout
    stored = await services.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE status = 'invalid' AND body LIKE $1",
        f"%{deal['deal_id']}%",
    )
    assert stored == 1


async def test_status_shows_stage_and_amounts_in_their_currency(
    services: Services, tmp_path: Path
) -> None:
    deal = book_deal()
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(deal))
    assert (await revops(services, "deal", "submit", str(path))).returncode == 0
    handle = services.client.get_workflow_handle(f"deal-{deal['deal_id']}")
    await handle.result()
    status = await revops(services, "deal", "status", str(deal["deal_id"]))
    assert status.returncode == 0, status.stderr
    assert "completed" in status.stdout
    assert f" {deal['currency']}" in status.stdout
    assert "invoice " in status.stdout
