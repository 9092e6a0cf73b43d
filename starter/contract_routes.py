"""HTTP routes for running contracts: milestones, approved time, amendments, credits, re-sending
an undelivered invoice, state.

The actor of every change is the person the API key belongs to, never the payload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ValidationError

from models.amendment import Amendment
from models.contract_flow import Credit, InvoiceResend, MilestoneDelivered, TimeApproval
from models.validation import describe_validation_error
from starter import contract_actions as actions
from starter.api import Context, Principal

contract_router = APIRouter(prefix="/contracts", tags=["contracts"])


def _as(model: type[BaseModel], body: dict[str, Any], **actor: str) -> Any:
    try:
        return model.model_validate({**body, **actor})
    except ValidationError as exc:
        raise HTTPException(422, describe_validation_error(exc)) from exc


async def _run(call: Any) -> Any:
    try:
        return await call
    except actions.ContractChangeRefused as exc:
        raise HTTPException(409, f"refused: {exc.why}") from exc
    except actions.ContractNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


def _json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


@contract_router.get("/{contract_id}")
async def contract_state(contract_id: str, ctx: Context, who: Principal) -> Any:
    del who
    return _json(await _run(actions.contract_state(ctx.client, contract_id)))


@contract_router.post("/{contract_id}/milestones")
async def deliver_milestone(
    contract_id: str, body: dict[str, Any], ctx: Context, who: Principal
) -> Any:
    delivery = _as(MilestoneDelivered, body, recorded_by=who.person)
    return _json(await _run(actions.deliver_milestone(ctx.client, contract_id, delivery)))


@contract_router.post("/{contract_id}/time")
async def approve_time(contract_id: str, body: dict[str, Any], ctx: Context, who: Principal) -> Any:
    approval = _as(TimeApproval, body, approved_by=who.person)
    return _json(await _run(actions.approve_time(ctx.client, contract_id, approval)))


@contract_router.post("/{contract_id}/amendments")
async def amend(contract_id: str, body: dict[str, Any], ctx: Context, who: Principal) -> Any:
    amendment = _as(Amendment, body, requested_by=who.person)
    return _json(await _run(actions.amend(ctx.client, contract_id, amendment)))


@contract_router.post("/{contract_id}/credits", status_code=201)
async def grant_credit(contract_id: str, body: dict[str, Any], ctx: Context, who: Principal) -> Any:
    credit = _as(Credit, body, granted_by=who.person)
    await _run(actions.grant_credit(ctx.client, contract_id, credit))
    return _json(credit)


@contract_router.post("/{contract_id}/invoices/{invoice_number}/resend")
async def resend_invoice(
    contract_id: str, invoice_number: str, body: dict[str, Any], ctx: Context, who: Principal
) -> Any:
    """E-mail an invoice that bounced again, to a corrected billing contact (`email`, and
    optionally `name`, with a `reason`), who also receives every later invoice."""
    request = _as(InvoiceResend, body, invoice_number=invoice_number, requested_by=who.person)
    return _json(await _run(actions.resend_invoice(ctx.client, contract_id, request)))
