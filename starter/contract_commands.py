"""`revops contract show|deliver|amend|approve-time|credit|resend`: changing a running contract from
a terminal. The contract workflow's validators decide, as for the Web UI and the API."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from models.amendment import Amendment
from models.contract_flow import (
    ContractState,
    Credit,
    InvoiceResend,
    MilestoneDelivered,
    TimeApproval,
)
from models.validation import describe_validation_error
from starter.settings import get_settings

contract_app = typer.Typer(help="Operate running contracts.", no_args_is_help=True)
console = Console()

Actor = Annotated[str, typer.Option("--as", help="Your person id in rules/directory.yaml")]


def _load(model: type[BaseModel], file: Path, **actor: str) -> Any:
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
        return model.model_validate({**body, **actor})
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]{file}: {exc}")
    except ValidationError as exc:
        for p in describe_validation_error(exc):
            console.print(f"[red]{file}: {p['field']}: {p['rule']}")
    raise typer.Exit(2)


def _change(contract_id: str, call: Any) -> None:
    from starter import contract_actions as actions
    from starter.cli import _connected, _run

    async def run() -> int:
        async with _connected(get_settings()) as (_pool, client, _rules):
            try:
                result = await call(client, contract_id)
            except (actions.ContractChangeRefused, actions.ContractNotFound) as exc:
                console.print(f"[red]refused: {exc}")
                return 1
        if isinstance(result, BaseModel):
            console.print_json(result.model_dump_json())
        return 0

    _run(run)


@contract_app.command("show")
def contract_show(contract_id: Annotated[str, typer.Argument(help="e.g. hs-deal-90401")]) -> None:
    """Where the contract stands: next invoice, amendments, credits and what it did lately."""
    from starter.contract_actions import contract_state

    async def show(client: Any, cid: str) -> None:
        _print_state(await contract_state(client, cid))

    _change(contract_id, show)


def _print_state(s: ContractState) -> None:
    terms = s.terms
    console.print(f"contract {s.contract_id}: {s.status.value}, {terms.start} to {terms.end}; "
                  f"next invoice {s.next_invoice_date or '-'} (period {s.next_period}); "
                  f"schedule v{s.schedule_version}; credit hold: {s.on_credit_hold}")  # fmt: skip
    for label, values in (("amendments", s.amendments), ("milestones accepted", s.delivered),
                          ("undelivered invoices", s.undelivered_invoices)):  # fmt: skip
        if values:
            console.print(f"{label}: {', '.join(values)}")
    table = Table("when", "what", "detail", "invoice")
    for e in s.events:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", e.kind, e.detail, e.invoice_number or "")
    console.print(table)


@contract_app.command("deliver")
def contract_deliver(
    contract_id: str,
    milestone: Annotated[str, typer.Argument(help="Milestone id")],
    accepted_by: Annotated[str, typer.Option("--accepted-by", help="Who signed the acceptance")],
    actor: Actor,
    on: Annotated[str, typer.Option("--on", help="Acceptance date YYYY-MM-DD")] = "",
    delivered: Annotated[
        str, typer.Option("--delivered", help="Delivery date (default: --on)")
    ] = "",
    evidence: Annotated[str, typer.Option("--evidence", help="Acceptance reference")] = "",
) -> None:
    """Record a milestone delivered and accepted: it is invoiced and recognised now."""
    from starter import contract_actions as actions

    accepted_on = on or date.today().isoformat()
    try:
        delivery = MilestoneDelivered(
            milestone_id=milestone, accepted_by=accepted_by, recorded_by=actor,
            accepted_on=date.fromisoformat(accepted_on),
            delivered_on=date.fromisoformat(delivered or accepted_on), evidence=evidence,
        )  # fmt: skip
    except (ValueError, ValidationError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    _change(contract_id, lambda c, cid: actions.deliver_milestone(c, cid, delivery))


@contract_app.command("amend")
def contract_amend(contract_id: str, file: Path, actor: Actor) -> None:
    """Apply the amendment in FILE (JSON: kind, effective_date, reason, ...)."""
    from starter import contract_actions as actions

    amendment = _load(Amendment, file, requested_by=actor)
    _change(contract_id, lambda c, cid: actions.amend(c, cid, amendment))


@contract_app.command("approve-time")
def contract_approve_time(contract_id: str, file: Path, actor: Actor) -> None:
    """Record the approved hours or deliverables in FILE (JSON: approval_id, entries)."""
    from starter import contract_actions as actions

    approval = _load(TimeApproval, file, approved_by=actor)
    _change(contract_id, lambda c, cid: actions.approve_time(c, cid, approval))


@contract_app.command("credit")
def contract_credit(contract_id: str, file: Path, actor: Actor) -> None:
    """Grant the credit in FILE (JSON: credit_id, amount, reason, applies_to_periods)."""
    from starter import contract_actions as actions

    credit = _load(Credit, file, granted_by=actor)
    _change(contract_id, lambda c, cid: actions.grant_credit(c, cid, credit))


@contract_app.command("resend")
def contract_resend(
    contract_id: str,
    invoice_number: str,
    email: Annotated[str, typer.Option(help="The corrected billing contact's address")],
    reason: Annotated[str, typer.Option(help="Why the address changed")],
    actor: Actor,
    name: Annotated[
        str | None, typer.Option(help="The contact's name (default: as before)")
    ] = None,
) -> None:
    """E-mail an undelivered invoice again, to a corrected billing contact (who also receives
    every later invoice of the customer); its dispatch case is closed."""
    from starter import contract_actions as actions

    try:
        request = InvoiceResend(invoice_number=invoice_number, email=email, name=name,
                                requested_by=actor, reason=reason)  # fmt: skip
    except ValidationError as exc:
        for p in describe_validation_error(exc):
            console.print(f"[red]{p['field']}: {p['rule']}")
        raise typer.Exit(2) from None
    _change(contract_id, lambda c, cid: actions.resend_invoice(c, cid, request))
