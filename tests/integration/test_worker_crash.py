"""A worker killed with SIGKILL mid-flight, again and again, loses nothing and duplicates
nothing: every deal ends with exactly one invoice and one set of journal entries."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from models.deal import DealSubmission
from models.deal_flow import DealInput, DealStage
from starter.deal_start import start_deal
from starter.demo import BOOK
from starter.services import Services
from starter.settings import PROJECT_ROOT
from workflows.deal import DealWorkflow

pytestmark = pytest.mark.integration

KILLS = 4


def clean_deals(count: int) -> list[DealSubmission]:
    """Clean first orders of the book (see expected_qa.json), each given its own deal and
    customer id (a customer's second order is clean only after its first)."""
    failing = {
        f["deal_id"] for f in json.loads((BOOK.parent / "expected_qa.json").read_text())["failing"]
    }
    book, seen = [], set()
    for d in json.loads(BOOK.read_text()):
        if d["deal_id"] not in failing and d["customer"]["customer_id"] not in seen:
            book.append(d)
        seen.add(d["customer"]["customer_id"])
    out = []
    for i in range(count):
        raw: dict[str, Any] = json.loads(json.dumps(book[i % len(book)]))
        tag = uuid.uuid4().hex[:8]
        raw["deal_id"] = f"crash-{tag}"
        raw["customer"]["customer_id"] = f"crash-co-{tag}"
        out.append(DealSubmission.model_validate(raw))
    return out


class WorkerProcess:
    """`revops worker` in a child process, on its own task queue."""

    def __init__(self, services: Services, task_queue: str) -> None:
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": services.settings.effective_temporal_address,
            "DATABASE_URL": services.settings.effective_database_url,
            "TASK_QUEUE": task_queue,
            "LOG_LEVEL": "WARNING",
        }
        if services.mailbox is not None:  # invoices are e-mailed: to the session's mailbox
            self.env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(services.mailbox.port)}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = open(f"/tmp/{task_queue}.log", "ab")  # noqa: SIM115  (closed in stop())

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "starter.cli", "worker"], env=self.env, cwd=PROJECT_ROOT,
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.log.close()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def crash_queue(services: Services) -> Iterator[tuple[WorkerProcess, str]]:
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(services, queue)
    yield worker, queue
    worker.stop()


async def test_sigkilled_worker_yields_one_invoice_and_one_set_of_entries_per_deal(
    services: Services, crash_queue: tuple[WorkerProcess, str]
) -> None:
    worker, queue = crash_queue
    deals = clean_deals(12)
    worker.start()
    for deal in deals:
        data = DealInput(deal=deal, source="api", submitted_by="crash-test", rules=services.rules)
        assert (await start_deal(services.client, data, queue)).started
    rng = random.Random(7)
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        worker.kill()
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        worker.start()

    deadline = time.monotonic() + 180
    outcomes = []
    for deal in deals:
        handle = services.client.get_workflow_handle_for(DealWorkflow.run, f"deal-{deal.deal_id}")
        outcomes.append(
            await asyncio.wait_for(handle.result(), timeout=max(1.0, deadline - time.monotonic()))
        )
    assert {o.stage for o in outcomes} == {DealStage.COMPLETED}

    ids = [d.deal_id for d in deals]
    # Each deal's first invoice, and the recurring periods already in service that its
    # contract workflow catches up (a term that started before today): each exactly once.
    expected = {d.deal_id: _expected_invoice_keys(d) for d in deals}
    for _ in range(150):
        rows = await services.pool.fetch(
            "SELECT deal_id, idempotency_key FROM invoice WHERE deal_id = ANY($1)", ids
        )
        found: dict[str, list[str]] = {i: [] for i in ids}
        for r in rows:
            found[r["deal_id"]].append(r["idempotency_key"])
        if {i: sorted(k) for i, k in found.items()} == expected:
            break
        await asyncio.sleep(0.2)
    assert {i: sorted(k) for i, k in found.items()} == expected
    entries = await services.pool.fetch(
        """SELECT e.deal_id, count(*) AS n, count(DISTINCT i.number) AS invoices
           FROM journal_entry e LEFT JOIN invoice i ON e.key = 'invoice:' || i.number
           WHERE e.deal_id = ANY($1) AND e.key LIKE 'invoice:%' GROUP BY 1""",
        ids,
    )
    assert all(r["n"] == r["invoices"] for r in entries), [dict(r) for r in entries]
    assert {r["deal_id"]: r["n"] for r in entries} == {i: len(k) for i, k in expected.items() if k}
    recognitions = await services.pool.fetch(
        """SELECT deal_id, count(*) AS n FROM journal_entry
           WHERE deal_id = ANY($1) AND key LIKE 'recognition:%' GROUP BY 1""",
        ids,
    )
    assert all(r["n"] == 1 for r in recognitions), [dict(r) for r in recognitions]
    contracts = await services.pool.fetchval(
        "SELECT count(*) FROM contract WHERE deal_id = ANY($1)", ids
    )
    assert contracts == len(deals)
    audit = await services.pool.fetch(
        """SELECT subject, action, count(*) AS n FROM audit_event
           WHERE subject = ANY($1) GROUP BY 1, 2, after->>'number' HAVING count(*) > 1""",
        [f"deal:{i}" for i in ids],
    )
    assert [dict(r) for r in audit] == []


def _expected_invoice_keys(deal: DealSubmission) -> list[str]:
    from models.billing import first_invoice
    from models.contract_terms import ContractTerms

    if first_invoice(deal) is None:
        return []
    terms, today = ContractTerms.booked(deal), datetime.now(UTC).date()
    periods = [p.number for p in terms.periods[1:] if p.start <= today]
    keys = [f"deal:{deal.deal_id}:first-invoice"]
    if terms.recurring_line_ids():
        keys += [f"contract:{deal.deal_id}:period:{n}" for n in periods]
    return sorted(keys)
