"""Changing a running contract from outside (API, CLI): every change is an update on its
workflow, whose validators decide; a refusal comes back with the field and the rule."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from models.amendment import Amendment
from models.contract_flow import (
    ContractState,
    Credit,
    InvoiceResend,
    InvoiceResendResult,
    MilestoneDelivered,
    TimeApproval,
)
from workflows.contract import ContractWorkflow


class ContractChangeRefused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ContractNotFound(Exception):
    pass


def workflow_id(contract_id: str) -> str:
    return f"contract-{contract_id}"


async def _update(client: Client, contract_id: str, method: Any, payload: Any) -> Any:
    handle = client.get_workflow_handle_for(ContractWorkflow.run, workflow_id(contract_id))
    try:
        return await handle.execute_update(method, payload)
    except WorkflowUpdateFailedError as exc:
        raise ContractChangeRefused(str(exc.cause or exc)) from exc
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ContractNotFound(f"no running workflow {workflow_id(contract_id)}") from exc
        raise


async def deliver_milestone(client: Client, contract_id: str, delivery: MilestoneDelivered) -> Any:
    return await _update(client, contract_id, ContractWorkflow.deliver_milestone, delivery)


async def approve_time(client: Client, contract_id: str, approval: TimeApproval) -> Any:
    return await _update(client, contract_id, ContractWorkflow.approve_time, approval)


async def amend(client: Client, contract_id: str, amendment: Amendment) -> Any:
    return await _update(client, contract_id, ContractWorkflow.amend, amendment)


async def grant_credit(client: Client, contract_id: str, credit: Credit) -> None:
    await _update(client, contract_id, ContractWorkflow.grant_credit, credit)


async def resend_invoice(
    client: Client, contract_id: str, request: InvoiceResend
) -> InvoiceResendResult:
    result: InvoiceResendResult = await _update(
        client, contract_id, ContractWorkflow.resend_invoice, request
    )
    return result


async def contract_state(client: Client, contract_id: str) -> ContractState:
    handle = client.get_workflow_handle_for(ContractWorkflow.run, workflow_id(contract_id))
    try:
        return await handle.query(ContractWorkflow.state)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ContractNotFound(f"no workflow {workflow_id(contract_id)}") from exc
        raise


async def tell_contracts_usage_arrived(client: Client, contract_ids: Iterable[str]) -> None:
    """One signal per contract per batch (never per record): each checks its threshold.
    A contract without a running workflow still has its records stored; they are rated
    when it runs, so a missing workflow is not an error here."""
    for contract_id in sorted(set(contract_ids)):
        handle = client.get_workflow_handle(workflow_id(contract_id))
        with contextlib.suppress(RPCError):
            await handle.signal(ContractWorkflow.usage_received)
