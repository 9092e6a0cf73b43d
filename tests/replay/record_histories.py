"""Record the histories that tests/replay replays: run the deal workflow on the time-skipping
server with the in-memory systems and save each history as JSON.

    python -m tests.replay.record_histories

Re-record only on purpose (a deliberate, `workflow.patched`-guarded change); the point of the
saved histories is that today's code must replay yesterday's runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.case import CaseInput, Resolution, SignOff
from models.deal import DealSubmission, PaymentTerms, ProductType
from models.deal_flow import DealInput
from models.rules import Role
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT
from tests.builders import make_deal, make_line
from tests.workflows.conftest import register_search_attributes, test_server_path
from tests.workflows.fake_activities import FakeSystems
from worker import WORKFLOWS, workflow_runner
from workflows.deal import DealWorkflow
from workflows.exception_case import ExceptionCaseWorkflow
from workflows.override_signoff import OverrideSignoffWorkflow

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
            await _escalated_override(env, queue, clean)


async def _escalated_override(env: WorkflowEnvironment, queue: str, deal: DealSubmission) -> None:
    """A finance case left past its SLA (one escalation), then overridden; its sign-off is
    given late, after the audit flag."""
    check = "business.payment_terms_policy"
    case_id = f"case-deal-replay-escalated-{check}"
    case = await env.client.start_workflow(
        ExceptionCaseWorkflow.run,
        CaseInput(case_id=case_id, subject="deal:replay-escalated", deal=deal, check_id=check,
                  owner_role=Role.FINANCE, messages=["net 60 is outside the policy"],
                  rules_version="replay"),
        id=case_id, task_queue=queue,
    )  # fmt: skip
    state = await _until(lambda: case.query(ExceptionCaseWorkflow.state), lambda s: s.sla_deadline)
    await env.sleep(state.sla_deadline - await env.get_current_time() + timedelta(seconds=1))
    state = await _until(lambda: case.query(ExceptionCaseWorkflow.state), lambda s: s.level == 1)
    expires = (await env.get_current_time()).date() + timedelta(days=30)
    await case.signal(ExceptionCaseWorkflow.resolve_signal, Resolution(
        action="override", actor="rachel.adams", reason_code="CREDIT_APPROVED",
        approver="samuel.ortiz", override_expires_on=expires))  # fmt: skip
    await case.result()
    signoff = env.client.get_workflow_handle_for(OverrideSignoffWorkflow.run, f"signoff-{case_id}")
    due = (await _until(lambda: signoff.query(OverrideSignoffWorkflow.state), bool)).signoff_due
    await env.sleep(due - await env.get_current_time() + timedelta(seconds=1))
    await _until(lambda: signoff.query(OverrideSignoffWorkflow.state), lambda s: s.audit_flagged)
    await signoff.signal(OverrideSignoffWorkflow.sign_off_signal,
                         SignOff(actor="aisha.khan", reason_code="QA_SIGNED_OFF"))  # fmt: skip
    await env.sleep(timedelta(seconds=1))
    await _record(env.client, case_id, "case_escalated_override")
    await _record(env.client, f"escalation-{case_id}-1", "escalation_to_vp_finance")
    await _record(env.client, f"signoff-{case_id}", "signoff_late_after_flag")


async def _until(query: Callable[[], Awaitable[Any]], check: Callable[[Any], Any]) -> Any:
    for _ in range(250):
        try:
            value = await query()
        except RPCError:
            value = None
        if value is not None and check(value):
            return value
        await asyncio.sleep(0.02)
    raise RuntimeError("the recording did not reach the expected state")


if __name__ == "__main__":
    asyncio.run(main())
