"""Record the histories that tests/replay replays: run the deal workflow on the time-skipping
server with the in-memory systems and save each history as JSON.

    python -m tests.replay.record_histories

Re-record only on purpose (a deliberate, `workflow.patched`-guarded change); the point of the
saved histories is that today's code must replay yesterday's runs.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.case import Resolution
from models.deal import PaymentTerms, ProductType
from models.deal_flow import DealInput
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT
from tests.builders import make_deal, make_line
from tests.workflows.conftest import register_search_attributes, test_server_path
from tests.workflows.fake_activities import FakeSystems
from worker import WORKFLOWS, workflow_runner
from workflows.deal import DealWorkflow
from workflows.exception_case import ExceptionCaseWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _record(client: Client, workflow_id: str, name: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


async def main() -> None:
    rules = load_rules(PROJECT_ROOT / "rules")
    line = make_line("L1", ProductType.SUBSCRIPTION, "1000", quantity="120")
    clean = make_deal([line], payment_terms=PaymentTerms.UPFRONT, deal_id="replay-clean")
    no_po = make_deal([line], payment_terms=PaymentTerms.UPFRONT, deal_id="replay-amend",
                      po_required=True)  # fmt: skip
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server_path()
    ) as env:
        await register_search_attributes(env.client)
        queue = f"record-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=list(WORKFLOWS),
                          activities=FakeSystems().all(), workflow_runner=workflow_runner()):  # fmt: skip
            for deal in (clean, no_po):
                await env.client.start_workflow(
                    DealWorkflow.run, DealInput(deal=deal, source="api", submitted_by="recorder", rules=rules),
                    id=f"deal-{deal.deal_id}", task_queue=queue,
                )  # fmt: skip
            await env.client.get_workflow_handle(f"deal-{clean.deal_id}").result()
            case = env.client.get_workflow_handle_for(
                ExceptionCaseWorkflow.run, f"case-deal-{no_po.deal_id}-structural.po_present"
            )
            for _ in range(100):
                try:
                    await case.describe()
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
                action="amend", actor="maria.santos",
                reason_code="DATA_CORRECTED", amendments={"po_number": "PO-1"}))  # fmt: skip
            await env.client.get_workflow_handle(f"deal-{no_po.deal_id}").result()
            await _record(env.client, f"deal-{clean.deal_id}", "deal_standard_path")
            await _record(env.client, f"deal-{no_po.deal_id}", "deal_amended_po")
            await _record(env.client, case.id, "case_amended_po")


if __name__ == "__main__":
    asyncio.run(main())
