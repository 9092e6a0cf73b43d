"""Start the deal workflow for a trigger, finding the existing one for a duplicate."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.deal_flow import DealInput
from workflows.deal import DealWorkflow


def deal_workflow_id(deal_id: str) -> str:
    return f"deal-{deal_id}"


@dataclass(frozen=True)
class StartResult:
    workflow_id: str
    started: bool

    @property
    def message(self) -> str:
        if self.started:
            return f"started workflow {self.workflow_id}"
        return f"duplicate: workflow {self.workflow_id} already handles this deal"


async def start_deal(client: Client, data: DealInput, task_queue: str) -> StartResult:
    """Start `deal-<id>` once. A running or finished workflow with that id is a duplicate
    and starts nothing; only a failed one (e.g. invalid CRM data, since fixed) may run again.
    """
    deal_id = data.deal.deal_id if data.deal else str(data.crm_deal_id)
    workflow_id = deal_workflow_id(deal_id)
    try:
        await client.start_workflow(
            DealWorkflow.run,
            data,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"deal {deal_id} from {data.source}",
        )
    except WorkflowAlreadyStartedError:
        return StartResult(workflow_id=workflow_id, started=False)
    return StartResult(workflow_id=workflow_id, started=True)
