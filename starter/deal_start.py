"""Start the deal workflow for a trigger, finding the existing one for a duplicate."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.deal_flow import DealInput, DealStage
from workflows import search_attributes as sa
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


def initial_search_attributes(data: DealInput) -> TypedSearchAttributes:
    """Listed in the Web UI from the first moment (the workflow upserts only changes)."""
    if data.deal is None:  # the CRM door: amount and currency are known once the deal is read
        return TypedSearchAttributes([SearchAttributePair(sa.STAGE, DealStage.READING_CRM.value)])
    return TypedSearchAttributes([
        SearchAttributePair(sa.STAGE, DealStage.QA.value),
        SearchAttributePair(sa.OWNER_ROLE, ""),
        SearchAttributePair(sa.AMOUNT, float(data.deal.total_contract_value)),
        SearchAttributePair(sa.CURRENCY, data.deal.currency),
    ])  # fmt: skip


async def start_deal(client: Client, data: DealInput, task_queue: str) -> StartResult:
    """Start `deal-<id>` once. A running or finished workflow with that id is a duplicate
    and starts nothing; only a failed one (e.g. invalid CRM data, since fixed) may run again.
    """
    deal_id = data.deal.deal_id if data.deal else str(data.crm_deal_id)
    workflow_id = deal_workflow_id(deal_id)
    try:
        await client.start_workflow(
            DealWorkflow.run,
            data.model_copy(update={"starts_contract": True, "stage_with_close": True}),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"deal {deal_id} from {data.source}",
            search_attributes=initial_search_attributes(data),
        )
    except WorkflowAlreadyStartedError:
        return StartResult(workflow_id=workflow_id, started=False)
    return StartResult(workflow_id=workflow_id, started=True)
