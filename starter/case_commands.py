"""`revops cases` and `revops case resolve|signoff|show`: operating exception cases from a
terminal. The same rules apply as in the Web UI and the API: the case workflow's validators
decide, and a refusal is printed with why (and audited)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.case import Resolution, ResolutionAction, SignOff
from starter.settings import get_settings

case_app = typer.Typer(help="Resolve and inspect exception cases.", no_args_is_help=True)
console = Console()


def _age(since: datetime, now: datetime) -> str:
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


def cases_command(
    role: Annotated[
        str | None, typer.Option("--role", help="Only cases owned by this role")
    ] = None,
) -> None:
    """List open cases: breached first, then by SLA deadline."""
    from starter.case_actions import open_cases
    from starter.cli import _connected, _run

    async def run() -> int:
        async with _connected(get_settings()) as (pool, _client, _rules):
            rows = await open_cases(pool, role)
        now = datetime.now(UTC)
        table = Table("case", "subject", "check", "owner", "level", "age", "deadline", "flags")
        for r in rows:
            deadline = r.sla_deadline.strftime("%Y-%m-%d %H:%M UTC") if r.sla_deadline else "-"
            flags = ", ".join(f for f, on in (("BREACHED", r.breached), ("audit flag", r.audit_flagged)) if on)  # fmt: skip
            table.add_row(r.case_id, r.subject, r.check_id, r.owner_role, str(r.level),
                          _age(r.opened_at, now), deadline, flags)  # fmt: skip
        console.print(table if rows else "no open cases")
        return 0

    _run(run)


@case_app.command("resolve")
def case_resolve(
    case_id: Annotated[
        str, typer.Argument(help="e.g. case-deal-hs-deal-90406-structural.po_present")
    ],
    action: Annotated[ResolutionAction, typer.Option("--action")],
    actor: Annotated[str, typer.Option("--as", help="Your person id in rules/directory.yaml")],
    reason: Annotated[str, typer.Option("--reason", help="A code from rules/reason_codes.yaml")],
    note: Annotated[str, typer.Option("--note")] = "",
    amend: Annotated[
        str | None, typer.Option("--amend", help='JSON, e.g. \'{"po_number": "PO-1"}\'')
    ] = None,
    approver: Annotated[
        str | None, typer.Option("--approver", help="override: who approved")
    ] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="override: YYYY-MM-DD")] = None,
) -> None:
    """Resolve a case (approve, amend, override, reject) through its validated update."""
    from starter.case_actions import CaseRefused, resolve_case
    from starter.cli import _connected, _run

    try:
        resolution = Resolution(
            action=action, actor=actor, reason_code=reason, note=note,
            amendments=json.loads(amend) if amend else {}, approver=approver,
            override_expires_on=date.fromisoformat(expires) if expires else None,
        )  # fmt: skip
    except (ValueError, json.JSONDecodeError) as exc:
        console.print(f"[red]invalid resolution: {exc}")
        raise typer.Exit(2) from None

    async def run() -> int:
        async with _connected(get_settings()) as (pool, client, _rules):
            try:
                state = await resolve_case(client, pool, case_id, resolution)
            except CaseRefused as exc:
                console.print(f"[red]refused:[/red] {exc.why}")
                return 1
        console.print(f"{case_id}: {state.status.value} by {actor} ({action.value}, {reason})")
        return 0

    _run(run)


@case_app.command("signoff")
def case_signoff(
    case_id: Annotated[str, typer.Argument()],
    actor: Annotated[str, typer.Option("--as", help="Your person id (the sign-off role)")],
    reason: Annotated[str, typer.Option("--reason")] = "QA_SIGNED_OFF",
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Give an override its retrospective QA sign-off."""
    from temporalio.client import WorkflowUpdateFailedError

    from starter.cli import _connected, _run
    from workflows.override_signoff import OverrideSignoffWorkflow

    async def run() -> int:
        async with _connected(get_settings()) as (_pool, client, _rules):
            handle = client.get_workflow_handle_for(
                OverrideSignoffWorkflow.run, f"signoff-{case_id}"
            )
            try:
                await handle.execute_update(
                    OverrideSignoffWorkflow.sign_off,
                    SignOff(actor=actor, reason_code=reason, note=note),
                )
            except WorkflowUpdateFailedError as exc:
                console.print(f"[red]refused:[/red] {getattr(exc.cause, 'message', exc.cause)}")
                return 1
        console.print(f"override on {case_id} signed off by {actor}")
        return 0

    _run(run)


@case_app.command("show")
def case_show(case_id: Annotated[str, typer.Argument()]) -> None:
    """A case's state and full timeline (its `state` query)."""
    from starter.cli import _connected, _run
    from workflows.exception_case import ExceptionCaseWorkflow

    async def run() -> int:
        async with _connected(get_settings()) as (_pool, client, _rules):
            handle = client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
            state = await handle.query(ExceptionCaseWorkflow.state)
        console.print(f"{state.case_id}  {state.status.value}  owner {state.owner_role.value} "
                      f"(level {state.level})  deadline {state.sla_deadline or '-'}"
                      + ("  BREACHED" if state.breached else ""))  # fmt: skip
        for m in state.messages:
            console.print(f"  why: {m}")
        for t in state.timeline:
            console.print(f"  {t.at:%Y-%m-%d %H:%M:%S}  {t.who:14} {t.what}")
        for refusal in state.refusals:
            console.print(
                f"  refused {refusal.action} by {refusal.actor}: {'; '.join(refusal.why)}"
            )
        return 0

    _run(run)
